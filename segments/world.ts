// A local three-segment world: us-west — eu-central — ap-south, in a line, every bucket linked
// metadata-only in both directions, each link a shaped WAN (segments/shaping-proxy.ts) with its
// own one-way latency and a bandwidth cap per direction. Each segment is a real `stitch serve`
// process; the non-adjacent segment is on each end's allowlist, so versions relayed through
// eu-central are accepted.
//
//   node segments/world.ts [start] [--dir DIR] [--latency MS,MS] [--bandwidth RATE]
//                          [--full BUCKET]... [--port-offset N] [--fresh] [--json]
//   node segments/world.ts stop [--dir DIR]
//
// The committed segments/<name>.json are templates (name, S3 and p2p addresses). Peer ids are
// made per machine, so the first run creates each segment's key (`stitch id`) and every run
// writes the generated configuration to DIR/<name>/segment.json (DIR defaults to data/world),
// with each link's address pointing at a proxy port that forwards to the peer's real p2p port:
//
//   us-west    dials eu-central through 127.0.0.1:9301, eu-central dials us-west through 9311
//   eu-central dials ap-south   through 127.0.0.1:9302, ap-south dials eu-central through 9312
//
// Both proxies of a link share its two shapers, so the cap is the link's whatever side dialled.
// `stitch --data data/world/us-west status` (or ls, get...) works beside the running world.
// It runs until Ctrl-C (or SIGTERM, or `stop`, which signals the pid in DIR/world.pid).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync, unlinkSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import { fetchStatus } from '../src/isgw/admin.ts';
import { saveConfig, type PeerConfig, type SegmentConfig } from '../src/isgw/config.ts';
import { formatRate, parseRate, Shaper, ShapingProxy } from './shaping-proxy.ts';

export const ROOT = resolve(import.meta.dirname, '..');
const NODE = process.execPath;
const MAIN = join(ROOT, 'src/cli/main.ts');

// The line, west to east; link i joins NAMES[i] and NAMES[i + 1].
export const NAMES = ['us-west', 'eu-central', 'ap-south'] as const;
export const DEFAULT_LATENCY_MS = [40, 150];
export const DEFAULT_BANDWIDTH = '50mbit';
// Proxy ports: link i is dialled eastward through 9301 + i and westward through 9311 + i.
const PROXY_EAST = 9301;
const PROXY_WEST = 9311;

export interface WorldOptions {
  // Where data, generated configs, logs and the pid file live (default <repo>/data/world).
  dir?: string;
  // Added to every port of the templates and proxies, to run beside another world.
  portOffset?: number;
  // One-way latency of each link, west to east.
  latencyMs?: number[];
  // Cap per direction of every link, bytes/s (0: none).
  bandwidth?: number;
  // Buckets linked in `full` mode (eager replication), on every link or only on link `link`.
  full?: Array<{ bucket: string; link?: number }>;
  // Extra environment for the serve processes (e.g. STITCH_ACCESS_KEY_ID/SECRET).
  env?: NodeJS.ProcessEnv;
  // Wipe DIR first.
  fresh?: boolean;
  // Progress messages.
  log?: (msg: string) => void;
  // How long to wait for every link to connect (ms).
  connectTimeoutMs?: number;
}

export interface WorldSegment {
  name: string;
  // S3 endpoint URL, S3 host:port, p2p multiaddr of the real listener.
  s3: string;
  s3Addr: string;
  p2p: string;
  p2pPort: number;
  peerId: string;
  // Data directory (holds segment.json); pass as --data to the stitch CLI.
  data: string;
  log: string;
  child: ChildProcess;
}

export interface WorldLink {
  west: string;
  east: string;
  latencyMs: number;
  // Bytes westward-to-eastward and back, through either proxy.
  eastbound: Shaper;
  westbound: Shaper;
  // [west dials east, east dials west]
  proxies: [ShapingProxy, ShapingProxy];
}

interface Template {
  name: string;
  s3: string;
  p2p: string;
}

function template(name: string, offset: number): { s3Host: string; s3Port: number; p2pPort: number } {
  const t = JSON.parse(readFileSync(join(ROOT, 'segments', `${name}.json`), 'utf8')) as Template;
  const s3 = /^(.*):(\d+)$/.exec(t.s3);
  const p2p = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)$/.exec(t.p2p);
  if (!s3 || !p2p) throw new Error(`segments/${name}.json: expected s3 HOST:PORT and p2p /ip4/127.0.0.1/tcp/PORT`);
  return { s3Host: s3[1], s3Port: Number(s3[2]) + offset, p2pPort: Number(p2p[1]) + offset };
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function pidFile(dir: string): string {
  return join(dir, 'world.pid');
}

interface PidRecord {
  pid: number;
  children: number[];
}

function readPid(dir: string): PidRecord | undefined {
  try {
    return JSON.parse(readFileSync(pidFile(dir), 'utf8')) as PidRecord;
  } catch {
    return undefined;
  }
}

// SIGTERM, then SIGKILL after graceMs; resolves once the child is gone.
async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

async function serve(name: string, data: string, logFile: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; ready: { peerId: string; s3: string } }> {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(NODE, [MAIN, '--data', data, 'serve'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', fd] });
  } finally {
    closeSync(fd);
  }
  const lines = createInterface({ input: child.stdout! });
  const ready = await new Promise<{ peerId: string; s3: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name}: not ready after 60 s (see ${logFile})`)), 60_000);
    lines.on('line', (line) => {
      try {
        const j = JSON.parse(line) as { ready?: boolean; peerId: string; s3: string };
        if (j.ready) {
          clearTimeout(t);
          resolve(j);
        }
      } catch {
        // not the ready line
      }
    });
    child.once('exit', (code, sig) => {
      clearTimeout(t);
      reject(new Error(`${name}: exited (${code ?? sig}) before it was ready: ${tailOf(logFile)}`));
    });
  });
  return { child, ready };
}

function tailOf(file: string, n = 5): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

async function peerIdFor(data: string): Promise<string> {
  const { stdout } = await promisify(execFile)(NODE, [MAIN, '--data', data, '--json', 'id'], { cwd: ROOT });
  return (JSON.parse(stdout) as { peerId: string }).peerId;
}

export class World {
  readonly dir: string;
  readonly segments: WorldSegment[];
  readonly links: WorldLink[];
  readonly bandwidth: number;
  // Local ports of the proxies' upstream sockets: any other connection to a p2p port is direct.
  private readonly upstreamPorts: Set<number>;
  private stopping: Promise<void> | undefined;
  onExit: ((name: string, code: number | null) => void) | undefined;

  constructor(dir: string, segments: WorldSegment[], links: WorldLink[], bandwidth: number, upstreamPorts: Set<number>) {
    this.dir = dir;
    this.segments = segments;
    this.links = links;
    this.bandwidth = bandwidth;
    this.upstreamPorts = upstreamPorts;
    for (const s of segments) {
      s.child.once('exit', (code) => {
        if (!this.stopping) this.onExit?.(s.name, code);
      });
    }
  }

  segment(name: string): WorldSegment {
    const s = this.segments.find((x) => x.name === name);
    if (!s) throw new Error(`no segment ${name}`);
    return s;
  }

  link(a: string, b: string): WorldLink {
    const l = this.links.find((x) => (x.west === a && x.east === b) || (x.west === b && x.east === a));
    if (!l) throw new Error(`no link ${a} — ${b}`);
    return l;
  }

  // Live state of a segment from its admin socket (stitch status --json).
  status(name: string): Promise<SegmentStatus> {
    return fetchStatus(this.segment(name).data) as Promise<SegmentStatus>;
  }

  // Waits until every segment sees all its linked peers connected.
  async connected(timeoutMs = 30_000): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
      const all = await Promise.all(this.segments.map((s) => this.status(s.name).catch(() => undefined)));
      if (all.every((st) => st && st.peers.length > 0 && st.peers.every((p) => p.connected))) return true;
      await sleep(100);
    }
    return false;
  }

  // Established TCP connections to a segment's p2p port that do not come from a proxy: traffic
  // that would bypass the shaping (e.g. an address learned by identify). Needs `ss`.
  directConnections(): string[] {
    const r = spawnSync('ss', ['-tnH', 'state', 'established'], { encoding: 'utf8' });
    if (r.status !== 0) return [];
    const p2p = new Set(this.segments.map((s) => s.p2pPort));
    const out: string[] = [];
    for (const line of r.stdout.split('\n')) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const [local, peer] = f.slice(-2);
      const lp = Number(local.slice(local.lastIndexOf(':') + 1));
      const pp = Number(peer.slice(peer.lastIndexOf(':') + 1));
      if (p2p.has(pp) && !this.upstreamPorts.has(lp)) out.push(`${local} -> ${peer}`);
    }
    return out;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.segments.map((s) => stopChild(s.child)));
      await Promise.all(this.links.flatMap((l) => l.proxies.map((p) => p.close())));
      for (const l of this.links) {
        l.eastbound.close();
        l.westbound.close();
      }
      const rec = readPid(this.dir);
      if (rec?.pid === process.pid) rmSync(pidFile(this.dir), { force: true });
    })();
    return this.stopping;
  }
}

export interface SegmentStatus {
  segment: string;
  peerId: string;
  peers: Array<{ name: string; peerId: string; connected: boolean; lastCatchUp?: number; lastCatchUpEntries: number }>;
  counters: Record<string, number>;
  replicationBacklog: number;
  stats: { objects: number; versions: number; logicalBytes: number; storedBytes: number; chunks: number };
  reader: { recovered: number; corrupt: number; missing: number };
}

export async function startWorld(o: WorldOptions = {}): Promise<World> {
  const log = o.log ?? (() => {});
  const dir = resolve(o.dir ?? join(ROOT, 'data', 'world'));
  const offset = o.portOffset ?? 0;
  const latency = o.latencyMs ?? DEFAULT_LATENCY_MS;
  if (latency.length !== NAMES.length - 1) throw new Error(`expected ${NAMES.length - 1} latencies (one per link), got ${latency.length}`);
  const bandwidth = o.bandwidth ?? parseRate(DEFAULT_BANDWIDTH);

  const rec = readPid(dir);
  if (rec && alive(rec.pid)) throw new Error(`a world is already running in ${dir} (pid ${rec.pid}): stop it with 'node segments/world.ts stop'`);
  if (o.fresh) rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });

  const tpl = NAMES.map((n) => template(n, offset));
  const ports = [...tpl.flatMap((t) => [t.s3Port, t.p2pPort]), ...latency.flatMap((_, i) => [PROXY_EAST + i + offset, PROXY_WEST + i + offset])];
  const busy: number[] = [];
  for (const p of ports) if (!(await portFree(p))) busy.push(p);
  if (busy.length) throw new Error(`port${busy.length > 1 ? 's' : ''} ${busy.join(', ')} in use on 127.0.0.1 (another world? stop it, or use --port-offset)`);

  // Keys first: each segment's config (without peers on a first run), then `stitch id`.
  const datas = NAMES.map((n) => join(dir, n));
  const base = (i: number): SegmentConfig => ({
    name: NAMES[i], data: '.', s3: `${tpl[i].s3Host}:${tpl[i].s3Port}`, p2p: `/ip4/127.0.0.1/tcp/${tpl[i].p2pPort}`, peers: [],
  });
  for (let i = 0; i < NAMES.length; i++) {
    mkdirSync(datas[i], { recursive: true });
    const cfg = join(datas[i], 'segment.json');
    if (!existsSync(cfg)) saveConfig(cfg, base(i));
  }
  log('creating or reading segment keys');
  const ids = await Promise.all(datas.map(peerIdFor));

  // Peers and links: adjacent segments linked through the proxies, the far end allowlisted.
  for (let i = 0; i < NAMES.length; i++) {
    const peers: PeerConfig[] = [];
    for (let j = 0; j < NAMES.length; j++) {
      if (j === i) continue;
      const p: PeerConfig = { name: NAMES[j], peerId: ids[j] };
      if (Math.abs(i - j) === 1) {
        const linkIdx = Math.min(i, j);
        const port = (j > i ? PROXY_EAST : PROXY_WEST) + linkIdx + offset;
        p.addrs = [`/ip4/127.0.0.1/tcp/${port}`];
        p.link = { '*': { mode: 'metadata-only', direction: 'both' } };
        for (const f of o.full ?? []) {
          if (f.link === undefined || f.link === linkIdx) p.link[f.bucket] = { mode: 'full', direction: 'both' };
        }
      }
      peers.push(p);
    }
    saveConfig(join(datas[i], 'segment.json'), { ...base(i), peers });
  }

  // The WAN: two shapers per link, shared by the proxies of both dialling directions.
  const upstreamPorts = new Set<number>();
  const onUpstream = (p: number) => upstreamPorts.add(p);
  const links: WorldLink[] = [];
  try {
    for (let i = 0; i < NAMES.length - 1; i++) {
      const eastbound = new Shaper({ latencyMs: latency[i], bandwidth });
      const westbound = new Shaper({ latencyMs: latency[i], bandwidth });
      const toEast = await ShapingProxy.start({ listenPort: PROXY_EAST + i + offset, targetPort: tpl[i + 1].p2pPort, up: eastbound, down: westbound, onUpstream });
      const toWest = await ShapingProxy.start({ listenPort: PROXY_WEST + i + offset, targetPort: tpl[i].p2pPort, up: westbound, down: eastbound, onUpstream });
      links.push({ west: NAMES[i], east: NAMES[i + 1], latencyMs: latency[i], eastbound, westbound, proxies: [toEast, toWest] });
    }
  } catch (err) {
    await Promise.all(links.flatMap((l) => l.proxies.map((p) => p.close())));
    throw err;
  }

  log('starting segments');
  const started = await Promise.allSettled(NAMES.map((n, i) => serve(n, datas[i], join(dir, `${n}.log`), o.env ?? {})));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((r) => (r.status === 'fulfilled' ? stopChild(r.value.child) : undefined)));
    await Promise.all(links.flatMap((l) => l.proxies.map((p) => p.close())));
    throw (failed as PromiseRejectedResult).reason;
  }
  const segments: WorldSegment[] = started.map((r, i) => {
    const { child, ready } = (r as PromiseFulfilledResult<{ child: ChildProcess; ready: { peerId: string; s3: string } }>).value;
    return {
      name: NAMES[i], s3: ready.s3, s3Addr: `${tpl[i].s3Host}:${tpl[i].s3Port}`, p2p: `/ip4/127.0.0.1/tcp/${tpl[i].p2pPort}`,
      p2pPort: tpl[i].p2pPort, peerId: ready.peerId, data: datas[i], log: join(dir, `${NAMES[i]}.log`), child,
    };
  });
  const world = new World(dir, segments, links, bandwidth, upstreamPorts);
  writeFileSync(pidFile(dir), `${JSON.stringify({ pid: process.pid, children: segments.flatMap((s) => (s.child.pid === undefined ? [] : [s.child.pid])) } satisfies PidRecord)}\n`);
  log('waiting for the links to connect');
  if (!(await world.connected(o.connectTimeoutMs ?? 30_000))) log('warning: not every link is connected yet (the segments keep dialling)');
  return world;
}

// `stop`: signals the world process named in the pid file and waits for it (and its segments).
export async function stopWorld(dir: string, log: (m: string) => void = console.error): Promise<boolean> {
  const rec = readPid(dir);
  if (!rec) {
    log(`no world is running in ${dir}`);
    return false;
  }
  const pids = [rec.pid, ...rec.children];
  if (alive(rec.pid)) {
    process.kill(rec.pid, 'SIGTERM');
    const until = Date.now() + 30_000;
    while (Date.now() < until && pids.some(alive)) await sleep(100);
  }
  for (const pid of pids.filter(alive)) {
    log(`pid ${pid} still running: killing it`);
    process.kill(pid, 'SIGKILL');
  }
  if (existsSync(pidFile(dir))) unlinkSync(pidFile(dir));
  log(`stopped the world in ${dir}`);
  return true;
}

export function describe(world: World): string {
  const rows = [
    ['segment', 'S3 endpoint', 'p2p', 'peer id'],
    ...world.segments.map((s) => [s.name, s.s3, s.p2p, s.peerId]),
  ];
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const fmt = (r: string[]) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(w[c]))).join('  ');
  const links = world.links.map((l) => {
    const [e, wst] = l.proxies;
    return `  ${`${l.west} — ${l.east}`.padEnd(24)}  ${`${l.latencyMs} ms one way`.padEnd(16)}  ${formatRate(world.bandwidth).padEnd(12)}  via 127.0.0.1:${e.port} (→ ${l.east}) and :${wst.port} (→ ${l.west})`;
  });
  const rel = relative(process.cwd(), world.dir);
  const where = rel === '' ? '.' : rel.startsWith('..') ? world.dir : rel;
  return [
    fmt(rows[0]), ...rows.slice(1).map(fmt), '',
    'links (shaped, cap per direction):', ...links, '',
    `data, configs and logs in ${where}/; e.g. node src/cli/main.ts --data ${where}/ap-south status`,
    'Ctrl-C (or node segments/world.ts stop) stops the world',
  ].join('\n');
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      latency: { type: 'string', default: DEFAULT_LATENCY_MS.join(',') },
      bandwidth: { type: 'string', default: DEFAULT_BANDWIDTH },
      full: { type: 'string', multiple: true, default: [] },
      'port-offset': { type: 'string', default: '0' },
      fresh: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const cmd = positionals[0] ?? 'start';
  if (values.help || !['start', 'stop'].includes(cmd) || positionals.length > 1) {
    console.error(`usage: node segments/world.ts [start] [--dir DIR] [--latency MS,MS] [--bandwidth RATE]
                            [--full BUCKET]... [--port-offset N] [--fresh] [--json]
       node segments/world.ts stop [--dir DIR]

  --dir DIR          data, generated configs, logs, pid file (default data/world)
  --latency MS,MS    one-way latency of us-west—eu-central and eu-central—ap-south (default ${DEFAULT_LATENCY_MS.join(',')})
  --bandwidth RATE   cap per direction of each link, e.g. 50mbit, 8MB, none (default ${DEFAULT_BANDWIDTH})
  --full BUCKET      link BUCKET in full mode (eager replication) on every link; repeatable
  --port-offset N    add N to every port (S3 9101-9103, p2p 9201-9203, proxies 9301-9312)
  --fresh            delete DIR first
  --json             print one JSON line when ready (the table goes to stderr)

S3 credentials: set STITCH_ACCESS_KEY_ID and STITCH_SECRET_ACCESS_KEY (passed to every segment).`);
    process.exit(values.help ? 0 : 2);
  }
  const dir = resolve(values.dir ?? join(ROOT, 'data', 'world'));
  if (cmd === 'stop') {
    await stopWorld(dir);
    return;
  }
  const latencyMs = values.latency.split(',').map(Number);
  if (latencyMs.length !== 2 || latencyMs.some((n) => !Number.isFinite(n) || n < 0)) throw new Error(`--latency: expected two numbers of ms, e.g. 40,150`);
  const offset = Number(values['port-offset']);
  if (!Number.isInteger(offset) || offset < 0 || offset + 9312 > 65535) throw new Error('--port-offset: expected an integer in 0..56223');
  const world = await startWorld({
    dir, latencyMs, bandwidth: parseRate(values.bandwidth), portOffset: offset, fresh: values.fresh,
    full: values.full.map((bucket) => ({ bucket })),
    log: (m) => console.error(`world: ${m}`),
  });
  let exitCode = 0;
  const done = Promise.withResolvers<void>();
  world.onExit = (name, code) => {
    console.error(`world: ${name} exited (${code}); see ${world.segment(name).log}. Stopping the world.`);
    exitCode = 1;
    done.resolve();
  };
  process.once('SIGINT', () => done.resolve());
  process.once('SIGTERM', () => done.resolve());
  const table = describe(world);
  if (values.json) {
    console.error(table);
    console.log(JSON.stringify({
      ready: true, pid: process.pid, dir,
      segments: world.segments.map((s) => ({ name: s.name, s3: s.s3, p2p: s.p2p, peerId: s.peerId, data: s.data })),
      links: world.links.map((l) => ({ west: l.west, east: l.east, latencyMs: l.latencyMs, proxies: l.proxies.map((p) => p.port) })),
    }));
  } else {
    console.log(table);
  }
  if (!process.env.STITCH_ACCESS_KEY_ID) console.error('world: no STITCH_ACCESS_KEY_ID/STITCH_SECRET_ACCESS_KEY set: S3 requests need a key made with stitch key create');
  await done.promise;
  console.error('world: stopping');
  await world.stop();
  console.error('world: stopped');
  process.exitCode = exitCode;
}

if (import.meta.main) {
  main().catch((err: Error) => {
    console.error(`world: ${err.message}`);
    process.exit(1);
  });
}

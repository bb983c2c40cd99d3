// Real `stitch serve` processes for the torture suite: one or more segments with temp data dirs,
// fixed S3 and p2p ports (so a restarted segment is found where it was), configs written the way
// `stitch link add` / `stitch peer add` write them, SIGKILL and restart, fsck beside or instead of
// the server, and (with `isolate`) each segment in its own network namespace whose only way to
// another segment is a relay the test can cut: libp2p cannot route around a partition through an
// address it learned by identify, because that address is another namespace's loopback.
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fetchStatus } from '../../src/isgw/admin.ts';
import { saveConfig, type BucketPolicy, type PeerConfig, type SegmentConfig } from '../../src/isgw/config.ts';
import { peerIdOf } from '../../src/isgw/keys.ts';
import { loadOrCreateIdentity } from '../../src/segment/identity.ts';
import { ShapingProxy } from '../../segments/shaping-proxy.ts';
import { Relay } from './relay.ts';
import { S3Client, type Credentials } from './s3.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'src/cli/main.ts');
const NS_RUN = join(import.meta.dirname, 'ns-run.ts');

export const CREDS: Credentials = { accessKeyId: 'TORTUREKEY0000000001', secretAccessKey: 'torture-secret-0123456789abcdefghijklmnop' };

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}

export interface LinkSpec {
  a: string;
  b: string;
  bucket?: string;
  mode?: 'metadata-only' | 'full';
  // Only a links to b (b gets a on its allowlist); default both ways.
  oneWay?: boolean;
}

export interface ClusterOptions {
  names: string[];
  links?: LinkSpec[];
  // Extra allowlist entries: [who, trusts] (`stitch peer add`).
  trust?: Array<[string, string]>;
  // Each segment in its own network namespace, links through cut-able relays.
  isolate?: boolean;
  // Links through segments/shaping-proxy.ts on the shared loopback (cut-able, but libp2p may
  // reach the real port around it: see directConnections()).
  proxy?: boolean;
  // Segments served with `--mount <dir>/mnt` (FUSE, every bucket as a directory unless mountBucket).
  mount?: string[];
  mountBucket?: string;
  // Where the data dirs go (default a fresh temp dir); a segment's dir is <base>/<name>.
  base?: string;
  // Configured (key, config) but never started by the cluster: a test impersonates them.
  noStart?: string[];
  env?: NodeJS.ProcessEnv;
}

export interface SegmentProc {
  name: string;
  dataDir: string;
  s3Port: number;
  p2pPort: number;
  peerId: string;
  mnt?: string;
  child?: ChildProcess;
  // The `stitch serve` process itself (inside the namespace wrapper when isolated).
  pid?: number;
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string;
  client?: S3Client;
  starts: number;
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runStitch(dataDir: string, args: string[], timeoutMs = 300_000): Promise<CliResult> {
  return new Promise((res) => {
    execFile(NODE, [MAIN, '--data', dataDir, ...args], { cwd: ROOT, maxBuffer: 256 << 20, timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

export function netnsAvailable(): boolean {
  const r = spawnSync('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0;
}

export class Cluster {
  readonly base: string;
  readonly segments = new Map<string, SegmentProc>();
  private readonly o: ClusterOptions;
  private readonly ownsBase: boolean;
  private readonly sockDir: string;
  // Host-side relays of the isolated mode: `${from}>${to}` for links, `s3:${name}` for S3.
  readonly relays = new Map<string, Relay | ShapingProxy>();
  // Local ports of the shaping proxies' upstream sockets (proxy mode).
  private readonly upstreamPorts = new Set<number>();
  private nsBridges = new Map<string, Array<{ listen: object; target: object }>>();

  private constructor(o: ClusterOptions) {
    this.o = o;
    this.ownsBase = !o.base;
    this.base = o.base ?? mkdtempSync(join(tmpdir(), 'stitch-torture-'));
    // Unix socket paths must stay short (108 bytes).
    this.sockDir = mkdtempSync('/tmp/tt-');
  }

  static async create(o: ClusterOptions): Promise<Cluster> {
    const c = new Cluster(o);
    try {
      await c.configure();
      await Promise.all(o.names.filter((n) => !o.noStart?.includes(n)).map((n) => c.start(n)));
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  private async configure(): Promise<void> {
    for (const name of this.o.names) {
      const dataDir = join(this.base, name);
      mkdirSync(dataDir, { recursive: true });
      const peerId = peerIdOf(loadOrCreateIdentity(dataDir).privateKey).toString();
      const seg: SegmentProc = { name, dataDir, s3Port: await freePort(), p2pPort: await freePort(), peerId, stderr: '', starts: 0 };
      if (this.o.mount?.includes(name)) {
        seg.mnt = join(dataDir, '..', `${name}-mnt`);
        mkdirSync(seg.mnt, { recursive: true });
      }
      this.segments.set(name, seg);
      this.nsBridges.set(name, []);
    }
    const peers = new Map<string, PeerConfig[]>(this.o.names.map((n) => [n, []]));
    const entry = (from: string, to: string): PeerConfig => {
      const list = peers.get(from)!;
      let p = list.find((x) => x.name === to);
      if (!p) list.push((p = { name: to, peerId: this.seg(to).peerId }));
      return p;
    };
    const linkOne = async (from: string, to: string, l: LinkSpec) => {
      const p = entry(from, to);
      const addr = await this.linkAddress(from, to);
      p.addrs = [...new Set([...(p.addrs ?? []), addr])];
      const pol: BucketPolicy = { mode: l.mode ?? 'metadata-only', direction: 'both' };
      p.link = { ...(p.link ?? {}), [l.bucket ?? '*']: pol };
    };
    for (const l of this.o.links ?? []) {
      await linkOne(l.a, l.b, l);
      if (l.oneWay) entry(l.b, l.a);
      else await linkOne(l.b, l.a, l);
    }
    for (const [who, trusts] of this.o.trust ?? []) entry(who, trusts);
    if (this.o.isolate) {
      for (const s of this.segments.values()) {
        const s3sock = join(this.sockDir, `${s.name}-s3`);
        this.relays.set(`s3:${s.name}`, await Relay.start({ port: s.s3Port }, { path: s3sock }));
        this.nsBridges.get(s.name)!.push({ listen: { path: s3sock }, target: { port: s.s3Port } });
        this.nsBridges.get(s.name)!.push({ listen: { path: join(this.sockDir, `${s.name}-p2p`) }, target: { port: s.p2pPort } });
      }
    }
    for (const s of this.segments.values()) {
      const cfg: SegmentConfig = {
        name: s.name, data: '.', s3: `127.0.0.1:${s.s3Port}`, p2p: `/ip4/127.0.0.1/tcp/${s.p2pPort}`, peers: peers.get(s.name)!,
      };
      saveConfig(join(s.dataDir, 'segment.json'), cfg);
    }
  }

  // Where `from` dials `to`: its real port, or (isolated) a port in from's namespace that leads
  // through a host relay (cut-able) to a unix socket in to's namespace.
  private async linkAddress(from: string, to: string): Promise<string> {
    if (this.o.proxy) {
      const proxy = await ShapingProxy.start({ listenPort: 0, targetPort: this.seg(to).p2pPort, onUpstream: (p) => this.upstreamPorts.add(p) });
      this.relays.set(`${from}>${to}`, proxy);
      return `/ip4/127.0.0.1/tcp/${proxy.port}`;
    }
    if (!this.o.isolate) return `/ip4/127.0.0.1/tcp/${this.seg(to).p2pPort}`;
    const port = await freePort();
    const out = join(this.sockDir, `${from}-${to}`);
    this.nsBridges.get(from)!.push({ listen: { port }, target: { path: out } });
    this.relays.set(`${from}>${to}`, await Relay.start({ path: out }, { path: join(this.sockDir, `${to}-p2p`) }));
    return `/ip4/127.0.0.1/tcp/${port}`;
  }

  seg(name: string): SegmentProc {
    const s = this.segments.get(name);
    if (!s) throw new Error(`no segment ${name}`);
    return s;
  }

  names(): string[] {
    return [...this.segments.keys()];
  }

  endpoint(name: string): string {
    return `http://127.0.0.1:${this.seg(name).s3Port}`;
  }

  s3(name: string): S3Client {
    const s = this.seg(name);
    s.client ??= new S3Client(this.endpoint(name), CREDS);
    return s.client;
  }

  running(name: string): boolean {
    const c = this.seg(name).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  async start(name: string): Promise<void> {
    const s = this.seg(name);
    if (this.running(name)) throw new Error(`${name} is already running`);
    const serveArgv = [NODE, MAIN, '--data', s.dataDir, 'serve', '--no-console'];
    if (s.mnt) serveArgv.push('--mount', s.mnt, ...(this.o.mountBucket ? ['--mount-bucket', this.o.mountBucket] : []));
    const env = {
      ...process.env, STITCH_ACCESS_KEY_ID: CREDS.accessKeyId, STITCH_SECRET_ACCESS_KEY: CREDS.secretAccessKey,
      STITCH_LOG_LEVEL: process.env.STITCH_LOG_LEVEL ?? 'warn', ...this.o.env,
    };
    const child = this.o.isolate
      ? spawn('unshare', ['-n', '--', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', NODE, NS_RUN,
        JSON.stringify({ bridges: this.nsBridges.get(name), argv: serveArgv, cwd: ROOT })], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(serveArgv[0], serveArgv.slice(1), { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    s.child = child;
    s.pid = this.o.isolate ? undefined : child.pid;
    s.starts++;
    s.stderr += `---- start ${name} #${s.starts} pid ${child.pid}\n`;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      s.stderr += d;
      if (s.stderr.length > 2_000_000) s.stderr = s.stderr.slice(-1_000_000);
    });
    s.exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
    // Never outlive the test process (the serve process inside a namespace included).
    const reap = () => {
      if (s.pid) try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
      child.kill('SIGKILL');
    };
    process.once('exit', reap);
    void s.exited.then(() => process.off('exit', reap));
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${name}: stitch serve not ready after 120 s; stderr:\n${s.stderr.slice(-4000)}`)), 120_000);
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { ready?: boolean; peerId?: string; nsChild?: number };
          if (msg.nsChild) s.pid = msg.nsChild;
          if (!msg.ready) return;
          clearTimeout(timer);
          if (msg.peerId !== s.peerId) rej(new Error(`${name} serves as ${msg.peerId}, expected ${s.peerId}`));
          else res();
        } catch {
          // not a JSON line
        }
      });
      void s.exited!.then(({ code, signal }) => {
        clearTimeout(timer);
        rej(new Error(`${name}: stitch serve exited (${code ?? signal}) before ready; stderr:\n${s.stderr.slice(-4000)}`));
      });
    });
  }

  // Signals the serve process and waits for it (and its namespace wrapper) to exit.
  async kill(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const s = this.seg(name);
    if (!s.child || !s.exited) throw new Error(`${name} was never started`);
    s.client?.reset();
    if (this.running(name)) {
      if (s.pid) {
        try {
          process.kill(s.pid, signal);
        } catch {
          // already gone
        }
      } else s.child.kill(signal);
    }
    const hard = setTimeout(() => {
      if (s.pid) try { process.kill(s.pid, 'SIGKILL'); } catch { /* gone */ }
      s.child!.kill('SIGKILL');
    }, 30_000);
    try {
      return await s.exited;
    } finally {
      clearTimeout(hard);
    }
  }

  async restart(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running(name)) await this.kill(name, signal);
    await this.start(name);
  }

  // Peak and current resident memory of the serve process, MiB.
  memory(name: string): { rss: number; peak: number } {
    const pid = this.seg(name).pid;
    try {
      const st = readFileSync(`/proc/${pid}/status`, 'utf8');
      const field = (f: string) => Number(/\s(\d+) kB/.exec(st.split('\n').find((l) => l.startsWith(`${f}:`)) ?? '')?.[1] ?? NaN) / 1024;
      return { rss: field('VmRSS'), peak: field('VmHWM') };
    } catch {
      return { rss: NaN, peak: NaN };
    }
  }

  alive(name: string): boolean {
    const pid = this.seg(name).pid;
    if (!pid || !this.running(name)) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  status(name: string): Promise<SegmentStatus> {
    return fetchStatus(this.seg(name).dataDir) as Promise<SegmentStatus>;
  }

  cli(name: string, args: string[]): Promise<CliResult> {
    return runStitch(this.seg(name).dataDir, args);
  }

  // `stitch fsck --json` (read-only beside a running server; --repair needs it stopped).
  async fsck(name: string, repair = false): Promise<{ code: number; report: FsckReport | undefined; stderr: string }> {
    const r = await this.cli(name, ['--json', 'fsck', ...(repair ? ['--repair'] : [])]);
    let report: FsckReport | undefined;
    try {
      report = JSON.parse(r.stdout) as FsckReport;
    } catch {
      report = undefined;
    }
    return { code: r.code, report, stderr: r.stderr };
  }

  // ---- partitions (isolated mode) ----

  private linkRelays(a: string, b: string): Array<Relay | ShapingProxy> {
    return [this.relays.get(`${a}>${b}`), this.relays.get(`${b}>${a}`)].filter((r) => r !== undefined);
  }

  // Proxy mode: established connections to a segment's real p2p port that did not come from a
  // proxy, i.e. libp2p went around the (possibly cut) link. Needs `ss`.
  directConnections(): string[] {
    const r = spawnSync('ss', ['-tnH', 'state', 'established'], { encoding: 'utf8' });
    if (r.status !== 0) return [];
    const p2p = new Set([...this.segments.values()].map((s) => s.p2pPort));
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

  cut(a: string, b: string): void {
    for (const r of this.linkRelays(a, b)) r.cut();
  }

  heal(a: string, b: string): void {
    for (const r of this.linkRelays(a, b)) r.heal();
  }

  isCut(a: string, b: string): boolean {
    return this.linkRelays(a, b).some((r) => r.cutOff);
  }

  healAll(): void {
    for (const [k, r] of this.relays) if (!k.startsWith('s3:')) r.heal();
  }

  async stop(): Promise<void> {
    for (const s of this.segments.values()) s.client?.close();
    await Promise.all(this.names().filter((n) => this.running(n)).map((n) => this.kill(n, 'SIGTERM')));
    await Promise.all([...this.relays.values()].map((r) => r.close()));
    for (const s of this.segments.values()) {
      if (s.mnt) spawnSync('umount', ['-l', s.mnt]);
    }
    rmSync(this.sockDir, { recursive: true, force: true });
    if (this.ownsBase) rmSync(this.base, { recursive: true, force: true });
    else for (const s of this.segments.values()) rmSync(s.dataDir, { recursive: true, force: true });
  }

  stderr(name: string): string {
    return this.seg(name).stderr;
  }
}

export interface FsckReport {
  checked: number;
  bytes: number;
  missing: string[];
  corrupt: string[];
  repaired: string[];
}

export interface SegmentStatus {
  segment: string;
  peerId: string;
  stats: { objects: number; versions: number; chunks: number; storedBytes: number; logicalBytes: number; buckets: number };
  peers: Array<{ name: string; peerId: string; connected: boolean; lastCatchUp?: number; lastCatchUpEntries: number }>;
  counters: Record<string, number>;
  replicationBacklog: number;
  reader: { recovered: number; corrupt: number; missing: number };
  memory: { rss: number };
}

export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what = 'condition', intervalMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)?.slice(0, 500)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// A world of real `stitch serve` processes on loopback for the inter-segment gateway tests: each
// segment gets a temp data dir, free S3 and libp2p ports, a segment.json, a key (`stitch id`),
// links and allowlist entries made with the real CLI (`stitch link add`, `stitch peer add`), and a
// child process that is ready when it prints its JSON line on stdout.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { S3Client } from '@aws-sdk/client-s3';
import { fetchStatus } from '../../src/isgw/admin.ts';
import { isInlineCid } from '../../src/core/cid.ts';
import { Segment } from '../../src/segment/segment.ts';
import type { GatewayCounters } from '../../src/isgw/counters.ts';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'src/cli/main.ts');

export const ACCESS_KEY_ID = 'STITCHWORLDKEY000001';
export const SECRET_ACCESS_KEY = 'stitch-world-secret-0123456789abcdefghijk';
export const REGION = 'us-east-1';
export const KiB = 1024;
export const MiB = 1024 * 1024;

export type LinkMode = 'metadata-only' | 'full';
export type Direction = 'send' | 'receive' | 'both';

export interface LinkSpec {
  from: string;
  to: string;
  bucket?: string;
  mode?: LinkMode;
  direction?: Direction;
  // Only `from` gets the link (and `to` on its allowlist); `to` learns nothing of `from`.
  oneWay?: boolean;
}

export interface WorldOptions {
  names: string[];
  links: LinkSpec[];
  // Segments configured (key, links) but not started: their identity is used by the test itself.
  noStart?: string[];
  // Segments nobody else allowlists (unless a two-way link says otherwise). Everyone else
  // allowlists everyone (`stitch peer add`), so versions relayed along a line are accepted.
  untrusted?: string[];
}

// What `stitch status` reports is the gateway's own counters record.
export type Counters = GatewayCounters;

export interface Status {
  segment: string;
  peerId: string;
  s3: string;
  p2p: string[];
  stats: { objects: number; versions: number; chunks: number; storedBytes: number; logicalBytes: number; buckets: number };
  peers: Array<{ name: string; peerId: string; connected: boolean; lastCatchUp?: number; lastCatchUpEntries: number }>;
  counters: Counters;
  replicationBacklog: number;
  reader: { recovered: number; corrupt: number; missing: number };
}

interface Node {
  name: string;
  dataDir: string;
  s3Port: number;
  p2pPort: number;
  peerId: string;
  child?: ChildProcess;
  exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr: string;
  client?: S3Client;
}

export interface ChunkInfo {
  cid: string;
  length: number;
  inline: boolean;
}

// Bytes of the chunks that are stored as files (and so fetched and counted by the gateway).
export const storedBytes = (chunks: ChunkInfo[]) => chunks.filter((c) => !c.inline).reduce((n, c) => n + c.length, 0);

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

// A free TCP port on loopback: bind port 0, read it, close. (A tiny race with other processes is
// accepted; ports come from the ephemeral range, which the kernel hands out round-robin.)
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

// `stitch --data DIR <args>`: never throws, the exit code is part of the answer.
export function stitch(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((res) => {
    execFile(NODE, [MAIN, '--data', dataDir, ...args], { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 * MiB }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      res({ code, stdout, stderr });
    });
  });
}

async function stitchOk(dataDir: string, args: string[]): Promise<string> {
  const r = await stitch(dataDir, args);
  if (r.code !== 0) throw new Error(`stitch ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

export class World {
  private readonly nodes = new Map<string, Node>();

  private constructor(nodes: Node[]) {
    for (const n of nodes) this.nodes.set(n.name, n);
  }

  // Creates, configures and starts every segment; ready when every one printed its ready line.
  static async create(o: WorldOptions): Promise<World> {
    const nodes: Node[] = [];
    for (const name of o.names) {
      const dataDir = mkdtempSync(join(tmpdir(), `stitch-world-${name}-`));
      nodes.push({ name, dataDir, s3Port: await freePort(), p2pPort: await freePort(), peerId: '', stderr: '' });
    }
    const world = new World(nodes);
    try {
      await world.configure(o);
      await Promise.all(nodes.filter((n) => !o.noStart?.includes(n.name)).map((n) => world.start(n.name)));
    } catch (err) {
      await world.stop();
      throw err;
    }
    return world;
  }

  private async configure(o: WorldOptions): Promise<void> {
    for (const n of this.nodes.values()) {
      writeFileSync(join(n.dataDir, 'segment.json'), `${JSON.stringify({
        name: n.name, data: '.', s3: `127.0.0.1:${n.s3Port}`, p2p: this.p2p(n.name), peers: [],
      }, null, 2)}\n`);
    }
    await Promise.all([...this.nodes.values()].map(async (n) => {
      const id = JSON.parse(await stitchOk(n.dataDir, ['--json', 'id'])) as { name: string; peerId: string; p2p: string };
      if (id.name !== n.name || id.p2p !== this.p2p(n.name)) throw new Error(`stitch id on ${n.name} answered ${JSON.stringify(id)}`);
      n.peerId = id.peerId;
    }));
    // Every segment's config edits in order (one file each), segments in parallel.
    const edits = new Map<string, string[][]>([...this.nodes.keys()].map((k) => [k, []]));
    const known = new Map<string, Set<string>>([...this.nodes.keys()].map((k) => [k, new Set<string>()]));
    const linkArgs = (from: string, to: string, l: LinkSpec) => {
      known.get(from)!.add(to);
      edits.get(from)!.push(['link', 'add', to, this.p2p(to), '--peer-id', this.node(to).peerId,
        '--bucket', l.bucket ?? '*', '--mode', l.mode ?? 'metadata-only', '--direction', l.direction ?? 'both']);
    };
    for (const l of o.links) {
      linkArgs(l.from, l.to, l);
      if (!l.oneWay) linkArgs(l.to, l.from, { ...l, direction: flip(l.direction ?? 'both') });
    }
    const untrusted = new Set(o.untrusted ?? []);
    for (const a of this.nodes.keys()) {
      if (untrusted.has(a)) continue;
      for (const b of this.nodes.keys()) {
        if (b === a || untrusted.has(b) || known.get(a)!.has(b)) continue;
        edits.get(a)!.push(['peer', 'add', b, this.node(b).peerId]);
      }
    }
    await Promise.all([...edits].map(async ([name, list]) => {
      for (const args of list) await stitchOk(this.node(name).dataDir, args);
    }));
  }

  private node(name: string): Node {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`no segment ${name} in this world`);
    return n;
  }

  names(): string[] {
    return [...this.nodes.keys()];
  }

  p2pPort(name: string): number {
    return this.node(name).p2pPort;
  }

  p2p(name: string): string {
    return `/ip4/127.0.0.1/tcp/${this.node(name).p2pPort}`;
  }

  dataDir(name: string): string {
    return this.node(name).dataDir;
  }

  peerId(name: string): string {
    return this.node(name).peerId;
  }

  stderr(name: string): string {
    return this.node(name).stderr;
  }

  endpoint(name: string): string {
    return `http://127.0.0.1:${this.node(name).s3Port}`;
  }

  // Starts (or restarts) `stitch serve` on the segment's own config; resolves when ready.
  async start(name: string): Promise<void> {
    const n = this.node(name);
    if (n.child && n.child.exitCode === null && n.child.signalCode === null) throw new Error(`${name} is already running`);
    const child = spawn(NODE, [MAIN, '--data', n.dataDir, 'serve'], {
      cwd: ROOT,
      env: { ...process.env, STITCH_ACCESS_KEY_ID: ACCESS_KEY_ID, STITCH_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    n.child = child;
    n.stderr += `---- start ${name} pid ${child.pid}\n`;
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      n.stderr += d;
      if (n.stderr.length > 1_000_000) n.stderr = n.stderr.slice(-500_000);
    });
    n.exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
    await new Promise<void>((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${name}: stitch serve not ready after 60 s; stderr:\n${n.stderr}`)), 60_000);
      const rl = createInterface({ input: child.stdout! });
      rl.on('line', (line) => {
        try {
          const msg = JSON.parse(line) as { ready?: boolean; peerId?: string };
          if (!msg.ready) return;
          clearTimeout(timer);
          if (msg.peerId !== n.peerId) rej(new Error(`${name} serves as ${msg.peerId}, stitch id said ${n.peerId}`));
          else res();
        } catch {
          // not the ready line
        }
      });
      void n.exited!.then(({ code, signal }) => {
        clearTimeout(timer);
        rej(new Error(`${name}: stitch serve exited (${code ?? signal}) before ready; stderr:\n${n.stderr}`));
      });
    });
  }

  running(name: string): boolean {
    const c = this.node(name).child;
    return c !== undefined && c.exitCode === null && c.signalCode === null;
  }

  // Sends a signal and waits for the process to exit (SIGKILL for crash cases).
  async kill(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const n = this.node(name);
    if (!n.child || !n.exited) throw new Error(`${name} was never started`);
    // Its keep-alive sockets die with the process: a client made after a restart starts clean.
    n.client?.destroy();
    n.client = undefined;
    if (this.running(name)) n.child.kill(signal);
    const hard = setTimeout(() => n.child!.kill('SIGKILL'), 20_000);
    try {
      return await n.exited;
    } finally {
      clearTimeout(hard);
    }
  }

  async restart(name: string, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.running(name)) await this.kill(name, signal);
    await this.start(name);
  }

  // An S3 client for the segment (path style, the world's key, no retries: failures surface).
  s3(name: string): S3Client {
    const n = this.node(name);
    n.client ??= new S3Client({
      endpoint: this.endpoint(name),
      region: REGION,
      forcePathStyle: true,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
      maxAttempts: 1,
    });
    return n.client;
  }

  // Live state of the running segment, over its admin socket (what `stitch status --json` reads).
  async status(name: string): Promise<Status> {
    return (await fetchStatus(this.node(name).dataDir)) as Status;
  }

  // `stitch --data DIR <args>` against this segment's data dir.
  cli(name: string, args: string[]): Promise<CliResult> {
    return stitch(this.node(name).dataDir, args);
  }

  // Chunk files of the segment on disk: CID -> path (`<data>/chunks/<last 2 chars>/<cid>`).
  chunkFiles(name: string): Map<string, string> {
    const root = join(this.node(name).dataDir, 'chunks');
    const out = new Map<string, string>();
    for (const shard of readdirSync(root)) {
      if (shard === 'tmp') continue;
      for (const cid of readdirSync(join(root, shard))) out.set(cid, join(root, shard, cid));
    }
    return out;
  }

  // The chunks of one version as its manifest lists them, in order. Chunks of at most 4 KiB are
  // `inline` (identity CIDs carrying their bytes): never a file, never fetched. Read from the
  // segment's metadata by a read-only open, as the CLI's read commands do beside a server.
  async chunksOf(name: string, bucket: string, key: string, versionId?: string): Promise<ChunkInfo[]> {
    const seg = await Segment.open({ dataDir: this.node(name).dataDir, readOnly: true });
    try {
      const v = await seg.head(bucket, key, versionId ? { versionId } : {});
      if (!('chunks' in v.content)) throw new Error(`${bucket}/${key} has a manifest tree; these tests use small objects`);
      return v.content.chunks.map(([cid, length]) => ({ cid: cid.toString(), length, inline: isInlineCid(cid) }));
    } finally {
      await seg.close();
    }
  }

  chunkPath(name: string, cid: string): string {
    return join(this.node(name).dataDir, 'chunks', cid.slice(-2), cid);
  }

  // SIGTERM every running segment, wait for them, remove the data dirs. With STITCH_WORLD_LOGS
  // set to a directory, each segment's stderr is kept there (for diagnosing a failed run).
  async stop(): Promise<void> {
    for (const n of this.nodes.values()) n.client?.destroy();
    await Promise.all([...this.nodes.keys()].filter((k) => this.running(k)).map((k) => this.kill(k, 'SIGTERM')));
    const logs = process.env.STITCH_WORLD_LOGS;
    if (logs) {
      mkdirSync(logs, { recursive: true });
      for (const n of this.nodes.values()) writeFileSync(join(logs, `${basename(n.dataDir)}.log`), n.stderr);
    }
    for (const n of this.nodes.values()) rmSync(n.dataDir, { recursive: true, force: true });
  }
}

function flip(d: Direction): Direction {
  return d === 'send' ? 'receive' : d === 'receive' ? 'send' : 'both';
}

// A line a-b-c-...: each neighbour pair linked both ways.
export function line(names: string[], o: Omit<LinkSpec, 'from' | 'to'> = {}): LinkSpec[] {
  return names.slice(1).map((to, i) => ({ from: names[i], to, ...o }));
}

// Polls `fn` until it returns a truthy value (returned) or the time is up (throws with the last
// value or error). Errors thrown by `fn` count as "not yet".
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs: number, what = 'condition', intervalMs = 50): Promise<NonNullable<T>> {
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
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const md5hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
export const randomData = (size: number) => randomBytes(size);

// The error an SDK v3 call fails with: its S3 code and HTTP status.
export async function s3Failure(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number }; Code?: string };
    return { name: err.Code ?? err.name, status: err.$metadata?.httpStatusCode };
  }
  throw new Error('expected the S3 call to fail, it succeeded');
}

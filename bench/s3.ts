// S3 gateway benchmark: the stitchfs gateway (`stitch serve --s3`) against Ceph radosgw (one
// monitor, one memstore OSD, started here) and s3rver (npm), all driven by the same
// @aws-sdk/client-s3 client in the same run, plus the page-cache limit (`cat` of the same file
// to /dev/null). Prints one table to stdout (progress goes to stderr). No assertions.
//
// Run: node_modules/.bin/node bench/s3.ts [--size-mib 1024] [--seconds 10] [--ops 20000]
//        [--clients 16] [--object-kib 4] [--part-mib 16] [--queue 4]
//        [--only stitchfs,radosgw,s3rver] [--dir /tmp] [--profile DIR] [--keep]
//
// Peers are installed when missing: radosgw, ceph-mon, ceph-osd with apt-get (needs root) and
// s3rver with npm into bench/.peers/.
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Keystream, KiB, MiB } from './lib/data.ts';
import { CLIENT_DESCRIPTION, createBucket, errorText, warmUp, getToSink, makeClient, opsPerSec, percentile, putFile, smallGets, smallPuts, type OpsResult, type Transfer } from './lib/s3-load.ts';
import { cephVersion, s3rverVersion, startRadosgw, startS3rver, startStitch, type Peer } from './lib/s3-peers.ts';
import { hotSpots, nowUs, type Window } from './lib/s3-profile.ts';
import { fsType, machine, mbps, packageVersion } from './lib/sys.ts';
import { formatTable, type Column, type Row } from './lib/table.ts';

const SYSTEMS = ['stitchfs', 'radosgw', 's3rver'] as const;
type System = (typeof SYSTEMS)[number];

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    seconds: { type: 'string', default: '10' },
    ops: { type: 'string', default: '20000' },
    clients: { type: 'string', default: '16' },
    'object-kib': { type: 'string', default: '4' },
    'part-mib': { type: 'string', default: '16' },
    queue: { type: 'string', default: '4' },
    only: { type: 'string', default: SYSTEMS.join(',') },
    dir: { type: 'string', default: tmpdir() },
    profile: { type: 'string' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: node_modules/.bin/node bench/s3.ts [--size-mib N] [--seconds N] [--ops N] [--clients N]
         [--object-kib N] [--part-mib N] [--queue N] [--only ${SYSTEMS.join(',')}] [--dir DIR]
         [--profile DIR (V8 CPU profile of the stitchfs server)] [--keep]`);
  process.exit(0);
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`--${name} must be a positive number, got '${text}'`);
    process.exit(2);
  }
  return n;
}

const SIZE = Math.round(positive('size-mib', args['size-mib']) * MiB);
const SECONDS = positive('seconds', args.seconds);
const MAX_OPS = Math.floor(positive('ops', args.ops));
const CLIENTS = Math.floor(positive('clients', args.clients));
const OBJ = Math.round(positive('object-kib', args['object-kib']) * KiB);
const PART = Math.round(positive('part-mib', args['part-mib']) * MiB);
const QUEUE = Math.floor(positive('queue', args.queue));
const ONLY = args.only.split(',').map((s) => s.trim()).filter(Boolean);
for (const s of ONLY) {
  if (!(SYSTEMS as readonly string[]).includes(s)) {
    console.error(`--only: unknown system '${s}' (known: ${SYSTEMS.join(', ')})`);
    process.exit(2);
  }
}
const RUN = SYSTEMS.filter((s) => ONLY.includes(s));
const PROFILE_DIR = args.profile ? resolve(args.profile) : undefined;
// A big transfer slower than this is reported as failed rather than stalling the run.
const BIG_TIMEOUT_MS = Math.max(120_000, Math.ceil(SIZE / 5e3)); // 5 MB/s
const BUCKET = 'bench';

const started = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

const work = mkdtempSync(join(resolve(args.dir), 'stitch-s3bench-'));
let cleaned = false;
function cleanup(): void {
  if (cleaned) return;
  cleaned = true;
  if (args.keep) progress(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
// Runs after bench/lib/s3-peers.ts's own exit hook (registered at import) killed the children.
process.once('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    progress(`${sig}: stopping`);
    process.exit(130);
  });
}

function fmtSize(bytes: number): string {
  return bytes % (1024 * MiB) === 0 ? `${bytes / (1024 * MiB)} GiB` : bytes % MiB === 0 ? `${bytes / MiB} MiB` : `${bytes} B`;
}

function writeSource(path: string, size: number): void {
  const ks = new Keystream('s3 bench big object');
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(MiB, left);
      const buf = ks.next(n);
      for (let off = 0; off < n; ) off += writeSync(fd, buf, off, n - off);
      left -= n;
    }
    // Clean pages: no writeback of the source overlaps a measurement.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

async function catToNull(path: string): Promise<number> {
  const devnull = openSync('/dev/null', 'w');
  try {
    const t0 = performance.now();
    await new Promise<void>((res, rej) => {
      const c = spawn('cat', [path], { stdio: ['ignore', devnull, 'inherit'] });
      c.once('error', rej);
      c.once('exit', (code) => (code === 0 ? res() : rej(new Error(`cat exited ${code}`))));
    });
    return (performance.now() - t0) / 1000;
  } finally {
    closeSync(devnull);
  }
}

// ---------------------------------------------------------------------------------------------

type Cell = string;
interface Column_ {
  putBig?: Cell;
  getBig?: Cell;
  putSmall?: Cell;
  putSmallLat?: Cell;
  getSmall?: Cell;
  getSmallLat?: Cell;
  ready?: Cell;
}
const results = new Map<System, Column_>();
// CPU of this process (the client) per workload, as a share of one core: near 100% means the
// client, not the server, may be what limits that cell.
const clientCpu = new Map<System, string[]>();
// Workload time windows of the stitchfs run, to split its CPU profile by workload.
const stitchPhases: (Window & { name: string })[] = [];
const notes: string[] = [];

function short(reason: string, max = 70): string {
  const one = reason.replace(/\s+/g, ' ').trim();
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

function failed(reason: string): Cell {
  return `failed: ${short(reason, 48)}`;
}

function transferCell(t: Transfer): Cell {
  return `${mbps(t.bytes, t.secs).toFixed(0)} MB/s (${t.secs.toFixed(1)} s)`;
}

function opsCell(r: OpsResult): Cell {
  const base = `${opsPerSec(r).toFixed(0)} ops/s`;
  return r.errors > 0 ? `${base}; ${r.errors} errors: ${short(r.firstError ?? '?', 50)}` : base;
}

function latencyCell(r: OpsResult): Cell {
  return r.ops > 0 ? `${percentile(r.latencies, 0.5).toFixed(1)} / ${percentile(r.latencies, 0.99).toFixed(1)} ms` : '-';
}

async function startPeer(system: System): Promise<Peer> {
  switch (system) {
    case 'stitchfs':
      return await startStitch({ dir: work, cpuProfDir: PROFILE_DIR }, progress);
    case 'radosgw':
      // Everything the OSD stores stays in RAM: the big object, the small ones, and slack.
      return await startRadosgw({ dir: work, memstoreBytes: Math.max(4 * 1024 * MiB, 3 * SIZE) }, progress);
    case 's3rver':
      return await startS3rver({ dir: work }, progress);
  }
}

async function measure(system: System): Promise<void> {
  const col: Column_ = {};
  results.set(system, col);
  clientCpu.set(system, []);
  progress(`${system}: starting`);
  let peer: Peer;
  try {
    peer = await startPeer(system);
  } catch (err) {
    const reason = errorText(err);
    progress(`${system}: failed to start: ${reason}`);
    const cell = failed(reason);
    Object.assign(col, { putBig: cell, getBig: cell, putSmall: cell, getSmall: cell, ready: cell });
    Object.assign(col, { putSmallLat: '-', getSmallLat: '-' });
    notes.push(`${system} failed to start: ${reason}`);
    return;
  }
  col.ready = `${peer.startSecs.toFixed(1)} s`;
  notes.push(...peer.notes);
  const client = makeClient(peer, Math.max(CLIENTS, QUEUE) * 2);
  try {
    try {
      await createBucket(client, BUCKET);
      await warmUp(client, BUCKET);
    } catch (err) {
      const cell = failed(`bucket setup: ${errorText(err)}`);
      Object.assign(col, { putBig: cell, getBig: cell, putSmall: cell, getSmall: cell });
      notes.push(`${system}: bucket setup failed: ${errorText(err)}`);
      return;
    }
    const source = join(work, 'source.bin');
    const step = async (name: keyof Column_, what: string, fn: () => Promise<Cell>): Promise<boolean> => {
      progress(`${system}: ${what}`);
      const startUs = nowUs();
      const cpu0 = process.cpuUsage();
      try {
        col[name] = await fn();
        const cpu = process.cpuUsage(cpu0);
        const busy = (cpu.user + cpu.system) / (nowUs() - startUs);
        clientCpu.get(system)!.push(`${what} ${(busy * 100).toFixed(0)}%`);
        progress(`${system}: ${what}: ${col[name]} (bench client CPU ${(busy * 100).toFixed(0)}% of a core)`);
        return true;
      } catch (err) {
        col[name] = failed(errorText(err));
        notes.push(`${system}: ${what} failed: ${errorText(err)}`);
        progress(`${system}: ${what} failed: ${errorText(err)}`);
        return false;
      } finally {
        if (system === 'stitchfs') stitchPhases.push({ name: what, startUs, endUs: nowUs() });
      }
    };
    const put = await step('putBig', `PUT ${fmtSize(SIZE)}`, async () => transferCell(await putFile(client, BUCKET, 'big', source, SIZE, PART, QUEUE, BIG_TIMEOUT_MS)));
    if (put) await step('getBig', `GET ${fmtSize(SIZE)}`, async () => transferCell(await getToSink(client, BUCKET, 'big', SIZE, BIG_TIMEOUT_MS)));
    else col.getBig = 'skipped: PUT failed';
    let keys: string[] = [];
    const spec = { clients: CLIENTS, seconds: SECONDS, maxOps: MAX_OPS };
    await step('putSmall', `PUT ${OBJ / KiB} KiB x ${CLIENTS} clients`, async () => {
      const r = await smallPuts(client, BUCKET, 'small', OBJ, spec);
      keys = r.keys;
      col.putSmallLat = latencyCell(r);
      return opsCell(r);
    });
    await step('getSmall', `GET ${OBJ / KiB} KiB x ${CLIENTS} clients`, async () => {
      const r = await smallGets(client, BUCKET, keys, OBJ, spec);
      col.getSmallLat = latencyCell(r);
      return opsCell(r);
    });
  } finally {
    client.close();
    progress(`${system}: stopping`);
    await peer.stop();
    // Free the disk and page cache this system used before the next one runs.
    for (const d of ['stitch-data', 's3rver-data', 'ceph']) rmSync(join(work, d), { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

progress(`work dir ${work} (${fsType(work)})`);
const source = join(work, 'source.bin');
progress(`writing ${fmtSize(SIZE)} of random bytes`);
writeSource(source, SIZE);
await catToNull(source); // warm the page cache
const catSecs: number[] = [];
for (let i = 0; i < 3; i++) catSecs.push(await catToNull(source));
const catBest = Math.min(...catSecs);
progress(`cat to /dev/null: ${mbps(SIZE, catBest).toFixed(0)} MB/s (best of 3)`);

function listProfiles(): string[] {
  try {
    return readdirSync(PROFILE_DIR!).filter((f) => f.endsWith('.cpuprofile')).sort();
  } catch {
    return [];
  }
}
const profilesBefore = PROFILE_DIR ? new Set(listProfiles()) : undefined;

for (const s of RUN) await measure(s);

let profileText: string | undefined;
if (PROFILE_DIR && RUN.includes('stitchfs')) {
  // One .cpuprofile per thread of the server (main, then workers), written as it exited.
  const files = profilesBefore === undefined ? [] : listProfiles().filter((f) => !profilesBefore!.has(f));
  if (files.length) {
    const parts: string[] = [];
    for (const f of files) {
      const file = join(PROFILE_DIR, f);
      const thread = /\.(\d+)\.\d+\.cpuprofile$/.exec(f)?.[1] ?? '?';
      const label = `stitchfs server thread ${thread}${thread === '0' ? ' (main)' : ' (worker)'}`;
      const report = (title: string, top: number, window?: Window): void => {
        const { busyMs, idleMs, spots } = hotSpots(file, top, window);
        if (window && busyMs < 50) return; // a thread idle in this phase
        parts.push(
          `${title}: busy ${(busyMs / 1000).toFixed(1)} s, idle ${(idleMs / 1000).toFixed(1)} s; top self time:`,
          ...spots.map((s) => `  ${(s.share * 100).toFixed(1).padStart(5)}%  ${(s.ms / 1000).toFixed(2).padStart(6)} s  ${s.name}`),
        );
      };
      report(`${label}, whole run (${file})`, thread === '0' ? 10 : 5);
      for (const ph of stitchPhases) report(`${label}, ${ph.name}`, 5, ph);
    }
    profileText = parts.join('\n');
  } else {
    profileText = `no new .cpuprofile in ${PROFILE_DIR} (did the stitchfs server exit cleanly?)`;
  }
}

const sdkVersion = packageVersion('@aws-sdk/client-s3');
const versions = [
  `node ${process.version}`,
  RUN.includes('radosgw') ? `ceph ${cephVersion()}` : undefined,
  RUN.includes('s3rver') ? `s3rver ${s3rverVersion()}` : undefined,
  `@aws-sdk/client-s3 ${sdkVersion}`,
].filter(Boolean).join(', ');

const columns: Column[] = [
  { title: 'workload' },
  ...RUN.map((s) => ({ title: s, align: 'right' as const })),
  { title: 'page-cache limit', align: 'right' },
];
const cell = (s: System, k: keyof Column_): string => results.get(s)?.[k] ?? '-';
const rows: Row[] = [
  [`PUT ${fmtSize(SIZE)}, multipart ${PART / MiB} MiB x ${QUEUE} in flight`, ...RUN.map((s) => cell(s, 'putBig')), '-'],
  [`GET ${fmtSize(SIZE)}, streamed to a sink`, ...RUN.map((s) => cell(s, 'getBig')), `${mbps(SIZE, catBest).toFixed(0)} MB/s (cat > /dev/null)`],
  [`PUT ${OBJ / KiB} KiB, ${CLIENTS} clients`, ...RUN.map((s) => cell(s, 'putSmall')), '-'],
  ['  latency p50 / p99', ...RUN.map((s) => cell(s, 'putSmallLat')), '-'],
  [`GET ${OBJ / KiB} KiB, ${CLIENTS} clients (objects just written)`, ...RUN.map((s) => cell(s, 'getSmall')), '-'],
  ['  latency p50 / p99', ...RUN.map((s) => cell(s, 'getSmallLat')), '-'],
  ['ready after start', ...RUN.map((s) => cell(s, 'ready')), '-'],
];

const storage: string[] = [];
if (RUN.includes('stitchfs')) storage.push(`stitchfs: chunk files + embedded SQL on ${fsType(work)}, fsync'd before ack`);
if (RUN.includes('radosgw')) storage.push('radosgw: 1 mon + 1 OSD on memstore (RAM), pool size 1, no cephx, msgr crc, no mgr');
if (RUN.includes('s3rver')) storage.push(`s3rver: plain files on ${fsType(work)}, no fsync`);

for (const s of RUN) {
  const c = clientCpu.get(s);
  if (c?.length) notes.push(`bench client CPU (share of one core) against ${s}: ${c.join(', ')}`);
}

const out = [
  `S3 gateway benchmark — ${machine()}; ${versions}`,
  `client: ${CLIENT_DESCRIPTION}; small ops: ${CLIENTS} concurrent loops, ${SECONDS} s or ${MAX_OPS} ops, whichever first; MB = 10^6 bytes`,
  `storage: ${storage.join('; ')}`,
  '',
  formatTable(columns, rows),
  ...(notes.length ? ['', ...notes.map((n) => `note: ${n}`)] : []),
];
console.log(out.join('\n'));
if (profileText) process.stderr.write(`\n${profileText}\n`);
progress(`done in ${((performance.now() - started) / 1000).toFixed(0)} s`);
cleanup();

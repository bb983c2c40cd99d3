// Ingest benchmark of the core store: stitchfs put against CPU limits (sha256, md5), disk limits
// (cp, cp + sync) and a real peer (@helia/unixfs into a blockstore-fs FsBlockstore), all fed the
// same files in the same run; plus FastCDC vs fixed-size dedup on two versions of a real tree.
// Prints one table to stdout (progress goes to stderr). No assertions.
//
// Run: node_modules/.bin/node bench/ingest.ts [--size-mib 1024] [--files 16] [--jobs 4]
//        [--rounds 3] [--dir /tmp] [--tree DIR] [--tree-cap-mib 256] [--seed 1] [--keep]
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { unixfs } from '@helia/unixfs';
import { FsBlockstore } from 'blockstore-fs';
import type { CID } from 'multiformats/cid';
import { DEFAULT_CHUNKER, cutPoints, scannerConfig } from '../src/core/chunker.ts';
import { cutScannerFor, nativeCutScanner } from '../src/native/cdc.ts';
import { ChunkGuard } from '../src/segment/chunk-guard.ts';
import { ingest } from '../src/segment/ingest.ts';
import { Segment } from '../src/segment/segment.ts';
import type { ChunkStore } from '../src/store/chunk-store.ts';
import {
  EXTENT_MAX, EXTENT_MIN, KiB, MiB, Rng, editedVersion, listTree, pickEdits, writeDataset, type Dataset, type EditKind,
} from './lib/data.ts';
import { REPO_ROOT, duFiles, fsType, machine, mbps, packageVersion, run, syncAll, timed } from './lib/sys.ts';
import { formatTable, type Row } from './lib/table.ts';

const DEFAULT_TREE = existsSync('/usr/lib/python3') ? '/usr/lib/python3' : join(REPO_ROOT, 'node_modules');

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    files: { type: 'string', default: '16' },
    jobs: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    dir: { type: 'string', default: tmpdir() },
    tree: { type: 'string', default: DEFAULT_TREE },
    'tree-cap-mib': { type: 'string', default: '256' },
    seed: { type: 'string', default: '1' },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log('usage: node_modules/.bin/node bench/ingest.ts [--size-mib N] [--files N] [--jobs N] [--rounds N] [--dir DIR] [--tree DIR] [--tree-cap-mib N] [--seed N] [--keep]');
  process.exit(0);
}

function positiveInt(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got '${text}'`);
    process.exit(2);
  }
  return n;
}

const SIZE = positiveInt('size-mib', args['size-mib']) * MiB;
const FILES = positiveInt('files', args.files);
const JOBS = positiveInt('jobs', args.jobs);
const ROUNDS = positiveInt('rounds', args.rounds);
const SEED = positiveInt('seed', args.seed);
const TREE = resolve(args.tree);
const TREE_CAP = positiveInt('tree-cap-mib', args['tree-cap-mib']) * MiB;
const READ_PIECE = MiB;
const COPY_FRACTION = 0.5;
// Real-tree v2: share of files (in each size class) with a few bytes inserted or deleted, and
// share with bytes appended.
const EDIT_SHARE = 0.05;
const APPEND_SHARE = 0.01;
const FIXED_CHUNK = 256 * KiB;
const CDC_NAME = `${DEFAULT_CHUNKER.min / KiB}/${DEFAULT_CHUNKER.avg / KiB}/${DEFAULT_CHUNKER.max / KiB} KiB`;

const started = performance.now();
function progress(msg: string): void {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
}

function read(path: string): AsyncIterable<Buffer> {
  return createReadStream(path, { highWaterMark: READ_PIECE });
}

// One measurement of one row.
interface Result {
  system: string;
  secs: number;
  bytes: number;
  stored?: number;
  dedup?: number;
  notes: string;
}

// All rounds of one row: the median time is reported, with the range of the rounds.
interface Measured extends Result {
  all: number[];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function merge(rs: Result[]): Measured {
  const all = rs.map((r) => r.secs);
  return { ...rs[rs.length - 1], secs: median(all), all };
}

function toRow(r: Measured): Row {
  const range = r.all.length < 2 ? undefined
    : `${mbps(r.bytes, Math.max(...r.all)).toFixed(0)}-${mbps(r.bytes, Math.min(...r.all)).toFixed(0)}`;
  return [r.system, mbps(r.bytes, r.secs), range, r.secs, r.stored === undefined ? undefined : r.stored / MiB, r.dedup, r.notes];
}

// ---- rows ----

async function hashOnly(ds: Dataset, algo: 'sha256' | 'md5', notes: string): Promise<Result[]> {
  const { secs } = await timed(async () => {
    for (const f of ds.files) {
      const h = createHash(algo);
      for await (const piece of read(f.path)) h.update(piece);
      h.digest();
    }
  });
  return [{ system: `${algo} only`, secs, bytes: ds.totalBytes, notes }];
}

// A chunk store that keeps nothing: what a put costs before any byte reaches the disk.
const nullStore: ChunkStore = {
  has: async () => false,
  put: async () => {},
  get: async () => undefined,
  rewrite: async () => {},
  deleteSync: () => {},
  list: async function* () {},
  flush: async () => {},
  close: async () => {},
};

async function ingestCpu(ds: Dataset, scannerKind: string): Promise<Result[]> {
  const scanner = cutScannerFor(scannerConfig(DEFAULT_CHUNKER));
  let chunks = 0;
  const { secs } = await timed(async () => {
    for (const f of ds.files) chunks += (await ingest(read(f.path), nullStore, scanner, new ChunkGuard(), () => false)).chunks.length;
  });
  return [{
    system: 'stitchfs ingest, no store', secs, bytes: ds.totalBytes,
    notes: `put's ingest() into a store that keeps nothing: ${scannerKind} FastCDC, sha256 CIDs, md5 ETag; ${chunks} chunks`,
  }];
}

async function cp(ds: Dataset, work: string, withSync: boolean): Promise<Result[]> {
  const dst = join(work, withSync ? 'cp-sync' : 'cp');
  const { secs } = await timed(() => {
    run('cp', ['-r', ds.dir, dst]);
    if (withSync) syncAll();
  });
  const stored = duFiles(dst).bytes;
  rmSync(dst, { recursive: true, force: true });
  syncAll(); // untimed: nothing of this row may land on the next one
  return [{
    system: withSync ? 'cp -r + sync' : 'cp -r', secs, bytes: ds.totalBytes, stored, dedup: ds.totalBytes / stored,
    notes: withSync ? 'durable disk limit [3]' : 'page-cache limit, not durable',
  }];
}

async function stitchfsPut(ds: Dataset, work: string, jobs: number): Promise<Result[]> {
  const dataDir = join(work, `stitchfs-${jobs}`);
  const seg = await Segment.open({ dataDir });
  seg.createBucket('bench');
  const queue = [...ds.files];
  // From the first put to the last one returned (each durable on return); open and close excluded.
  const { secs } = await timed(async () => {
    const worker = async (): Promise<void> => {
      for (let f = queue.shift(); f; f = queue.shift()) await seg.put('bench', f.name, read(f.path));
    };
    await Promise.all(Array.from({ length: jobs }, worker));
  });
  const st = seg.stats();
  await seg.close();
  rmSync(dataDir, { recursive: true, force: true });
  syncAll();
  const mismatch = st.logicalBytes === ds.totalBytes ? '' : `; stats logical ${st.logicalBytes} B != ${ds.totalBytes} B`;
  return [{
    system: jobs === 1 ? 'stitchfs put' : `stitchfs put, ${jobs} in parallel`, secs, bytes: ds.totalBytes,
    stored: st.storedBytes, dedup: st.dedupRatio,
    notes: `${jobs === 1 ? 'one put at a time' : `${jobs} puts at a time`}; durable [1]; ${st.chunks} chunks${mismatch}`,
  }];
}

// What the helia rows observed about the importer's output, for the header.
let heliaObserved = '';

// @helia/unixfs with its default importer settings into blockstore-fs. The unixfs() factory only
// needs { blockstore } (UnixFSComponents), so no full Helia node is started.
async function heliaAdd(ds: Dataset, work: string, mode: 'sequential' | 'addAll'): Promise<Result[]> {
  const dir = join(work, `helia-${mode}`);
  const blockstore = new FsBlockstore(dir);
  await blockstore.open();
  const fs = unixfs({ blockstore });
  const roots: CID[] = [];
  const { secs } = await timed(async () => {
    if (mode === 'sequential') {
      for (const f of ds.files) roots.push(await fs.addByteStream(read(f.path)));
    } else {
      const candidates = ds.files.map((f) => ({ path: f.name, content: read(f.path) }));
      for await (const entry of fs.addAll(candidates)) roots.push(entry.cid);
    }
  });
  await blockstore.close();
  const sync = await timed(() => syncAll());
  const du = duFiles(dir);
  rmSync(dir, { recursive: true, force: true });
  syncAll();
  const root = roots[0];
  const codec = root.code === 0x70 ? 'dag-pb' : root.code === 0x55 ? 'raw' : `codec 0x${root.code.toString(16)}`;
  heliaObserved = `root CIDv${root.version} ${codec}, largest block ${du.largest} B` +
    `${du.largest === MiB ? ' (raw 1 MiB leaves: a dag-pb leaf would be larger)' : ''}`;
  const name = mode === 'sequential' ? 'helia unixfs' : 'helia unixfs addAll';
  const what = mode === 'sequential' ? 'addByteStream, one file at a time' : 'all files in one addAll';
  const add: Result = {
    system: name, secs, bytes: ds.totalBytes, stored: du.bytes, dedup: ds.totalBytes / du.bytes,
    notes: `${what}; NOT durable [2]; ${du.files} blocks`,
  };
  const synced: Result = { ...add, system: `${name} + sync`, secs: secs + sync.secs, notes: 'same, then sync(1): on disk [3]' };
  return [add, synced];
}

// Dedup of FastCDC vs fixed 256 KiB slices over v1 + v2 of a real tree, each file chunked on its
// own as the store does. Pure computation: chunks are hashed (sha256) into sets, nothing is stored.
function treeDedup(): { rows: Measured[]; title: string } {
  const tree = listTree(TREE, TREE_CAP);
  const picks = pickEdits(tree.files.map((f) => f.size), SEED, EDIT_SHARE, APPEND_SHARE);
  const scanner = cutScannerFor(scannerConfig(DEFAULT_CHUNKER));
  const chunkers = [
    { name: `FastCDC ${CDC_NAME}`, cuts: (b: Uint8Array) => cutPoints(b, scanner) },
    { name: `fixed ${FIXED_CHUNK / KiB} KiB`, cuts: (b: Uint8Array) => fixedCuts(b.length, FIXED_CHUNK) },
  ];
  const state = chunkers.map(() => ({ seen: new Set<string>(), unique: 0, afterV1: 0, secs: 0, editedLarge: 0 }));
  let logical = 0;
  let v2Bytes = 0;
  const edits: Record<EditKind, number> = { none: 0, insert: 0, delete: 0, append: 0 };
  let editedLarge = 0;
  // Adds the file's chunks to each chunker's set; returns the new unique bytes per chunker.
  const chunkAll = (bytes: Uint8Array): number[] => {
    logical += bytes.length;
    return chunkers.map((c, k) => {
      const s = state[k];
      const before = s.unique;
      const t0 = performance.now();
      let start = 0;
      for (const cut of c.cuts(bytes)) {
        if (cut > start) {
          const key = createHash('sha256').update(bytes.subarray(start, cut)).digest('latin1');
          if (!s.seen.has(key)) {
            s.seen.add(key);
            s.unique += cut - start;
          }
        }
        start = cut;
      }
      s.secs += (performance.now() - t0) / 1000;
      return s.unique - before;
    });
  };
  for (const f of tree.files) chunkAll(readFileSync(f.path));
  for (const s of state) s.afterV1 = s.unique;
  tree.files.forEach((f, i) => {
    const v2 = editedVersion(readFileSync(f.path), new Rng(`edit ${SEED} ${i}`), picks.get(i));
    edits[v2.kind]++;
    v2Bytes += v2.bytes.length;
    const added = chunkAll(v2.bytes);
    if (v2.kind !== 'none' && f.size >= MiB) {
      editedLarge++;
      added.forEach((a, k) => (state[k].editedLarge += a));
    }
  });
  const rows = chunkers.map((c, k): Measured => {
    const s = state[k];
    const added = s.unique - s.afterV1;
    return {
      system: c.name, secs: s.secs, all: [s.secs], bytes: logical, stored: s.unique, dedup: logical / s.unique,
      notes: `v1 alone ${(s.afterV1 / MiB).toFixed(1)} MiB; v2 adds ${(added / MiB).toFixed(2)} MiB ` +
        `(${(100 * added / v2Bytes).toFixed(2)}% of v2), ${(s.editedLarge / MiB).toFixed(2)} MiB of it from files >= 1 MiB [4]`,
    };
  });
  const title = `dedup over v1 + v2 of a real tree: ${TREE}, ${tree.files.length} files, ${(tree.bytes / MiB).toFixed(0)} MiB` +
    `${tree.skipped ? ` (${tree.skipped} files skipped to stay under ${TREE_CAP / MiB} MiB)` : ''}; ` +
    `v2: ${edits.insert} files got 1-16 B inserted, ${edits.delete} got 1-16 B deleted, ${edits.append} got 1-4 KiB appended ` +
    `(${editedLarge} of these >= 1 MiB)`;
  return { rows, title };
}

function fixedCuts(length: number, size: number): number[] {
  const cuts: number[] = [];
  for (let o = size; o < length; o += size) cuts.push(o);
  cuts.push(length);
  return cuts;
}

// ---- main ----

mkdirSync(args.dir, { recursive: true });
const work = mkdtempSync(join(args.dir, 'stitchfs-bench-'));
let cleaned = false;
function cleanup(): void {
  if (cleaned || args.keep) return;
  cleaned = true;
  rmSync(work, { recursive: true, force: true });
}
process.once('SIGINT', () => {
  cleanup();
  process.exit(130);
});

try {
  const scannerKind = nativeCutScanner(scannerConfig(DEFAULT_CHUNKER)) === null ? 'JS (native addon not built)' : 'native';
  progress(`generating ${SIZE / MiB} MiB in ${FILES} files under ${work}`);
  const ds = writeDataset(join(work, 'data'), { totalBytes: SIZE, files: FILES, seed: SEED, copyFraction: COPY_FRACTION });
  syncAll();

  // Rounds run every row in turn (not every round of one row in a row), so a burst of load from
  // elsewhere spreads over the systems instead of landing on one.
  type Step = { label: string; run: () => Promise<Result[]> };
  const plan: (Step | string)[] = [
    'CPU limits: the same 1 MiB reads from the page cache, then hashing',
    { label: 'sha256', run: () => hashOnly(ds, 'sha256', 'node:crypto; the cost of chunk CIDs') },
    { label: 'md5', run: () => hashOnly(ds, 'md5', 'node:crypto; the S3 ETag every put computes') },
    { label: 'stitchfs ingest, no store', run: () => ingestCpu(ds, scannerKind) },
    'disk limits: the same disk as the stores',
    { label: 'cp', run: () => cp(ds, work, false) },
    { label: 'cp + sync', run: () => cp(ds, work, true) },
    'stores, each into a fresh directory on the same disk',
    { label: 'stitchfs put', run: () => stitchfsPut(ds, work, 1) },
    { label: `stitchfs put, ${JOBS} in parallel`, run: () => stitchfsPut(ds, work, JOBS) },
    { label: 'helia unixfs', run: () => heliaAdd(ds, work, 'sequential') },
    { label: 'helia unixfs addAll', run: () => heliaAdd(ds, work, 'addAll') },
  ];
  const measured = new Map<Step, Result[][]>();
  for (let round = 1; round <= ROUNDS; round++) {
    for (const step of plan) {
      if (typeof step === 'string') continue;
      progress(`round ${round}/${ROUNDS}: ${step.label}`);
      const results = await step.run();
      const rounds = measured.get(step) ?? results.map(() => []);
      results.forEach((r, i) => rounds[i].push(r));
      measured.set(step, rounds);
    }
  }
  const rowsOf = new Map<string, Measured>();
  const rows: Row[] = [];
  for (const step of plan) {
    if (typeof step === 'string') rows.push(step);
    else for (const rs of measured.get(step) ?? []) {
      const m = merge(rs);
      rowsOf.set(m.system, m);
      rows.push(toRow(m));
    }
  }

  progress(`real-tree dedup over ${TREE}`);
  const tree = treeDedup();
  rows.push(tree.title, ...tree.rows.map(toRow));

  const get = (system: string): Measured => rowsOf.get(system)!;
  const fileSize = ds.files[0].size;
  const laterBytes = ds.totalBytes - ds.files[0].size;
  console.log(`# stitchfs ingest benchmark, ${new Date().toISOString()}, ${((performance.now() - started) / 1000).toFixed(0)} s`);
  console.log(`machine: ${machine()}; node ${process.version}; scratch ${work} (${fsType(work)})`);
  console.log(`data: ${(ds.totalBytes / MiB).toFixed(0)} MiB in ${ds.files.length} files of ${(fileSize / MiB).toFixed(fileSize % MiB ? 2 : 0)} MiB, seed ${SEED}: ` +
    `file 1 random; later files are ${EXTENT_MIN / KiB} KiB-${EXTENT_MAX / MiB} MiB extents, ${(100 * ds.copiedBytes / laterBytes).toFixed(1)}% of their bytes ` +
    `copied from earlier files at arbitrary byte offsets, the rest new (AES-CTR keystream); read warm from the page cache in ${READ_PIECE / MiB} MiB reads`);
  console.log(`stitchfs: ${scannerKind} FastCDC ${CDC_NAME}, sha2-256 raw CIDv1, FsChunkStore + SQLite. ` +
    `helia: @helia/unixfs ${packageVersion('@helia/unixfs')}, ipfs-unixfs-importer ${packageVersion('ipfs-unixfs-importer', join(REPO_ROOT, 'node_modules', '@helia', 'unixfs'))}, ` +
    `blockstore-fs ${packageVersion('blockstore-fs')}, default settings (CIDv1, raw leaves, fixed 1 MiB chunks, balanced DAG of 1024 links, ` +
    `50 files / 10 block writes in flight); observed ${heliaObserved}`);
  console.log(`MB/s = 1e6 logical (input) bytes per second, median of ${ROUNDS} round${ROUNDS > 1 ? 's' : ''} (rounds interleave the rows); range = slowest-fastest round; ` +
    's = median seconds; stored = unique bytes kept (chunks and manifests, or blocks); dedup = logical / stored');
  console.log('');
  console.log(formatTable([
    { title: 'system' },
    { title: 'MB/s', align: 'right' },
    { title: 'range', align: 'right' },
    { title: 's', align: 'right', digits: 2 },
    { title: 'stored MiB', align: 'right', digits: 1 },
    { title: 'dedup', align: 'right', digits: 2 },
    { title: 'notes' },
  ], rows));
  console.log('');
  console.log('[1] a put returns once durable: each new chunk written to tmp/, fsync\'d and renamed; the touched shard directories fsync\'d; one SQLite commit.');
  console.log('[2] blockstore-fs writes each block to a temp file and renames it, without fsync of files or directories: when add() returns, the data is in the page cache only.');
  console.log('[3] sync(1) is global: it also flushes whatever else on the machine is dirty.');
  console.log(`[4] every file chunked on its own, chunks keyed by sha256; stored = unique chunk bytes of v1 + v2; MB/s = in-memory chunk + hash speed, one round. ` +
    `v2 edits ${EDIT_SHARE * 100}% (+ appends to ${APPEND_SHARE * 100}%) of the files of each size class (<=64 KiB, <=256 KiB, <=1 MiB, larger), rounded up. ` +
    'The synthetic data set above repeats content at unaligned offsets, which fixed-size chunking (helia: 1 MiB) cannot find by construction; this tree is the fairer dedup comparison.');
  console.log('');
  const ratio = (a: Measured, b: Measured): string => (mbps(a.bytes, a.secs) / mbps(b.bytes, b.secs)).toFixed(2);
  const seq = get('stitchfs put');
  const par = get(`stitchfs put, ${JOBS} in parallel`);
  console.log(`stitchfs / helia, one file at a time, each as shipped (stitchfs durable, helia not): ${ratio(seq, get('helia unixfs'))}x`);
  console.log(`stitchfs / (helia + sync), one file at a time, both on disk at the end: ${ratio(seq, get('helia unixfs + sync'))}x`);
  console.log(`stitchfs ${JOBS} in parallel / helia addAll, each at its own concurrency (helia not durable): ${ratio(par, get('helia unixfs addAll'))}x; ` +
    `with sync: ${ratio(par, get('helia unixfs addAll + sync'))}x`);
  console.log(`stitchfs ingest pipeline alone (no store) takes ${(100 * get('stitchfs ingest, no store').secs / seq.secs).toFixed(0)}% of a one-at-a-time put's wall time; ` +
    'the rest is what writing chunk files, fsyncs and metadata add on top of it');
} finally {
  cleanup();
  if (args.keep) progress(`kept ${work}`);
}

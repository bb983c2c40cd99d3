// Geo benchmark on the local three-segment world (segments/world.ts, started here with its shaping
// proxies): us-west —40 ms— eu-central —150 ms— ap-south (one way), 50 Mbit/s per direction.
//   (a) metadata propagation: PUTs of small objects on us-west until listed on ap-south
//   (b) lazy read: a big object put on us-west, GET on ap-south, against a plain TCP transfer
//       through the same shapers in the same run
//   (c) wire bytes to sync a big file after a 1 MiB insert in its middle, against rsync (daemon on
//       loopback) and fixed-size 256 KiB chunking (pure computation)
//   (d) full-mode replication over one link, as a fraction of that link's measured capacity
// Prints one table to stdout (progress on stderr). No assertions.
//
// Run: node_modules/.bin/node bench/geo.ts [--quick] [--latency 40,150] [--bandwidth 50mbit]
//        [--puts 1000] [--put-clients 8] [--object-bytes 1024] [--lazy-mib 64] [--sync-mib 256]
//        [--insert-kib 1024] [--full-mib 128] [--only a,b,c,d] [--port-offset 10000] [--dir /tmp] [--keep]
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  CreateBucketCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
} from '@aws-sdk/client-s3';
import { formatRate, parseRate } from '../segments/shaping-proxy.ts';
import { startWorld, type World, type WorldLink } from '../segments/world.ts';
import { cutPoints, DEFAULT_CHUNKER, scannerConfig } from '../src/core/chunker.ts';
import { cutScannerFor } from '../src/native/cdc.ts';
import { rawTransfer, type RawResult } from './geo/raw.ts';
import { RsyncDaemon, rsyncVersion, type RsyncStats } from './geo/rsync.ts';
import { Keystream, KiB, MiB } from './lib/data.ts';
import { machine, packageVersion } from './lib/sys.ts';
import { formatTable, type Row } from './lib/table.ts';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    latency: { type: 'string', default: '40,150' },
    bandwidth: { type: 'string', default: '50mbit' },
    puts: { type: 'string' },
    'put-clients': { type: 'string', default: '8' },
    'object-bytes': { type: 'string', default: '1024' },
    'lazy-mib': { type: 'string' },
    'sync-mib': { type: 'string' },
    'insert-kib': { type: 'string', default: '1024' },
    'full-mib': { type: 'string' },
    only: { type: 'string', default: 'a,b,c,d' },
    'port-offset': { type: 'string', default: '10000' },
    dir: { type: 'string', default: tmpdir() },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

if (args.help) {
  console.log(`usage: node_modules/.bin/node bench/geo.ts [--quick] [--latency MS,MS] [--bandwidth RATE]
         [--puts N] [--put-clients N] [--object-bytes N] [--lazy-mib N] [--sync-mib N] [--insert-kib N]
         [--full-mib N] [--only a,b,c,d] [--port-offset N] [--dir DIR] [--keep]
  defaults: 1000 puts, 64 MiB lazy read, 256 MiB sync file, 128 MiB full replication;
  --quick: 200 puts, 16 MiB, 64 MiB, 32 MiB`);
  process.exit(0);
}

function num(name: string, text: string, min = 1): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number >= ${min}, got '${text}'`);
    process.exit(2);
  }
  return n;
}

const Q = args.quick;
const LATENCY = args.latency.split(',').map((x) => num('latency', x, 0));
if (LATENCY.length !== 2) {
  console.error('--latency: two numbers of ms, e.g. 40,150');
  process.exit(2);
}
const BANDWIDTH = parseRate(args.bandwidth);
const PUTS = Math.floor(num('puts', args.puts ?? (Q ? '200' : '1000')));
const PUT_CLIENTS = Math.floor(num('put-clients', args['put-clients']));
const OBJECT_BYTES = Math.floor(num('object-bytes', args['object-bytes'], 0));
const LAZY = Math.round(num('lazy-mib', args['lazy-mib'] ?? (Q ? '16' : '64')) * MiB);
const SYNC = Math.round(num('sync-mib', args['sync-mib'] ?? (Q ? '64' : '256')) * MiB);
const INSERT = Math.round(num('insert-kib', args['insert-kib']) * KiB);
const FULL = Math.round(num('full-mib', args['full-mib'] ?? (Q ? '32' : '128')) * MiB);
const ONLY = new Set(args.only.split(',').map((s) => s.trim()));
const OFFSET = Math.floor(num('port-offset', args['port-offset'], 0));
const KEY = { accessKeyId: 'STITCHGEOBENCH000001', secretAccessKey: 'stitch-geo-bench-secret-000000000000000000' };
// Where v2's insert goes: the middle, moved off any power-of-two boundary.
const INSERT_AT = Math.floor(SYNC / 2) + 12_345;
const FIXED = 256 * KiB;

const log = (msg: string) => console.error(`[${((performance.now() - T0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const T0 = performance.now();
const LOAD0 = loadavg()[0];

// ------------------------------------------------------------------------------------------------
// helpers

function client(world: World, name: string, sockets = 16): S3Client {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets });
  return new S3Client({
    endpoint: world.segment(name).s3,
    region: 'us-east-1',
    credentials: KEY,
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { httpAgent: agent, requestTimeout: 600_000, connectionTimeout: 10_000 },
  });
}

async function until<T>(fn: () => Promise<T | undefined | false>, timeoutMs: number, what: string, everyMs = 20): Promise<T> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (performance.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(everyMs);
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const mib = (n: number) => `${(n / MiB).toFixed(2)} MiB`;
const mbs = (bytesPerSec: number) => `${(bytesPerSec / 1e6).toFixed(2)} MB/s`;
const ms = (x: number) => `${Math.round(x)} ms`;
const pct = (x: number) => `${(100 * x).toFixed(0)}%`;
const linkBytes = (l: WorldLink) => l.eastbound.bytes + l.westbound.bytes;
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');

interface TimedGet {
  bytes: number;
  sha256: string;
  firstByteMs: number;
  secs: number;
  // Bytes per second between the first and the last body byte.
  rate: number;
}

async function timedGet(s3: S3Client, bucket: string, key: string): Promise<TimedGet> {
  const t0 = performance.now();
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const h = createHash('sha256');
  let bytes = 0;
  let first = 0;
  for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
    if (bytes === 0) first = performance.now();
    bytes += chunk.length;
    h.update(chunk);
  }
  const end = performance.now();
  return { bytes, sha256: h.digest('hex'), firstByteMs: first - t0, secs: (end - t0) / 1000, rate: bytes / ((end - first) / 1000) };
}

async function makeBucket(bucket: string, visibleOn: string[]): Promise<void> {
  await clients.get('us-west')!.send(new CreateBucketCommand({ Bucket: bucket }));
  for (const n of visibleOn) await until(() => clients.get(n)!.send(new HeadBucketCommand({ Bucket: bucket })), 30_000, `bucket ${bucket} on ${n}`);
  // Let the far segments' subscriptions to the bucket's topic reach their neighbours.
  await sleep(2 * (LATENCY[0] + LATENCY[1]) + 300);
}

async function headEtag(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  return (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))).ETag;
}

// Chunk end offsets: fixed-size, or the segment's own chunker (FastCDC, default sizes).
function fixedCuts(length: number, size: number): number[] {
  const cuts: number[] = [];
  for (let off = size; off < length; off += size) cuts.push(off);
  cuts.push(length);
  return cuts;
}
const cdcScanner = cutScannerFor(scannerConfig(DEFAULT_CHUNKER));
const cdcCuts = (b: Buffer) => cutPoints(b, cdcScanner);

// New bytes of `next` (unique chunks not among `prev`'s), given every chunk of `prev` is held.
function newBytes(prev: Buffer, prevCuts: number[], next: Buffer, nextCuts: number[]): number {
  const have = new Set<string>();
  const hash = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  let start = 0;
  for (const end of prevCuts) have.add(hash(prev.subarray(start, (start = end))));
  let fresh = 0;
  start = 0;
  for (const end of nextCuts) {
    const piece = next.subarray(start, (start = end));
    const h = hash(piece);
    if (!have.has(h)) {
      have.add(h);
      fresh += piece.length;
    }
  }
  return fresh;
}

// ------------------------------------------------------------------------------------------------

const rows: Row[] = [];
const notes: string[] = [];
const scratch = mkdtempSync(join(args.dir, 'stitch-geo-'));
let world: World | undefined;
const clients = new Map<string, S3Client>();
let raw1: RawResult | undefined;
let raw2: RawResult | undefined;

try {
  log(`starting the world in ${scratch}/world (ports +${OFFSET})`);
  world = await startWorld({
    dir: join(scratch, 'world'), portOffset: OFFSET, latencyMs: LATENCY, bandwidth: BANDWIDTH, fresh: true,
    full: [{ bucket: 'replica', link: 0 }],
    env: { STITCH_ACCESS_KEY_ID: KEY.accessKeyId, STITCH_SECRET_ACCESS_KEY: KEY.secretAccessKey },
    log,
  });
  for (const s of world.segments) clients.set(s.name, client(world, s.name));
  const [l1, l2] = world.links;
  const W = world;

  // Link capacity: plain TCP through the same shapers, world idle.
  const rawBytes = BANDWIDTH > 0 ? Math.min(64 * MiB, Math.max(4 * MiB, Math.round(BANDWIDTH * (Q ? 2 : 3)))) : 64 * MiB;
  log(`raw TCP, ${mib(rawBytes)} over us-west → eu-central`);
  raw1 = await rawTransfer([{ forward: l1.eastbound, back: l1.westbound }], rawBytes);
  log(`  ${mbs(raw1.rate)}, first byte ${ms(raw1.firstByteMs)}`);
  log(`raw TCP, ${mib(rawBytes)} over us-west → eu-central → ap-south`);
  raw2 = await rawTransfer([{ forward: l1.eastbound, back: l1.westbound }, { forward: l2.eastbound, back: l2.westbound }], rawBytes);
  log(`  ${mbs(raw2.rate)}, first byte ${ms(raw2.firstByteMs)}`);
  rows.push(`link capacity: plain TCP through the same shapers (${mib(rawBytes)}, world idle)`);
  rows.push(['us-west → eu-central', mbs(raw1.rate), `first byte ${ms(raw1.firstByteMs)}; cap ${BANDWIDTH > 0 ? mbs(BANDWIDTH) : 'none'}`, '', '']);
  rows.push(['us-west → eu-central → ap-south', mbs(raw2.rate), `first byte ${ms(raw2.firstByteMs)}; relayed by a proxy chain`, '', '']);

  // (a) metadata propagation ---------------------------------------------------------------------
  if (ONLY.has('a')) {
    log(`(a) ${PUTS} PUTs of ${OBJECT_BYTES} B on us-west (${PUT_CLIENTS} clients), listed on ap-south`);
    await makeBucket('meta', ['eu-central', 'ap-south']);
    const before = await W.status('ap-south');
    const keyOf = (i: number) => `m/${String(i).padStart(6, '0')}`;
    const acked = new Array<number>(PUTS);
    const seen = new Array<number>(PUTS);
    let seenCount = 0;
    let putsDone = false;
    let lastAck = 0;
    const poller = (async () => {
      const s3 = clients.get('ap-south')!;
      let low = 0;
      for (;;) {
        if (seenCount === PUTS) return;
        if (putsDone && performance.now() - lastAck > 60_000) return;
        const r = await s3.send(new ListObjectsV2Command({ Bucket: 'meta', Prefix: 'm/', StartAfter: low > 0 ? keyOf(low - 1) : undefined, MaxKeys: 1000 }));
        const t = performance.now();
        for (const o of r.Contents ?? []) {
          const i = Number(o.Key!.slice(2));
          if (seen[i] === undefined) {
            seen[i] = t;
            seenCount++;
          }
        }
        while (low < PUTS && seen[low] !== undefined) low++;
        await sleep(5);
      }
    })();
    const body = Buffer.alloc(OBJECT_BYTES, 0x61);
    const put = clients.get('us-west')!;
    let next = 0;
    const tPuts = performance.now();
    await Promise.all(Array.from({ length: PUT_CLIENTS }, async () => {
      while (next < PUTS) {
        const i = next++;
        await put.send(new PutObjectCommand({ Bucket: 'meta', Key: keyOf(i), Body: body }));
        acked[i] = lastAck = performance.now();
      }
    }));
    const putSecs = (performance.now() - tPuts) / 1000;
    putsDone = true;
    await poller;
    const after = await W.status('ap-south');
    const lat = acked.map((a, i) => seen[i] - a).filter((x) => Number.isFinite(x)).sort((x, y) => x - y);
    const missing = PUTS - lat.length;
    const allSecs = (Math.max(...seen.filter((x) => x !== undefined)) - tPuts) / 1000;
    const p99 = percentile(lat, 0.99);
    log(`  p50 ${ms(percentile(lat, 0.5))} p99 ${ms(p99)} max ${ms(lat.at(-1) ?? NaN)}; ${missing} never listed`);
    const floor = LATENCY[0] + LATENCY[1];
    rows.push(`(a) metadata propagation: ${PUTS} PUTs of ${OBJECT_BYTES} B on us-west (${PUT_CLIENTS} clients), PUT ack → listed on ap-south (ListObjectsV2 poll)`);
    rows.push(['propagation p50', ms(percentile(lat, 0.5)), `floor ${floor} ms (one-way latency, 2 links)`, '', '']);
    rows.push(['propagation p99', ms(p99), '', '< 1000 ms', missing === 0 ? met(p99 < 1000) : 'NOT met']);
    rows.push(['propagation max', ms(lat.at(-1) ?? NaN), missing ? `${missing} never listed within 60 s` : 'all listed', '', '']);
    rows.push(['PUT rate on us-west', `${(PUTS / putSecs).toFixed(0)} /s`, `all listed on ap-south ${allSecs.toFixed(2)} s after the first PUT`, '', '']);
    rows.push(['versions on ap-south: gossip / catch-up', `${after.counters.versionsReceived - before.counters.versionsReceived - (after.counters.catchUpEntries - before.counters.catchUpEntries)} / ${after.counters.catchUpEntries - before.counters.catchUpEntries}`, 'approximate split (catch-up counts entries it carried); catch-up runs every 2 s per link', '', '']);
  }

  // (b) lazy read -------------------------------------------------------------------------------
  if (ONLY.has('b')) {
    log(`(b) ${mib(LAZY)} put on us-west, GET on ap-south`);
    await makeBucket('lazy', ['eu-central', 'ap-south']);
    const data = new Keystream('geo lazy').next(LAZY);
    const put = await clients.get('us-west')!.send(new PutObjectCommand({ Bucket: 'lazy', Key: 'big.bin', Body: data }));
    await until(async () => (await headEtag(clients.get('ap-south')!, 'lazy', 'big.bin')) === put.ETag, 30_000, 'big.bin on ap-south');
    const w1 = linkBytes(l1);
    const w2 = linkBytes(l2);
    const st0 = await W.status('ap-south');
    const got = await timedGet(clients.get('ap-south')!, 'lazy', 'big.bin');
    const st1 = await W.status('ap-south');
    if (got.sha256 !== sha(data)) throw new Error('(b) GET on ap-south returned other bytes');
    const wire2 = linkBytes(l2) - w2;
    const wire1 = linkBytes(l1) - w1;
    log(`  first byte ${ms(got.firstByteMs)}, ${mbs(got.rate)}, ${got.secs.toFixed(1)} s`);
    rows.push(`(b) lazy read: ${mib(LAZY)} put on us-west, GET on ap-south (chunks relayed by eu-central)`);
    rows.push(['first byte', ms(got.firstByteMs), `raw path ${ms(raw2.firstByteMs)}; a request's round trip to us-west is ${2 * (LATENCY[0] + LATENCY[1])} ms`, '', '']);
    rows.push(['throughput after first byte', mbs(got.rate), `raw path ${mbs(raw2.rate)} (GET = ${pct(got.rate / raw2.rate)} of it)`, '', '']);
    rows.push(['whole GET', `${got.secs.toFixed(1)} s`, `${mbs(LAZY / got.secs)} overall`, '', '']);
    rows.push(['wire bytes eu-central — ap-south', mib(wire2), `object ${mib(LAZY)}; us-west — eu-central ${mib(wire1)}; chunk payload ${mib(st1.counters.chunkBytesFetched - st0.counters.chunkBytesFetched)}`, '', '']);
  }

  // (d) full-mode replication -------------------------------------------------------------------
  if (ONLY.has('d')) {
    log(`(d) ${mib(FULL)} put on us-west, bucket linked in full mode to eu-central`);
    await makeBucket('replica', ['eu-central']);
    const data = new Keystream('geo full').next(FULL);
    const w0 = await W.status('us-west');
    const e0 = await W.status('eu-central');
    const wire0 = linkBytes(l1);
    await clients.get('us-west')!.send(new PutObjectCommand({ Bucket: 'replica', Key: 'replica.bin', Body: data }));
    const tAck = performance.now();
    const w1 = await W.status('us-west');
    const chunks = w1.stats.chunks - w0.stats.chunks;
    const stored = w1.stats.storedBytes - w0.stats.storedBytes;
    let lastLog = performance.now();
    await until(async () => {
      const e = await W.status('eu-central');
      const have = e.stats.chunks - e0.stats.chunks;
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now();
        log(`  eu-central holds ${have}/${chunks} chunks`);
      }
      return have >= chunks && e.replicationBacklog === 0;
    }, 600_000, 'eu-central to hold every chunk', 50);
    const secs = (performance.now() - tAck) / 1000;
    const rate = stored / secs;
    const wire = linkBytes(l1) - wire0;
    log(`  ${secs.toFixed(1)} s, ${mbs(rate)}`);
    rows.push(`(d) full-mode replication: ${mib(FULL)} (${chunks} chunks) put on us-west, PUT ack → eu-central holds every chunk (stitch status)`);
    rows.push(['time', `${secs.toFixed(1)} s`, `the raw link would take ${(stored / raw1.rate).toFixed(1)} s`, '', '']);
    rows.push(['throughput', mbs(rate), `raw link ${mbs(raw1.rate)}: ${pct(rate / raw1.rate)} of it`, '> 80% of link', met(rate / raw1.rate > 0.8)]);
    rows.push(['wire bytes us-west — eu-central', mib(wire), `stored ${mib(stored)}`, '', '']);
  }

  // (c) sync after an insert ----------------------------------------------------------------------
  if (ONLY.has('c')) {
    log(`(c) ${mib(SYNC)} v1 on us-west, read on eu-central; v2 = ${mib(INSERT)} inserted at byte ${INSERT_AT}`);
    await makeBucket('sync', ['eu-central']);
    const v1 = new Keystream('geo sync v1').next(SYNC);
    const ins = new Keystream('geo sync insert').next(INSERT);
    const v2 = Buffer.concat([v1.subarray(0, INSERT_AT), ins, v1.subarray(INSERT_AT)]);
    const us = clients.get('us-west')!;
    const eu = clients.get('eu-central')!;
    const p1 = await us.send(new PutObjectCommand({ Bucket: 'sync', Key: 'file.bin', Body: v1 }));
    await until(async () => (await headEtag(eu, 'sync', 'file.bin')) === p1.ETag, 30_000, 'v1 on eu-central');
    log('  reading v1 on eu-central');
    const r1 = await timedGet(eu, 'sync', 'file.bin');
    if (r1.sha256 !== sha(v1)) throw new Error('(c) v1 read on eu-central returned other bytes');
    log(`  v1: ${r1.secs.toFixed(1)} s, ${mbs(r1.rate)}`);
    const p2 = await us.send(new PutObjectCommand({ Bucket: 'sync', Key: 'file.bin', Body: v2 }));
    await until(async () => (await headEtag(eu, 'sync', 'file.bin')) === p2.ETag, 30_000, 'v2 on eu-central');
    const wire0 = linkBytes(l1);
    const e0 = await W.status('eu-central');
    const r2 = await timedGet(eu, 'sync', 'file.bin');
    const wire = linkBytes(l1) - wire0;
    const e1 = await W.status('eu-central');
    if (r2.sha256 !== sha(v2)) throw new Error('(c) v2 read on eu-central returned other bytes');
    const payload = e1.counters.chunkBytesFetched - e0.counters.chunkBytesFetched;
    log(`  v2: ${mib(wire)} on the wire, ${r2.secs.toFixed(1)} s`);

    log('  rsync daemon on loopback: v1, then v2');
    const rdir = join(scratch, 'rsync');
    mkdirSync(join(rdir, 'dst'), { recursive: true });
    const daemon = await RsyncDaemon.start(rdir, 9401 + OFFSET);
    let rs1: RsyncStats;
    let rs2: RsyncStats;
    try {
      writeFileSync(join(daemon.srcDir, 'file.bin'), v1);
      rs1 = daemon.pull('file.bin', join(rdir, 'dst', 'file.bin'));
      writeFileSync(join(daemon.srcDir, 'file.bin'), v2);
      rs2 = daemon.pull('file.bin', join(rdir, 'dst', 'file.bin'));
    } finally {
      daemon.stop();
    }
    const rsyncWire = rs2.sent + rs2.received;
    log(`  rsync v2: sent ${rs2.sent} received ${rs2.received}`);
    log('  fixed-size chunking (pure computation)');
    const fixed = newBytes(v1, fixedCuts(v1.length, FIXED), v2, fixedCuts(v2.length, FIXED));
    const odd = Buffer.concat([v1.subarray(0, INSERT_AT), ins, Buffer.from([0x42]), v1.subarray(INSERT_AT)]);
    const fixedOdd = newBytes(v1, fixedCuts(v1.length, FIXED), odd, fixedCuts(odd.length, FIXED));
    const cdc = newBytes(v1, cdcCuts(v1), v2, cdcCuts(v2));

    rows.push(`(c) sync after an insert: ${mib(SYNC)} v1 put on us-west and read on eu-central; v2 = ${mib(INSERT)} inserted at byte ${INSERT_AT}, put on us-west, read on eu-central`);
    rows.push(['wire bytes to read v2 on eu-central', mib(wire), `rsync ${mib(rsyncWire)} (sent ${mib(rs2.sent)} + received ${mib(rs2.received)})`, '< 2 MiB and < rsync', met(wire < 2 * MiB && wire < rsyncWire)]);
    rows.push(['  of which chunk payload', mib(payload), `rsync literal data ${mib(rs2.literal)}`, '', '']);
    rows.push(['FastCDC 64/256/1024 KiB: new bytes of v2', '', `${mib(cdc)} (the segment's chunker, pure computation: the floor for chunk-level sync)`, '', '']);
    rows.push(['fixed 256 KiB chunks: new bytes of v2', '', `${mib(fixed)} (the insert is a multiple of 256 KiB, so later blocks realign)`, '', '']);
    rows.push(['  same with 1 byte more inserted', '', `${mib(fixedOdd)} (every block after the insert is new)`, '', '']);
    rows.push(['read v1 on eu-central (lazy, 1 link)', `${r1.secs.toFixed(1)} s`, `${mbs(r1.rate)} after first byte; raw link ${mbs(raw1.rate)}; rsync v1 ${mib(rs1.sent + rs1.received)}`, '', '']);
    rows.push(['read v2 on eu-central', `${r2.secs.toFixed(1)} s`, `rsync v2 ${rs2.secs.toFixed(1)} s on unshaped loopback`, '', '']);
  }

  const direct = W.directConnections();
  rows.push('checks');
  rows.push(['p2p connections not through a proxy', String(direct.length), direct.join(', ') || 'every segment-to-segment byte was shaped', '', '']);
} catch (err) {
  console.error(`bench/geo: ${(err as Error).stack ?? err}`);
  process.exitCode = 1;
} finally {
  for (const c of clients.values()) c.destroy();
  if (world) {
    log('stopping the world');
    await world.stop();
  }
  if (!args.keep) rmSync(scratch, { recursive: true, force: true });
  else log(`kept ${scratch}`);
}

const header = [
  `stitchfs geo benchmark, ${new Date().toISOString().slice(0, 10)}: ${machine()}, Node ${process.version}, rsync ${rsyncVersion()}, @aws-sdk/client-s3 ${packageVersion('@aws-sdk/client-s3')}`,
  `world: 3 stitch serve processes on loopback, us-west —${LATENCY[0]} ms— eu-central —${LATENCY[1]} ms— ap-south (one way), ${formatRate(BANDWIDTH)} per direction per link (segments/shaping-proxy.ts); every bucket metadata-only except 'replica' (full on us-west — eu-central)`,
  `run: node_modules/.bin/node bench/geo.ts ${process.argv.slice(2).join(' ')}`.trimEnd() + `  (${((performance.now() - T0) / 1000).toFixed(0)} s)`,
  `load average (1 min) ${LOAD0.toFixed(1)} at the start, ${loadavg()[0].toFixed(1)} at the end: other work on the machine shows up in every row`,
  ...notes,
];
console.log(header.join('\n'));
console.log('');
// Reference text last: it is the long free-text column.
console.log(formatTable([
  { title: 'measurement' }, { title: 'stitchfs', align: 'right' }, { title: 'goal' }, { title: '' }, { title: 'reference (same run)' },
], rows.map((r) => (typeof r === 'string' ? r : [r[0], r[1], r[3], r[4], r[2]]))));

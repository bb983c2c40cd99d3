// Recovery through the gateway, with real processes: a pair A - B where B has read (and so holds)
// an object of A's; A then loses one chunk file and has another flipped on disk. A GET on A must
// answer the right bytes (the chunks come back from B, verified) and leave A's chunk files whole
// again. Offline, `stitch fsck --repair` has no gateway and so no source: it must report the damage
// and exit non-zero rather than pretend.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { line, MiB, randomData, sha256, storedBytes, waitFor, World, type ChunkInfo } from '../helpers/world-cluster.ts';

const BUCKET = 'recovery';
const KEY = 'photo.raw';
const SIZE = 2 * MiB + 777;

interface ScrubReport {
  checked: number;
  missing: string[];
  corrupt: string[];
  repaired: string[];
}

describe('isgw: recovery of damaged chunks from a peer', () => {
  let w: World;
  const body = randomData(SIZE);
  // The object's chunks stored as files (a last chunk of at most 4 KiB is inline: no file).
  let chunks: ChunkInfo[] = [];
  let all: ChunkInfo[] = [];

  const get = async (name: string) => {
    const r = await w.s3(name).send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
    return Buffer.from(await r.Body!.transformToByteArray());
  };

  // Flips every byte of a chunk file in place: same length, wrong hash.
  const flip = (path: string) => {
    const b = readFileSync(path);
    for (let i = 0; i < b.length; i++) b[i] ^= 0xff;
    writeFileSync(path, b);
  };

  beforeAll(async () => {
    w = await World.create({ names: ['a', 'b'], links: line(['a', 'b']) });
    await waitFor(async () => (await w.status('a')).peers.every((p) => p.connected), 20_000, 'a connected to b');
    await w.s3('a').send(new CreateBucketCommand({ Bucket: BUCKET }));
    await waitFor(async () => (await w.status('b')).stats.buckets === 1, 5_000, 'bucket on b');
    await w.s3('a').send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: body }));
    await waitFor(() => w.s3('b').send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY })), 5_000, 'object on b');
    all = await w.chunksOf('a', BUCKET, KEY);
    chunks = all.filter((c) => !c.inline);
  });

  afterAll(async () => {
    await w?.stop();
  });

  it('B reads the object once and so holds every chunk', async () => {
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(all.reduce((n, c) => n + c.length, 0)).toBe(SIZE);
    expect(sha256(await get('b'))).toBe(sha256(body));
    const onB = w.chunkFiles('b');
    for (const { cid } of chunks) expect(onB.has(cid), cid).toBe(true);
    expect((await w.status('b')).counters.chunkBytesFetched).toBe(storedBytes(all));
  });

  it('a GET on A with one chunk missing and one corrupt returns the right bytes and heals A', async () => {
    const { cid: missing, length: missingLen } = chunks[1];
    const { cid: corrupt, length: corruptLen } = chunks[chunks.length - 1];
    unlinkSync(w.chunkPath('a', missing));
    flip(w.chunkPath('a', corrupt));
    const before = await Promise.all(['a', 'b'].map((n) => w.status(n)));

    const got = await get('a');
    expect(got.length).toBe(SIZE);
    expect(sha256(got)).toBe(sha256(body));

    const [a, b] = await Promise.all(['a', 'b'].map((n) => w.status(n)));
    expect(a.reader.missing - before[0].reader.missing).toBe(1);
    expect(a.reader.corrupt - before[0].reader.corrupt).toBe(1);
    expect(a.reader.recovered - before[0].reader.recovered).toBe(2);
    expect(a.counters.chunkBytesFetched - before[0].counters.chunkBytesFetched).toBe(missingLen + corruptLen);
    expect(b.counters.chunkBytesServed - before[1].counters.chunkBytesServed).toBe(missingLen + corruptLen);
    expect(a.counters.chunksRejected).toBe(0);
    // Both files are back, byte for byte what B holds (and B's copies verify: B read them).
    for (const cid of [missing, corrupt]) {
      expect(readFileSync(w.chunkPath('a', cid)).equals(readFileSync(w.chunkPath('b', cid))), cid).toBe(true);
    }
    // fsck beside the running server (read-only) agrees: every chunk verifies.
    const r = await w.cli('a', ['--json', 'fsck']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as ScrubReport;
    expect(rep.missing).toEqual([]);
    expect(rep.corrupt).toEqual([]);
    expect(rep.checked).toBe(chunks.length);
    // A second read is purely local.
    expect(sha256(await get('a'))).toBe(sha256(body));
    expect((await w.status('a')).counters.chunkBytesFetched).toBe(a.counters.chunkBytesFetched);
  });

  it('fsck --repair on a stopped segment reports the damage and exits non-zero (no gateway, no source)', async () => {
    const { cid } = chunks[0];
    flip(w.chunkPath('a', cid));
    // fsck --repair takes the write lock: the server must be stopped first.
    await w.kill('a', 'SIGTERM');
    const r = await w.cli('a', ['--json', 'fsck', '--repair']);
    expect(r.code, r.stderr).toBe(5);
    const rep = JSON.parse(r.stdout) as ScrubReport;
    expect(rep.corrupt).toEqual([cid]);
    expect(rep.missing).toEqual([]);
    expect(rep.repaired).toEqual([]);
    // Nothing was "repaired" behind its back: the file is still the flipped one.
    const bytes = readFileSync(w.chunkPath('a', cid));
    expect(bytes.equals(readFileSync(w.chunkPath('b', cid)))).toBe(false);

    // Served again, the read path recovers it from B as before.
    await w.start('a');
    await waitFor(async () => (await w.status('a')).peers.every((p) => p.connected), 20_000, 'a reconnected to b');
    expect(sha256(await get('a'))).toBe(sha256(body));
    expect(readFileSync(w.chunkPath('a', cid)).equals(readFileSync(w.chunkPath('b', cid)))).toBe(true);
    const after = await w.cli('a', ['--json', 'fsck']);
    expect(after.code, after.stderr).toBe(0);
  });

  it('a full link resumed at start pulls the chunks its versions lack once a peer connects', async () => {
    // `later` reaches B as metadata only: the link is metadata-only so far.
    const later = randomData(1 * MiB);
    await w.s3('a').send(new PutObjectCommand({ Bucket: BUCKET, Key: 'later', Body: later }));
    await waitFor(() => w.s3('b').send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'later' })), 5_000, 'later on b');
    const want = (await w.chunksOf('a', BUCKET, 'later')).filter((c) => !c.inline);
    expect(want.some((c) => w.chunkFiles('b').has(c.cid))).toBe(false);

    // B now replicates the bucket in full: on start its replicator queues what it lacks, before
    // any peer is connected; those pins must not be dropped for good.
    await w.kill('b', 'SIGTERM');
    const r = await w.cli('b', ['link', 'add', 'a', w.p2p('a'), '--peer-id', w.peerId('a'), '--bucket', BUCKET, '--mode', 'full']);
    expect(r.code, r.stderr).toBe(0);
    await w.start('b');
    await waitFor(async () => {
      const files = w.chunkFiles('b');
      return want.every((c) => files.has(c.cid)) && (await w.status('b')).replicationBacklog === 0;
    }, 20_000, 'b holds later');
    const st = await w.status('b');
    expect(st.counters.chunkBytesFetched).toBe(storedBytes(want));
    const got = await w.s3('b').send(new GetObjectCommand({ Bucket: BUCKET, Key: 'later' }));
    expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(later));
    expect((await w.status('b')).counters.chunkBytesFetched).toBe(st.counters.chunkBytesFetched);
  });
});

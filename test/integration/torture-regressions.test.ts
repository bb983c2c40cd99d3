// Regression tests for bugs the torture suite (test/torture, RELIABILITY.md) found, each reduced
// to its smallest deterministic form.
import { copyFileSync, existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPairSync } from 'node:crypto';
import { HybridClock, MAX_FUTURE_MS, TICKS_PER_MS } from '../../src/core/hlc.ts';
import { decodeVersion, signVersion, type VersionManifest } from '../../src/core/version-manifest.ts';
import { Cluster, waitFor } from '../torture/cluster.ts';
import { chunkPath, chunksOfBucket } from '../torture/disk.ts';
import { contentBytes, MiB, sha256hex } from '../torture/rng.ts';

// A run of one byte value is cut at a fixed size by the chunker: the same chunk many times in a row.
const repeating = (label: string, fill: number) => Buffer.concat([contentBytes(label, 300 * 1024), Buffer.alloc(4 * MiB, fill)]);

describe('torture regressions: the chunk fetcher with a CID wanted twice in one batch', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.create({
      names: ['a', 'b'],
      links: [{ a: 'a', b: 'b', bucket: 'rec' }, { a: 'a', b: 'b', bucket: 'rep', mode: 'full' }],
    });
    await waitFor(async () => (await c.status('a')).peers.every((p) => p.connected), 60_000, 'a connected to b');
    await c.s3('a').createBucket('rec');
    await c.s3('a').createBucket('rep');
  });
  afterAll(async () => {
    await c?.stop();
  });

  // The fetcher batches the CIDs asked of a peer in one tick into one request, and kept its
  // waiters in a map by CID: of two waiters for one CID only the last was ever answered, and the
  // first read hung for good (a GET that never finished; a replicator stuck behind it).
  it('a damaged chunk read twice at once (repeated in the object, or by two readers) is recovered for every reader', async () => {
    const body = repeating('rec', 0);
    await c.s3('a').put('rec', 'zeros', body);
    // b serves only chunks of versions it knows: wait for the metadata to arrive there first.
    await waitFor(async () => (await c.s3('b').request('HEAD', '/rec/zeros')).status === 200, 60_000, 'b to learn rec/zeros');
    const chunks = (await chunksOfBucket(c.seg('a').dataDir, 'rec')).get('zeros')!;
    const repeated = chunks.find((cid, i) => chunks.indexOf(cid) !== i);
    expect(repeated, 'the object repeats a chunk').toBeDefined();
    // b holds the chunk files (as after a read there), without going through the fetcher.
    for (const cid of new Set(chunks)) {
      const to = chunkPath(c.seg('b').dataDir, cid);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(chunkPath(c.seg('a').dataDir, cid), to);
    }
    unlinkSync(chunkPath(c.seg('a').dataDir, repeated!));
    // A hang shows as no progress for 60 s: an error, rather than the test's timeout.
    const d = await c.s3('a').request('GET', '/rec/zeros', { idleTimeoutMs: 60_000 });
    expect(d.status).toBe(200);
    expect(sha256hex(d.body)).toBe(sha256hex(body));
    unlinkSync(chunkPath(c.seg('a').dataDir, repeated!));
    const three = await Promise.all([0, 1, 2].map(() => c.s3('a').request('GET', '/rec/zeros', { idleTimeoutMs: 60_000 })));
    for (const r of three) expect(sha256hex(r.body)).toBe(sha256hex(body));
    expect((await c.status('a')).reader.recovered).toBeGreaterThanOrEqual(2);
  });

  it('full-mode replication of an object that repeats a chunk completes (and does not stall the queue)', async () => {
    const body = repeating('rep', 0x5a);
    await c.s3('a').put('rep', 'zeros', body);
    const after = contentBytes('after', 600 * 1024);
    await c.s3('a').put('rep', 'after', after);
    const chunks = await chunksOfBucket(c.seg('a').dataDir, 'rep');
    const all = [...new Set([...chunks.values()].flat())];
    await waitFor(async () => (await c.status('b')).replicationBacklog === 0
      && all.every((cid) => existsSync(chunkPath(c.seg('b').dataDir, cid))), 60_000, 'b to replicate both objects');
    const d = await c.s3('b').getDigest('rep', 'zeros');
    expect(d.sha256).toBe(sha256hex(body));
  });

  // fsck --repair needs the data dir lock, so beside a running server it was refused (exit 4), and a
  // stopped segment has no gateway, so no source: damage could only be repaired by reading it.
  // Beside the server it now runs in the server (admin socket), with the gateway as its source.
  it('fsck --repair beside the running server repairs damaged chunks from a peer', async () => {
    const chunks = (await chunksOfBucket(c.seg('a').dataDir, 'rep')).get('after')!;
    const before = readFileSync(chunkPath(c.seg('a').dataDir, chunks[0]));
    unlinkSync(chunkPath(c.seg('a').dataDir, chunks[0]));
    writeFileSync(chunkPath(c.seg('a').dataDir, chunks[chunks.length - 1]), 'not the chunk');
    const r = await c.cli('a', ['--json', 'fsck', '--repair']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { missing: string[]; corrupt: string[]; repaired: string[] };
    expect(rep.missing).toEqual([chunks[0]]);
    expect(rep.corrupt).toEqual([chunks[chunks.length - 1]]);
    expect(rep.repaired.sort()).toEqual([chunks[0], chunks[chunks.length - 1]].sort());
    expect(readFileSync(chunkPath(c.seg('a').dataDir, chunks[0])).equals(before)).toBe(true);
    expect((await c.fsck('a')).code).toBe(0);
  });
});

// A version m really signed (m on the allowlist) but stamped 2^53 - 1: every segment's clock
// followed it, and at 2^53 a tick's +1 is lost to float precision, so two successive local writes
// got the same timestamp and an overwrite was not the current version (seen by torture/rogue.ts).
describe('torture regressions: timestamps from far ahead', () => {
  it('a remote timestamp beyond the drift bound does not drag the clock; local writes keep ordering', () => {
    const now = 1_700_000_000_000;
    const clock = new HybridClock(0, () => now);
    clock.observe(Number.MAX_SAFE_INTEGER);
    const t1 = clock.tick();
    const t2 = clock.tick();
    expect(t2).toBeGreaterThan(t1);
    expect(t1).toBeLessThan((now + MAX_FUTURE_MS) * TICKS_PER_MS);
    // Within the bound (a peer a minute ahead) the clock still follows, as causality needs.
    const ahead = (now + 60_000) * TICKS_PER_MS;
    clock.observe(ahead);
    expect(clock.tick()).toBe(ahead + 1);
    // Restored from a store that holds such a version: the same bound.
    const restored = new HybridClock(Number.MAX_SAFE_INTEGER, () => now);
    const r1 = restored.tick();
    expect(restored.tick()).toBeGreaterThan(r1);
  });

  it('a manifest whose timestamp is not a non-negative safe integer is malformed, whoever signed it', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const base: VersionManifest = {
      bucket: 'b1b', key: 'k', size: 0, etag: '', contentType: 'application/octet-stream', meta: {}, headers: {},
      mtime: 0, content: { chunks: [] }, parent: null, deleted: false, hlc: 1, origin: 'm',
    };
    expect(() => decodeVersion(signVersion(base, privateKey).bytes)).not.toThrow();
    for (const hlc of [1e300, -5, 1.5, 2 ** 60]) {
      expect(() => decodeVersion(signVersion({ ...base, hlc }, privateKey).bytes), String(hlc)).toThrow(/malformed/);
    }
  });
});

// GET/HEAD ?response-content-type=%00 (or any response-* override HTTP cannot carry: control
// characters, emoji) made writeHead throw, answered as 500 InternalError (found by the fuzzer).
describe('torture regressions: response header overrides', () => {
  let c: Cluster;
  beforeAll(async () => {
    c = await Cluster.create({ names: ['h'] });
    await c.s3('h').createBucket('hdr');
    await c.s3('h').put('hdr', 'obj', Buffer.from('hello'));
  });
  afterAll(async () => {
    await c?.stop();
  });

  it('a response-* value HTTP cannot carry is a 400 InvalidArgument, a valid one is echoed', async () => {
    for (const q of ['response-content-type=%00', 'response-content-type=%FF', 'response-content-disposition=%F0%9F%98%80', 'response-cache-control=a%0D%0Ab']) {
      const g = await c.s3('h').request('GET', `/hdr/obj?${q}`);
      expect([g.status, g.code], q).toEqual([400, 'InvalidArgument']);
      const h = await c.s3('h').request('HEAD', `/hdr/obj?${q}`);
      expect(h.status, q).toBe(400);
    }
    const ok = await c.s3('h').request('GET', '/hdr/obj?response-content-type=text%2Fplain%3B%20charset%3Dlatin1');
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('text/plain; charset=latin1');
    expect(ok.body.toString()).toBe('hello');
  });
});

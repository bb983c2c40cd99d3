import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCids } from '../../src/core/chunk-manifest.ts';
import { parseCid } from '../../src/core/cid.ts';
import { DEFAULT_CONTENT_TYPE } from '../../src/core/version-manifest.ts';
import type { Segment } from '../../src/segment/segment.ts';
import {
  KiB, MiB, expectCode, getBytes, md5, observable, openTempSegment, prngBytes, prngSlice, prngStream, sha256,
  streamDigest, type TempSegment,
} from '../helpers/segment-util.ts';

// Put/get round trips with the default chunker: sizes around chunk and buffer boundaries, a large
// streamed object, ETags, Content-MD5 and length checks, dedup.

function chunkFiles(dir: string): string[] {
  const root = join(dir, 'chunks');
  return readdirSync(root).filter((d) => d !== 'tmp').flatMap((d) => readdirSync(join(root, d)));
}

describe('segment objects', () => {
  let t: TempSegment;
  let seg: Segment;
  beforeAll(async () => {
    t = await openTempSegment({ name: 'test-seg' });
    seg = t.seg;
    seg.createBucket('bkt');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('round-trips objects of every size class, with ETag = MD5', async () => {
    const sizes = [0, 1, 65535, 65536, MiB + 1, 5 * MiB + 12345];
    for (const [i, size] of sizes.entries()) {
      const data = prngBytes(1000 + i, size);
      const key = `sizes/${size}`;
      const v = await seg.put('bkt', key, data, { contentType: 'application/x-test', meta: { n: String(size) } });
      expect(v.size).toBe(size);
      expect(v.etag).toBe(md5(data));
      expect(v.isLatest).toBe(true);
      expect(v.deleted).toBe(false);
      expect(v.origin).toBe('test-seg');
      expect(parseCid(v.versionId).toString()).toBe(v.versionId);

      const got = await seg.get('bkt', key);
      expect([got.start, got.end]).toEqual([0, size]);
      expect(got.version.versionId).toBe(v.versionId);
      const back = await streamDigest(got.body);
      expect(back).toEqual({ sha256: sha256(data), md5: md5(data), size });

      const head = await seg.head('bkt', key);
      expect(head.etag).toBe(md5(data));
      expect(head.size).toBe(size);
      expect(head.contentType).toBe('application/x-test');
      expect(head.meta).toEqual({ n: String(size) });
    }
    // The empty object has no chunks at all; the small ones one each.
    const empty = await seg.head('bkt', 'sizes/0');
    expect(empty.content).toEqual({ chunks: [] });
    expect(empty.etag).toBe('d41d8cd98f00b204e9800998ecf8427e');
    const listed = seg.list('bkt', { prefix: 'sizes/' }).items;
    expect(listed.map((o) => o.size).sort((a, b) => a - b)).toEqual(sizes);
  });

  it('accepts strings, byte arrays and async streams, and keeps content type, metadata and headers', async () => {
    await seg.put('bkt', 'body/string', 'hello, world');
    expect((await getBytes(seg, 'bkt', 'body/string')).toString()).toBe('hello, world');
    const v = await seg.head('bkt', 'body/string');
    expect(v.contentType).toBe(DEFAULT_CONTENT_TYPE);
    expect(v.meta).toEqual({});

    async function* pieces() {
      yield Buffer.from('abc');
      yield new Uint8Array(0);
      yield new TextEncoder().encode('def');
    }
    const s = await seg.put('bkt', 'body/stream', pieces(), {
      contentType: 'text/plain', meta: { a: '1', 'long-name': 'x'.repeat(500) }, headers: { 'cache-control': 'max-age=5' },
      posix: { mode: 0o100640, uid: 12, gid: 34 },
    });
    expect(s.etag).toBe(md5(Buffer.from('abcdef')));
    const h = await seg.head('bkt', 'body/stream');
    expect(h.contentType).toBe('text/plain');
    expect(h.meta).toEqual({ a: '1', 'long-name': 'x'.repeat(500) });
    expect(h.headers).toEqual({ 'cache-control': 'max-age=5' });
    expect(h.posix).toEqual({ mode: 0o100640, uid: 12, gid: 34 });
    expect((await getBytes(seg, 'bkt', 'body/stream')).toString()).toBe('abcdef');
  });

  it('streams a ~300 MiB object in and out without holding it (sha256 compared)', async () => {
    const size = 300 * MiB + 4321;
    const seed = 300;
    const want = createHash('sha256');
    async function* source() {
      // Odd piece sizes so that pieces and chunks never line up.
      for await (const piece of prngStream(seed, size, 3 * MiB - 17)) {
        want.update(piece);
        yield piece;
      }
    }
    let progress = 0;
    const v = await seg.put('bkt', 'big/300m', source(), { size, onProgress: (n) => (progress = n) });
    expect(v.size).toBe(size);
    expect(progress).toBe(size);
    const wanted = want.digest('hex');
    // Content-defined chunks of ~256 KiB on average (inline list or tree, it is near the limit).
    const { chunks } = await allCids(v.content, (cid) => seg.readBlock(cid, { bucket: 'bkt', key: 'big/300m', vid: v.versionId }));
    expect(chunks.length).toBeGreaterThan(300);
    expect(chunks.length).toBeLessThan(2000);
    expect(chunks.reduce((n, [, len]) => n + len, 0)).toBe(size);

    const got = await seg.get('bkt', 'big/300m');
    const back = await streamDigest(got.body);
    expect(back.size).toBe(size);
    expect(back.sha256).toBe(wanted);
    expect(back.md5).toBe(v.etag);

    // A range deep inside, checked against bytes regenerated at that offset.
    const start = 150 * MiB + 77;
    const r = await seg.get('bkt', 'big/300m', { range: { start, end: start + 3 * MiB } });
    const part = await streamDigest(r.body);
    expect(part.sha256).toBe(sha256(prngSlice(seed, start, start + 3 * MiB)));
  });

  it('Content-MD5 or length mismatch is BadDigest and stores nothing', async () => {
    const data = prngBytes(7, 2 * MiB + 5);
    const before = observable(seg);
    const filesBefore = chunkFiles(t.dir).length;
    await expectCode(() => seg.put('bkt', 'bad/md5', data, { contentMd5: Buffer.alloc(16, 1) }), 'BadDigest');
    await expectCode(() => seg.put('bkt', 'bad/size', data, { size: data.length + 1 }), 'BadDigest');
    await expectCode(() => seg.put('bkt', 'bad/size', data, { size: data.length - 1 }), 'BadDigest');
    expect(observable(seg)).toEqual(before);
    await expectCode(() => seg.head('bkt', 'bad/md5'), 'NoSuchKey');
    // The chunks written before the digest was known are garbage, not referenced, and GC takes them.
    expect(chunkFiles(t.dir).length).toBeGreaterThan(filesBefore);
    const gc = await seg.gc(0);
    expect(gc.deleted).toBeGreaterThan(0);
    expect(chunkFiles(t.dir).length).toBe(filesBefore);
    expect(observable(seg)).toEqual(before);

    // The right MD5 and size are accepted.
    const ok = await seg.put('bkt', 'bad/md5', data, {
      contentMd5: createHash('md5').update(data).digest(), size: data.length,
    });
    expect(ok.etag).toBe(md5(data));
    expect(sha256(await getBytes(seg, 'bkt', 'bad/md5'))).toBe(sha256(data));
  });

  it('dedups: the same 10 MiB under two keys is stored once', async () => {
    const data = prngBytes(10, 10 * MiB);
    const s0 = seg.stats();
    await seg.put('bkt', 'dedup/one', data);
    const s1 = seg.stats();
    const added = s1.storedBytes - s0.storedBytes;
    expect(added).toBe(data.length);
    const files1 = chunkFiles(t.dir).length;

    await seg.put('bkt', 'dedup/two', data);
    const s2 = seg.stats();
    expect(s2.storedBytes).toBe(s1.storedBytes);
    expect(s2.chunks).toBe(s1.chunks);
    expect(s2.logicalBytes - s1.logicalBytes).toBe(data.length);
    expect(s2.dedupRatio).toBeGreaterThan(s1.dedupRatio);
    expect(chunkFiles(t.dir).length).toBe(files1);

    // A third copy with one changed byte in the middle adds only a chunk or two.
    const edited = Buffer.from(data);
    edited[5 * MiB] ^= 0xff;
    await seg.put('bkt', 'dedup/three', edited);
    const s3 = seg.stats();
    expect(s3.storedBytes - s2.storedBytes).toBeGreaterThan(0);
    expect(s3.storedBytes - s2.storedBytes).toBeLessThanOrEqual(3 * MiB);
    expect(sha256(await getBytes(seg, 'bkt', 'dedup/two'))).toBe(sha256(data));
    expect(sha256(await getBytes(seg, 'bkt', 'dedup/three'))).toBe(sha256(edited));
  });

  it('dedups repeated content inside one object', async () => {
    const s0 = seg.stats();
    const zeros = Buffer.alloc(8 * MiB);
    const v = await seg.put('bkt', 'dedup/zeros', zeros);
    expect('chunks' in v.content && v.content.chunks.length).toBe(8);
    const s1 = seg.stats();
    expect(s1.storedBytes - s0.storedBytes).toBe(MiB);
    expect(s1.chunks - s0.chunks).toBe(1);
    const back = await getBytes(seg, 'bkt', 'dedup/zeros');
    expect(back.equals(zeros)).toBe(true);
  });

  it('stats count buckets, objects, versions and bytes', async () => {
    const before = seg.stats();
    seg.createBucket('stats-bkt');
    await seg.put('stats-bkt', 'a', prngBytes(20, 100 * KiB));
    await seg.put('stats-bkt', 'a', prngBytes(21, 50 * KiB));
    await seg.put('stats-bkt', 'b', prngBytes(22, 10 * KiB));
    await seg.delete('stats-bkt', 'b');
    // Up to 4 KiB rides inside the manifest as an inline CID: logical bytes, no stored ones.
    await seg.put('stats-bkt', 'tiny', prngBytes(23, 100));
    const after = seg.stats();
    expect(after.name).toBe('test-seg');
    expect(after.buckets).toBe(before.buckets + 1);
    expect(after.objects).toBe(before.objects + 2); // b is deleted
    expect(after.versions).toBe(before.versions + 4); // delete markers are not counted
    expect(after.logicalBytes).toBe(before.logicalBytes + 160 * KiB + 100);
    expect(after.storedBytes).toBe(before.storedBytes + 160 * KiB);
    expect(after.dedupRatio).toBeCloseTo(after.logicalBytes / after.storedBytes, 10);
  });
});

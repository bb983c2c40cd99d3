import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContentRef } from '../../src/core/chunk-manifest.ts';
import { MIN_PART_SIZE } from '../../src/segment/uploads.ts';
import type { Segment } from '../../src/segment/segment.ts';
import {
  MiB, expectCode, getBytes, md5, observable, openTempSegment, prngBytes, sha256, type TempSegment,
} from '../helpers/segment-util.ts';

// Copy (shares chunks, copies no bytes) and multipart uploads (S3 rules and ETags).

function contentKey(c: ContentRef): string[] {
  return 'chunks' in c ? c.chunks.map(([cid, len]) => `${cid}:${len}`) : [`tree:${c.tree}`];
}

function multipartEtag(parts: Buffer[]): string {
  const md5s = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()));
  return `${createHash('md5').update(md5s).digest('hex')}-${parts.length}`;
}

describe('segment copy', () => {
  let t: TempSegment;
  let seg: Segment;
  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('src');
    seg.createBucket('dst');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('copies share chunks: stored bytes unchanged, dedup ratio rises', async () => {
    const data = prngBytes(1, 4 * MiB + 99);
    const src = await seg.put('src', 'orig', data, { contentType: 'text/x-a', meta: { k: 'v' } });
    const before = seg.stats();
    const c1 = await seg.copy({ bucket: 'src', key: 'orig' }, { bucket: 'dst', key: 'copy1' });
    const c2 = await seg.copy({ bucket: 'src', key: 'orig' }, { bucket: 'src', key: 'copy2' }, { contentType: 'text/x-b', meta: {} });
    const after = seg.stats();
    expect(after.storedBytes).toBe(before.storedBytes);
    expect(after.chunks).toBe(before.chunks);
    expect(after.logicalBytes).toBe(before.logicalBytes + 2 * data.length);
    expect(after.dedupRatio).toBeGreaterThan(before.dedupRatio);

    expect(c1.etag).toBe(src.etag);
    expect(c1.size).toBe(data.length);
    expect(c1.versionId).not.toBe(src.versionId);
    expect(c1.contentType).toBe('text/x-a');
    expect(c1.meta).toEqual({ k: 'v' });
    expect(c2.contentType).toBe('text/x-b');
    expect(c2.meta).toEqual({});
    expect(contentKey(c1.content)).toEqual(contentKey(src.content));
    expect(contentKey(c1.content).length).toBeGreaterThan(1);
    for (const [b, k] of [['dst', 'copy1'], ['src', 'copy2']]) expect(sha256(await getBytes(seg, b, k))).toBe(sha256(data));
  });

  it('copies a chosen version, and refuses deleted or missing sources', async () => {
    const v1 = await seg.put('src', 'multi', 'version one');
    await seg.put('src', 'multi', 'version two');
    await seg.copy({ bucket: 'src', key: 'multi', versionId: v1.versionId }, { bucket: 'dst', key: 'old' });
    expect((await getBytes(seg, 'dst', 'old')).toString()).toBe('version one');
    await seg.delete('src', 'multi');
    const before = observable(seg);
    await expectCode(() => seg.copy({ bucket: 'src', key: 'multi' }, { bucket: 'dst', key: 'x' }), 'NoSuchKey');
    await expectCode(() => seg.copy({ bucket: 'src', key: 'never' }, { bucket: 'dst', key: 'x' }), 'NoSuchKey');
    await expectCode(() => seg.copy({ bucket: 'nope', key: 'orig' }, { bucket: 'dst', key: 'x' }), 'NoSuchBucket');
    await expectCode(() => seg.copy({ bucket: 'src', key: 'orig' }, { bucket: 'nope', key: 'x' }), 'NoSuchBucket');
    await expectCode(() => seg.copy({ bucket: 'src', key: 'orig' }, { bucket: 'dst', key: 'a/../b' }), 'InvalidKey');
    await expectCode(() => seg.copy({ bucket: 'src', key: 'orig', versionId: 'zzz' }, { bucket: 'dst', key: 'x' }), 'InvalidVersionId');
    expect(observable(seg)).toEqual(before);
    // Copying a still-readable older version of a deleted key works.
    await seg.copy({ bucket: 'src', key: 'multi', versionId: v1.versionId }, { bucket: 'dst', key: 'old2' });
    expect((await getBytes(seg, 'dst', 'old2')).toString()).toBe('version one');
  });
});

describe('segment multipart uploads', () => {
  let t: TempSegment;
  let seg: Segment;
  // Two full-size parts and a short last one; reused across uploads (dedup keeps it cheap).
  const p1 = prngBytes(11, MIN_PART_SIZE);
  const p2 = prngBytes(12, MIN_PART_SIZE + 4321);
  const p3 = prngBytes(13, 1234);
  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('mpu');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('parts uploaded out of order complete in part order, with an md5-of-md5s-N ETag', async () => {
    const up = seg.uploads.create('mpu', 'big/object', { contentType: 'video/mp4', meta: { a: 'b' } });
    expect(up.uploadId).toMatch(/^[0-9a-f]{32}$/);
    expect(seg.uploads.list('mpu').map((u) => u.uploadId)).toEqual([up.uploadId]);
    const r3 = await seg.uploads.putPart('mpu', 'big/object', up.uploadId, 3, p3);
    const r1 = await seg.uploads.putPart('mpu', 'big/object', up.uploadId, 1, p1);
    const r2 = await seg.uploads.putPart('mpu', 'big/object', up.uploadId, 2, p2);
    expect([r1.etag, r2.etag, r3.etag]).toEqual([md5(p1), md5(p2), md5(p3)]);
    expect(seg.uploads.listParts('mpu', 'big/object', up.uploadId).map((p) => [p.part, p.size, p.etag])).toEqual([
      [1, p1.length, md5(p1)], [2, p2.length, md5(p2)], [3, p3.length, md5(p3)],
    ]);
    // Not visible before completion.
    await expectCode(() => seg.head('mpu', 'big/object'), 'NoSuchKey');

    const v = await seg.uploads.complete('mpu', 'big/object', up.uploadId, [
      { part: 1, etag: `"${r1.etag}"` }, { part: 2, etag: r2.etag }, { part: 3, etag: r3.etag },
    ]);
    expect(v.etag).toBe(multipartEtag([p1, p2, p3]));
    expect(v.etag).toMatch(/^[0-9a-f]{32}-3$/);
    expect(v.size).toBe(p1.length + p2.length + p3.length);
    expect(v.contentType).toBe('video/mp4');
    expect(v.meta).toEqual({ a: 'b' });
    const back = await getBytes(seg, 'mpu', 'big/object');
    expect(sha256(back)).toBe(sha256(Buffer.concat([p1, p2, p3])));
    // The upload is gone once completed.
    expect(seg.uploads.list('mpu')).toEqual([]);
    await expectCode(() => seg.uploads.listParts('mpu', 'big/object', up.uploadId), 'NoSuchUpload');
    await expectCode(() => seg.uploads.complete('mpu', 'big/object', up.uploadId, [{ part: 1, etag: r1.etag }]), 'NoSuchUpload');
  });

  it('a re-uploaded part replaces the earlier one; a subset of parts may be completed', async () => {
    const up = seg.uploads.create('mpu', 'redo', {});
    await seg.uploads.putPart('mpu', 'redo', up.uploadId, 1, p2);
    const r1 = await seg.uploads.putPart('mpu', 'redo', up.uploadId, 1, p1);
    await seg.uploads.putPart('mpu', 'redo', up.uploadId, 2, p2);
    const r5 = await seg.uploads.putPart('mpu', 'redo', up.uploadId, 5, p3);
    expect(seg.uploads.listParts('mpu', 'redo', up.uploadId).map((p) => p.part)).toEqual([1, 2, 5]);
    const v = await seg.uploads.complete('mpu', 'redo', up.uploadId, [{ part: 1, etag: r1.etag }, { part: 5, etag: r5.etag }]);
    expect(v.etag).toBe(multipartEtag([p1, p3]));
    expect(sha256(await getBytes(seg, 'mpu', 'redo'))).toBe(sha256(Buffer.concat([p1, p3])));
    // A single small part is fine: only parts before the last have a minimum size.
    const one = seg.uploads.create('mpu', 'one');
    const r = await seg.uploads.putPart('mpu', 'one', one.uploadId, 1, 'x');
    const vo = await seg.uploads.complete('mpu', 'one', one.uploadId, [{ part: 1, etag: r.etag }]);
    expect(vo.etag).toBe(multipartEtag([Buffer.from('x')]));
    expect((await getBytes(seg, 'mpu', 'one')).toString()).toBe('x');
  });

  it('S3 errors: EntityTooSmall, InvalidPart, InvalidPartOrder, NoSuchUpload — and nothing changes', async () => {
    const up = seg.uploads.create('mpu', 'errs');
    const small1 = await seg.uploads.putPart('mpu', 'errs', up.uploadId, 1, 'tiny');
    const r2 = await seg.uploads.putPart('mpu', 'errs', up.uploadId, 2, p1);
    const r3 = await seg.uploads.putPart('mpu', 'errs', up.uploadId, 3, p3);
    const before = observable(seg);
    const complete = (parts: { part: number; etag: string }[], key = 'errs', id = up.uploadId) =>
      seg.uploads.complete('mpu', key, id, parts);

    await expectCode(() => complete([{ part: 1, etag: small1.etag }, { part: 2, etag: r2.etag }]), 'EntityTooSmall');
    await expectCode(() => complete([{ part: 2, etag: md5(Buffer.from('other')) }]), 'InvalidPart');
    await expectCode(() => complete([{ part: 2, etag: r2.etag }, { part: 4, etag: r3.etag }]), 'InvalidPart');
    await expectCode(() => complete([]), 'InvalidPart');
    await expectCode(() => complete([{ part: 3, etag: r3.etag }, { part: 2, etag: r2.etag }]), 'InvalidPartOrder');
    await expectCode(() => complete([{ part: 2, etag: r2.etag }, { part: 2, etag: r2.etag }]), 'InvalidPartOrder');
    await expectCode(() => complete([{ part: 2, etag: r2.etag }], 'errs-other-key'), 'NoSuchUpload');
    await expectCode(() => complete([{ part: 2, etag: r2.etag }], 'errs', 'f'.repeat(32)), 'NoSuchUpload');
    await expectCode(() => seg.uploads.putPart('mpu', 'errs', 'nope', 1, 'x'), 'NoSuchUpload');
    await expectCode(() => seg.uploads.putPart('mpu', 'errs', up.uploadId, 0, 'x'), 'InvalidArgument');
    await expectCode(() => seg.uploads.putPart('mpu', 'errs', up.uploadId, 10_001, 'x'), 'InvalidArgument');
    await expectCode(() => seg.uploads.putPart('mpu', 'errs', up.uploadId, 1.5, 'x'), 'InvalidArgument');
    await expectCode(
      () => seg.uploads.putPart('mpu', 'errs', up.uploadId, 4, 'abc', { contentMd5: Buffer.alloc(16) }),
      'BadDigest',
    );
    await expectCode(() => seg.uploads.create('nope', 'x'), 'NoSuchBucket');
    await expectCode(() => seg.uploads.create('mpu', 'a/./b'), 'InvalidKey');
    expect(observable(seg)).toEqual(before);
    expect(seg.uploads.listParts('mpu', 'errs', up.uploadId).map((p) => p.part)).toEqual([1, 2, 3]);

    // Still completable after all that.
    const v = await complete([{ part: 2, etag: r2.etag }, { part: 3, etag: r3.etag }]);
    expect(v.etag).toBe(multipartEtag([p1, p3]));
  });

  it('abort drops the upload and its parts, which GC then collects', async () => {
    const lone = prngBytes(99, MIN_PART_SIZE + 17); // chunks no other object has
    await seg.gc(0); // garbage of the tests before (replaced and unused parts)
    const up = seg.uploads.create('mpu', 'aborted');
    await seg.uploads.putPart('mpu', 'aborted', up.uploadId, 1, lone);
    const held = seg.stats();
    // In progress: its chunks are referenced and survive GC.
    const gc1 = await seg.gc(0);
    expect(gc1.deleted).toBe(0);
    seg.uploads.abort('mpu', 'aborted', up.uploadId);
    expect(seg.uploads.list('mpu', 'aborted')).toEqual([]);
    await expectCode(() => seg.uploads.listParts('mpu', 'aborted', up.uploadId), 'NoSuchUpload');
    await expectCode(() => seg.uploads.abort('mpu', 'aborted', up.uploadId), 'NoSuchUpload');
    await expectCode(() => seg.head('mpu', 'aborted'), 'NoSuchKey');
    const gc2 = await seg.gc(0);
    expect(gc2.deleted).toBeGreaterThan(0);
    expect(gc2.freedBytes).toBe(lone.length);
    expect(seg.stats().storedBytes).toBe(held.storedBytes - lone.length);
    // Everything else is intact.
    expect(sha256(await getBytes(seg, 'mpu', 'big/object'))).toBe(sha256(Buffer.concat([p1, p2, p3])));
    expect((await seg.scrub()).corrupt.length + (await seg.scrub()).missing.length).toBe(0);
  });

  it('lists uploads by prefix and marker', () => {
    const ids = ['u/a', 'u/b', 'u/c', 'v/a'].map((k) => seg.uploads.create('mpu', k).key);
    expect(seg.uploads.list('mpu', 'u/').map((u) => u.key)).toEqual(['u/a', 'u/b', 'u/c']);
    expect(seg.uploads.list('mpu', 'u/', 'u/a').map((u) => u.key)).toEqual(['u/b', 'u/c']);
    expect(seg.uploads.list('mpu', '', undefined, 2).map((u) => u.key)).toEqual(['u/a', 'u/b']);
    expect(ids.length).toBe(4);
  });
});

// Metadata first, data on read, across a line of three real segments A - B - C (metadata-only
// links for every bucket): a bucket and a version made on A show on C within a second without one
// chunk byte moving; a GET on C then pulls exactly the object's bytes once, relayed through B, and
// a delete marker on A reaches C with the version history intact.
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand,
  ListObjectsV2Command, ListObjectVersionsCommand, PutObjectCommand,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { line, MiB, randomData, s3Failure, sha256, storedBytes, waitFor, World, type Counters } from '../helpers/world-cluster.ts';

const BUCKET = 'meta-line';
const KEY = 'dir/object.bin';
// Well above the 4 KiB inline limit and several chunks (64 KiB / 256 KiB / 1 MiB chunker).
const SIZE = 3 * MiB + 12_345;

describe('isgw: metadata-only line A - B - C', () => {
  let w: World;
  const body = randomData(SIZE);
  let etag: string | undefined;
  let versionId: string | undefined;
  // The bytes of the object's chunks stored as files: all of it, but for a last chunk of at most
  // 4 KiB, which rides inline in the manifest and so is never fetched.
  let stored = 0;

  beforeAll(async () => {
    w = await World.create({ names: ['a', 'b', 'c'], links: line(['a', 'b', 'c']) });
    // B links both neighbours; gossip only flows once those connections are up.
    await waitFor(async () => (await w.status('b')).peers.every((p) => p.connected), 20_000, 'b connected to a and c');
  });

  afterAll(async () => {
    await w?.stop();
  });

  const counters = async (name: string): Promise<Counters> => (await w.status(name)).counters;

  it('stitch status --json reports the links of the running segment', async () => {
    const r = await w.cli('b', ['--json', 'status']);
    expect(r.code, r.stderr).toBe(0);
    const st = JSON.parse(r.stdout) as { segment: string; peers: Array<{ name: string; connected: boolean }>; counters: Counters };
    expect(st.segment).toBe('b');
    expect(st.peers.map((p) => [p.name, p.connected]).sort()).toEqual([['a', true], ['c', true]]);
    expect(st.counters.chunkBytesFetched).toBe(0);
  });

  it('a bucket created on A appears on C', async () => {
    await w.s3('a').send(new CreateBucketCommand({ Bucket: BUCKET }));
    await waitFor(async () => {
      const r = await w.s3('c').send(new ListBucketsCommand({}));
      return r.Buckets?.some((b) => b.Name === BUCKET);
    }, 5_000, 'bucket on c');
    // And on B, which relays it.
    const r = await w.s3('b').send(new ListBucketsCommand({}));
    expect(r.Buckets?.map((b) => b.Name)).toContain(BUCKET);
  });

  it('a put on A is listed on C within one second, with no chunk bytes moved', async () => {
    // The bucket topic subscriptions ride on the connections already up; give them a beat.
    await new Promise((r) => setTimeout(r, 300));
    const put = await w.s3('a').send(new PutObjectCommand({ Bucket: BUCKET, Key: KEY, Body: body, ContentType: 'application/x-test' }));
    const acked = Date.now();
    etag = put.ETag;
    versionId = put.VersionId;
    expect(etag).toBeTruthy();
    expect(versionId).toBeTruthy();
    await waitFor(async () => {
      const r = await w.s3('c').send(new ListObjectsV2Command({ Bucket: BUCKET }));
      return r.Contents?.some((o) => o.Key === KEY);
    }, 10_000, 'object listed on c', 10);
    const elapsed = Date.now() - acked;
    console.log(`isgw-metadata: put on A listed on C after ${elapsed} ms`);
    expect(elapsed).toBeLessThan(1000);
    stored = storedBytes(await w.chunksOf('a', BUCKET, KEY));
    expect(stored).toBeGreaterThan(SIZE - 4096);

    const listed = await w.s3('c').send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(listed.Contents?.map((o) => [o.Key, o.ETag, o.Size])).toEqual([[KEY, etag, SIZE]]);
    const head = await w.s3('c').send(new HeadObjectCommand({ Bucket: BUCKET, Key: KEY }));
    expect(head.ETag).toBe(etag);
    expect(head.ContentLength).toBe(SIZE);
    expect(head.VersionId).toBe(versionId);
    expect(head.ContentType).toBe('application/x-test');

    for (const name of ['a', 'b', 'c']) {
      const c = await counters(name);
      expect(c.chunkBytesFetched, `${name} fetched`).toBe(0);
      expect(c.chunkBytesServed, `${name} served`).toBe(0);
      expect(c.chunksFetched, `${name} chunks fetched`).toBe(0);
    }
    expect((await counters('c')).versionsReceived).toBeGreaterThanOrEqual(2); // bucket event + version
    // Metadata only: B and C hold the version but none of its chunks.
    for (const name of ['b', 'c']) {
      const st = (await w.status(name)).stats;
      expect(st.objects, name).toBe(1);
      expect(st.chunks, name).toBe(0);
      expect(st.storedBytes, name).toBe(0);
    }
  });

  it('a GET on C returns the right bytes, fetching each chunk once through B', async () => {
    const r = await w.s3('c').send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
    const got = await r.Body!.transformToByteArray();
    expect(got.length).toBe(SIZE);
    expect(sha256(got)).toBe(sha256(body));
    expect(r.ETag).toBe(etag);

    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map(counters));
    expect(c.chunkBytesFetched).toBe(stored);
    expect(c.chunksRejected).toBe(0);
    // C is linked only to B: B relayed A's chunks without keeping them.
    expect(b.chunkBytesServed).toBe(stored);
    expect(b.chunkBytesFetched).toBe(stored);
    expect(a.chunkBytesServed).toBe(stored);
    expect(a.chunkBytesFetched).toBe(0);
    expect((await w.status('b')).stats.chunks).toBe(0);
    const cs = (await w.status('c')).stats;
    expect(cs.storedBytes).toBe(stored);

    // A second read is local.
    const again = await w.s3('c').send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY }));
    expect(sha256(await again.Body!.transformToByteArray())).toBe(sha256(body));
    expect((await counters('c')).chunkBytesFetched).toBe(stored);
    expect((await counters('a')).chunkBytesServed).toBe(stored);
  });

  it('a delete marker on A propagates: NoSuchKey on C, both versions listed there', async () => {
    const del = await w.s3('a').send(new DeleteObjectCommand({ Bucket: BUCKET, Key: KEY }));
    expect(del.DeleteMarker).toBe(true);
    const markerId = del.VersionId;
    expect(markerId).toBeTruthy();
    await waitFor(async () => (await s3Failure(w.s3('c').send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY })))).name === 'NoSuchKey',
      5_000, 'delete marker on c');
    const listed = await w.s3('c').send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect(listed.KeyCount ?? 0).toBe(0);

    for (const name of ['a', 'b', 'c']) {
      const v = await w.s3(name).send(new ListObjectVersionsCommand({ Bucket: BUCKET }));
      expect(v.DeleteMarkers?.map((m) => [m.Key, m.VersionId, m.IsLatest]), name).toEqual([[KEY, markerId, true]]);
      expect(v.Versions?.map((x) => [x.Key, x.VersionId, x.ETag, x.Size, x.IsLatest]), name).toEqual([[KEY, versionId, etag, SIZE, false]]);
    }
    // The old version stays readable by id on C (its chunks are already local).
    const old = await w.s3('c').send(new GetObjectCommand({ Bucket: BUCKET, Key: KEY, VersionId: versionId }));
    expect(sha256(await old.Body!.transformToByteArray())).toBe(sha256(body));
    // Still nothing but metadata moved for the marker.
    expect((await counters('c')).chunkBytesFetched).toBe(stored);
  });
});

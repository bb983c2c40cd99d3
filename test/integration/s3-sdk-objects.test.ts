// The S3 gateway through @aws-sdk/client-s3 against a real `stitch serve` process: buckets,
// objects, metadata, ranges, conditionals, versions and delete markers, batch delete, copy,
// and listings (v1, v2, versions) with paging.
import {
  CopyObjectCommand, CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, DeleteObjectsCommand,
  GetBucketLocationCommand, GetBucketVersioningCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand,
  ListBucketsCommand, ListObjectsCommand, ListObjectsV2Command, ListObjectVersionsCommand, PutBucketVersioningCommand,
  PutObjectCommand, type GetObjectCommandInput, type ObjectVersion, type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest } from '../helpers/s3-raw.ts';
import {
  MiB, md5hex, randomData, s3client, s3Failure, sha256, startS3Server, stopChecked, stitchJson, type S3ServerProcess,
} from '../helpers/s3-server.ts';

let server: S3ServerProcess;
let s3: S3Client;

beforeAll(async () => {
  server = await startS3Server();
  s3 = s3client(server.endpoint);
});

afterAll(async () => {
  s3?.destroy();
  await stopChecked(server);
});

async function getBytes(input: GetObjectCommandInput) {
  const r = await s3.send(new GetObjectCommand(input));
  const body = Buffer.from(await r.Body!.transformToByteArray());
  return { r, body };
}

async function putMany(bucket: string, keys: string[], concurrency = 24): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < keys.length) {
      const key = keys[next++];
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
    }
  }));
}

describe('buckets', () => {
  it('creates, lists, heads, locates and deletes buckets', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: 'alpha' }));
    await s3.send(new CreateBucketCommand({ Bucket: 'beta' }));
    const again = await s3Failure(s3.send(new CreateBucketCommand({ Bucket: 'alpha' })));
    expect(again.name).toBe('BucketAlreadyOwnedByYou');
    expect(again.status).toBe(409);

    const list = await s3.send(new ListBucketsCommand({}));
    const names = list.Buckets!.map((b) => b.Name);
    expect(names).toEqual(expect.arrayContaining(['alpha', 'beta']));
    expect(list.Buckets!.every((b) => b.CreationDate instanceof Date && Math.abs(b.CreationDate.getTime() - Date.now()) < 120_000)).toBe(true);
    expect(list.Owner?.ID).toBeTruthy();

    const head = await s3.send(new HeadBucketCommand({ Bucket: 'alpha' }));
    expect(head.$metadata.httpStatusCode).toBe(200);
    const missing = await s3Failure(s3.send(new HeadBucketCommand({ Bucket: 'no-such-bucket' })));
    expect(missing.status).toBe(404);
    const listMissing = await s3Failure(s3.send(new ListObjectsV2Command({ Bucket: 'no-such-bucket' })));
    expect(listMissing.name).toBe('NoSuchBucket');

    const loc = await s3.send(new GetBucketLocationCommand({ Bucket: 'alpha' }));
    expect(loc.$metadata.httpStatusCode).toBe(200);
    expect(loc.LocationConstraint ?? '').toBe('');

    const bad = await s3Failure(s3.send(new CreateBucketCommand({ Bucket: 'Bad_Name' })));
    expect(bad.name).toBe('InvalidBucketName');
    expect(bad.status).toBe(400);

    // Non-empty (an object, then only old versions and a delete marker) → BucketNotEmpty.
    const put = await s3.send(new PutObjectCommand({ Bucket: 'beta', Key: 'k', Body: 'v' }));
    const notEmpty = await s3Failure(s3.send(new DeleteBucketCommand({ Bucket: 'beta' })));
    expect(notEmpty.name).toBe('BucketNotEmpty');
    expect(notEmpty.status).toBe(409);
    const marker = await s3.send(new DeleteObjectCommand({ Bucket: 'beta', Key: 'k' }));
    expect((await s3Failure(s3.send(new DeleteBucketCommand({ Bucket: 'beta' })))).name).toBe('BucketNotEmpty');
    await s3.send(new DeleteObjectCommand({ Bucket: 'beta', Key: 'k', VersionId: put.VersionId }));
    await s3.send(new DeleteObjectCommand({ Bucket: 'beta', Key: 'k', VersionId: marker.VersionId }));
    const del = await s3.send(new DeleteBucketCommand({ Bucket: 'beta' }));
    expect(del.$metadata.httpStatusCode).toBe(204);
    expect((await s3Failure(s3.send(new HeadBucketCommand({ Bucket: 'beta' })))).status).toBe(404);
    const after = await s3.send(new ListBucketsCommand({}));
    expect(after.Buckets!.map((b) => b.Name)).not.toContain('beta');
  });

  it('reports versioning Enabled, accepts Enabled and refuses Suspended with 501', async () => {
    const v = await s3.send(new GetBucketVersioningCommand({ Bucket: 'alpha' }));
    expect(v.Status).toBe('Enabled');
    const put = await s3.send(new PutBucketVersioningCommand({ Bucket: 'alpha', VersioningConfiguration: { Status: 'Enabled' } }));
    expect(put.$metadata.httpStatusCode).toBe(200);
    const suspended = await s3Failure(s3.send(new PutBucketVersioningCommand({ Bucket: 'alpha', VersioningConfiguration: { Status: 'Suspended' } })));
    expect(suspended.name).toBe('NotImplemented');
    expect(suspended.status).toBe(501);
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: 'alpha' }))).Status).toBe('Enabled');
  });
});

describe('objects', () => {
  const B = 'objects';
  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: B }));
  });

  it('round-trips 0 B, small and 20 MiB objects with MD5 ETags', async () => {
    const empty = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'empty', Body: Buffer.alloc(0) }));
    expect(empty.ETag).toBe('"d41d8cd98f00b204e9800998ecf8427e"');
    const e = await getBytes({ Bucket: B, Key: 'empty' });
    expect(e.body.length).toBe(0);
    expect(e.r.ContentLength).toBe(0);
    expect(e.r.ETag).toBe(empty.ETag);

    const small = Buffer.from('hello, stitchfs\n');
    const ps = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'dir/small.txt', Body: small }));
    expect(ps.ETag).toBe(`"${md5hex(small)}"`);
    expect(ps.VersionId).toBeTruthy();
    const s = await getBytes({ Bucket: B, Key: 'dir/small.txt' });
    expect(s.body.equals(small)).toBe(true);
    expect(s.r.ETag).toBe(ps.ETag);
    expect(s.r.VersionId).toBe(ps.VersionId);
    expect(s.r.ContentType).toBe('application/octet-stream');

    const big = randomData(20 * MiB);
    const pb = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'big.bin', Body: big }));
    expect(pb.ETag).toBe(`"${md5hex(big)}"`);
    const g = await getBytes({ Bucket: B, Key: 'big.bin' });
    expect(g.body.length).toBe(big.length);
    expect(sha256(g.body)).toBe(sha256(big));
    expect(g.r.ContentLength).toBe(big.length);
    expect(g.r.ETag).toBe(pb.ETag);

    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'big.bin' }));
    expect(h.ContentLength).toBe(big.length);
    expect(h.ETag).toBe(pb.ETag);
    expect(h.VersionId).toBe(pb.VersionId);
    expect(h.AcceptRanges).toBe('bytes');
    expect(h.LastModified).toBeInstanceOf(Date);
    expect(Math.abs(h.LastModified!.getTime() - Date.now())).toBeLessThan(120_000);

    const missing = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'nope' })));
    expect(missing.name).toBe('NoSuchKey');
    expect(missing.status).toBe(404);
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'nope' })))).status).toBe(404);
    expect((await s3Failure(s3.send(new PutObjectCommand({ Bucket: 'no-such-bucket', Key: 'k', Body: 'x' })))).name).toBe('NoSuchBucket');
  });

  it('stores and returns Content-Type, Content-Encoding, Content-Disposition, Content-Language, Cache-Control, Expires and x-amz-meta-*', async () => {
    const expires = new Date('2031-05-06T07:08:09Z');
    await s3.send(new PutObjectCommand({
      Bucket: B, Key: 'meta.json', Body: '{"a":1}',
      ContentType: 'application/json; charset=utf-8',
      ContentEncoding: 'identity',
      ContentDisposition: 'attachment; filename="report.json"',
      ContentLanguage: 'fr-CA',
      CacheControl: 'max-age=3600, must-revalidate',
      Expires: expires,
      Metadata: { colour: 'blue', 'multi-word': 'a b  c', empty: '' },
    }));
    for (const r of [
      await s3.send(new GetObjectCommand({ Bucket: B, Key: 'meta.json' })),
      await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'meta.json' })),
    ]) {
      expect(r.ContentType).toBe('application/json; charset=utf-8');
      expect(r.ContentEncoding).toBe('identity');
      expect(r.ContentDisposition).toBe('attachment; filename="report.json"');
      expect(r.ContentLanguage).toBe('fr-CA');
      expect(r.CacheControl).toBe('max-age=3600, must-revalidate');
      expect(r.Expires?.getTime()).toBe(expires.getTime());
      expect(r.Metadata).toEqual({ colour: 'blue', 'multi-word': 'a b  c', empty: '' });
      if ('Body' in r && r.Body) expect(await r.Body.transformToString()).toBe('{"a":1}');
    }
    // response-* query overrides change only this response.
    const o = await s3.send(new GetObjectCommand({
      Bucket: B, Key: 'meta.json', ResponseContentType: 'text/plain', ResponseCacheControl: 'no-store',
      ResponseContentDisposition: 'inline',
    }));
    expect(o.ContentType).toBe('text/plain');
    expect(o.CacheControl).toBe('no-store');
    expect(o.ContentDisposition).toBe('inline');
    expect(await o.Body!.transformToString()).toBe('{"a":1}');
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'meta.json' }));
    expect(h.ContentType).toBe('application/json; charset=utf-8');
  });

  it('serves byte ranges: first-last, open, suffix, clamped; beyond the end is 416 InvalidRange', async () => {
    const data = randomData(3 * MiB + 123);
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'ranged', Body: data }));
    const size = data.length;
    const cases: Array<[string, number, number]> = [
      ['bytes=0-9', 0, 10],
      ['bytes=1048570-2097160', 1048570, 2097161],
      [`bytes=${size - 100}-`, size - 100, size],
      ['bytes=-77', size - 77, size],
      [`bytes=5-${size + 1000}`, 5, size],
      [`bytes=${size - 1}-${size - 1}`, size - 1, size],
    ];
    for (const [range, start, end] of cases) {
      const { r, body } = await getBytes({ Bucket: B, Key: 'ranged', Range: range });
      expect(r.$metadata.httpStatusCode, range).toBe(206);
      expect(r.ContentRange, range).toBe(`bytes ${start}-${end - 1}/${size}`);
      expect(r.ContentLength, range).toBe(end - start);
      expect(body.equals(data.subarray(start, end)), range).toBe(true);
    }
    for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`]) {
      const f = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'ranged', Range: range })));
      expect(f.name, range).toBe('InvalidRange');
      expect(f.status, range).toBe(416);
    }
    // A range on an empty object is unsatisfiable too.
    expect((await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'empty', Range: 'bytes=0-0' })))).status).toBe(416);
    // HEAD with a range answers like GET, without a body.
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'ranged', Range: 'bytes=0-99' }));
    expect(h.ContentLength).toBe(100);
    expect(h.ContentRange).toBe(`bytes 0-99/${size}`);
  });

  it('honours If-Match, If-None-Match, If-Modified-Since and If-Unmodified-Since', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'cond', Body: 'conditional' }));
    const etag = put.ETag!;
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'cond' }));
    const lm = h.LastModified!;

    expect((await getBytes({ Bucket: B, Key: 'cond', IfMatch: etag })).body.toString()).toBe('conditional');
    const m = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'cond', IfMatch: '"0123456789abcdef0123456789abcdef"' })));
    expect(m.status).toBe(412);
    expect(m.name).toBe('PreconditionFailed');
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'cond', IfMatch: '"00"' })))).status).toBe(412);

    const nm = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'cond', IfNoneMatch: etag })));
    expect(nm.status).toBe(304);
    expect((await getBytes({ Bucket: B, Key: 'cond', IfNoneMatch: '"ffffffffffffffffffffffffffffffff"' })).body.toString()).toBe('conditional');

    const ims = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'cond', IfModifiedSince: lm })));
    expect(ims.status).toBe(304);
    const older = new Date(lm.getTime() - 3_600_000);
    expect((await getBytes({ Bucket: B, Key: 'cond', IfModifiedSince: older })).r.$metadata.httpStatusCode).toBe(200);

    const ius = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'cond', IfUnmodifiedSince: older })));
    expect(ius.status).toBe(412);
    expect((await getBytes({ Bucket: B, Key: 'cond', IfUnmodifiedSince: lm })).r.$metadata.httpStatusCode).toBe(200);

    // RFC 9110 precedence: a matching If-Match makes If-Unmodified-Since irrelevant.
    expect((await getBytes({ Bucket: B, Key: 'cond', IfMatch: etag, IfUnmodifiedSince: older })).body.toString()).toBe('conditional');
    // ... and If-None-Match beats If-Modified-Since.
    expect((await getBytes({ Bucket: B, Key: 'cond', IfNoneMatch: '"aa"', IfModifiedSince: lm })).r.$metadata.httpStatusCode).toBe(200);
  });

  it('keeps every version; delete makes a marker; deleting the marker restores the object', async () => {
    const v1 = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'ver', Body: 'one' }));
    const v2 = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'ver', Body: 'two' }));
    expect(v1.VersionId).not.toBe(v2.VersionId);
    expect((await getBytes({ Bucket: B, Key: 'ver' })).body.toString()).toBe('two');
    const old = await getBytes({ Bucket: B, Key: 'ver', VersionId: v1.VersionId });
    expect(old.body.toString()).toBe('one');
    expect(old.r.VersionId).toBe(v1.VersionId);
    expect(old.r.ETag).toBe(v1.ETag);
    expect((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'ver', VersionId: v1.VersionId }))).ContentLength).toBe(3);

    const del = await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'ver' }));
    expect(del.DeleteMarker).toBe(true);
    expect(del.VersionId).toBeTruthy();
    expect(del.$metadata.httpStatusCode).toBe(204);
    const gone = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'ver' })));
    expect(gone.name).toBe('NoSuchKey');
    expect(gone.status).toBe(404);
    const raw = await rawRequest(server.endpoint, 'GET', `/${B}/ver`, { sign: true });
    expect(raw.status).toBe(404);
    expect(raw.headers['x-amz-delete-marker']).toBe('true');
    expect(raw.code).toBe('NoSuchKey');
    // Old versions are still readable by id.
    expect((await getBytes({ Bucket: B, Key: 'ver', VersionId: v1.VersionId })).body.toString()).toBe('one');
    expect((await getBytes({ Bucket: B, Key: 'ver', VersionId: v2.VersionId })).body.toString()).toBe('two');
    // The marker itself, by id: 405 MethodNotAllowed as on S3.
    const onMarker = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'ver', VersionId: del.VersionId })));
    expect(onMarker.status).toBe(405);
    // Not in a listing, but in the versions listing as the latest.
    const l = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'ver' }));
    expect(l.Contents ?? []).toEqual([]);
    const vs = await s3.send(new ListObjectVersionsCommand({ Bucket: B, Prefix: 'ver' }));
    expect(vs.DeleteMarkers?.map((d) => [d.VersionId, d.IsLatest])).toEqual([[del.VersionId, true]]);
    expect(vs.Versions?.map((d) => [d.VersionId, d.IsLatest])).toEqual([[v2.VersionId, false], [v1.VersionId, false]]);

    // Deleting the marker by version id brings the object back.
    const undo = await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'ver', VersionId: del.VersionId }));
    expect(undo.VersionId).toBe(del.VersionId);
    expect(undo.DeleteMarker).toBe(true);
    expect((await getBytes({ Bucket: B, Key: 'ver' })).body.toString()).toBe('two');

    // Deleting the current version by id makes the previous one current.
    await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'ver', VersionId: v2.VersionId }));
    expect((await getBytes({ Bucket: B, Key: 'ver' })).body.toString()).toBe('one');
    expect((await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'ver', VersionId: v2.VersionId })))).name).toBe('NoSuchVersion');
    // Deleting a version that is already gone succeeds (idempotent), as on S3.
    expect((await s3.send(new DeleteObjectCommand({ Bucket: B, Key: 'ver', VersionId: v2.VersionId }))).$metadata.httpStatusCode).toBe(204);
    // A malformed version id is an error.
    expect((await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'ver', VersionId: 'not-a-version' })))).status).toBe(400);
  });

  it('refuses what it cannot do honestly: conditional PUT and GET of part N > 1 are 501, never a wrong success', async () => {
    const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'guarded', Body: 'first' }));
    for (const cond of [{ IfNoneMatch: '*' }, { IfMatch: put.ETag }]) {
      const f = await s3Failure(s3.send(new PutObjectCommand({ Bucket: B, Key: 'guarded', Body: 'overwrite', ...cond })));
      expect(f.status, JSON.stringify(cond)).toBe(501);
      expect(f.name).toBe('NotImplemented');
    }
    expect((await getBytes({ Bucket: B, Key: 'guarded' })).body.toString()).toBe('first');
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'guarded-new' })))).status).toBe(404);

    // partNumber=1 is the whole object; a later part is refused rather than answered with it.
    const one = await getBytes({ Bucket: B, Key: 'guarded', PartNumber: 1 });
    expect(one.body.toString()).toBe('first');
    const two = await s3Failure(s3.send(new GetObjectCommand({ Bucket: B, Key: 'guarded', PartNumber: 2 })));
    expect(two.status).toBe(501);
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key: 'guarded', PartNumber: 2 })))).status).toBe(501);
  });

  it('deletes in batches, verbose and quiet', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `batch/k${String(i).padStart(2, '0')}`);
    await putMany(B, keys);
    const verbose = await s3.send(new DeleteObjectsCommand({
      Bucket: B,
      Delete: { Objects: [...keys.slice(0, 20).map((Key) => ({ Key })), { Key: 'batch/never-existed' }, { Key: 'batch/k25', VersionId: 'bogus' }] },
    }));
    const deleted = verbose.Deleted!.map((d) => d.Key).sort();
    expect(deleted).toEqual([...keys.slice(0, 20), 'batch/never-existed'].sort());
    expect(verbose.Deleted!.every((d) => d.DeleteMarker === true && !!d.DeleteMarkerVersionId)).toBe(true);
    expect(verbose.Errors?.map((e) => [e.Key, e.Code])).toEqual([['batch/k25', 'InvalidArgument']]);

    const quiet = await s3.send(new DeleteObjectsCommand({
      Bucket: B, Delete: { Quiet: true, Objects: keys.slice(20, 28).map((Key) => ({ Key })) },
    }));
    expect(quiet.Deleted ?? []).toEqual([]);
    expect(quiet.Errors ?? []).toEqual([]);

    const left = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'batch/' }));
    expect(left.Contents!.map((c) => c.Key)).toEqual(keys.slice(28));
    // Deleting a specific version in a batch removes it for good.
    const v = await s3.send(new HeadObjectCommand({ Bucket: B, Key: keys[29] }));
    const byVersion = await s3.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: [{ Key: keys[29], VersionId: v.VersionId }] } }));
    expect(byVersion.Deleted).toEqual([expect.objectContaining({ Key: keys[29], VersionId: v.VersionId })]);
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key: keys[29], VersionId: v.VersionId })))).status).toBe(404);
  });

  it('copies without copying data: COPY keeps metadata, REPLACE replaces it, self-copy without change is refused', async () => {
    const data = randomData(6 * MiB);
    const src = await s3.send(new PutObjectCommand({
      Bucket: B, Key: 'copy/src.bin', Body: data, ContentType: 'image/x-test', CacheControl: 'no-cache',
      Metadata: { origin: 'source', n: '1' },
    }));
    const before = await stitchJson<{ storedBytes: number; chunks: number; logicalBytes: number }>(server.dataDir, 'stat');

    const c1 = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/kept.bin', CopySource: `${B}/copy/src.bin` }));
    expect(c1.CopyObjectResult?.ETag).toBe(src.ETag);
    expect(c1.CopySourceVersionId).toBe(src.VersionId);
    expect(c1.VersionId).toBeTruthy();
    const kept = await getBytes({ Bucket: B, Key: 'copy/kept.bin' });
    expect(sha256(kept.body)).toBe(sha256(data));
    expect(kept.r.ContentType).toBe('image/x-test');
    expect(kept.r.CacheControl).toBe('no-cache');
    expect(kept.r.Metadata).toEqual({ origin: 'source', n: '1' });

    await s3.send(new CreateBucketCommand({ Bucket: 'copy-dst' }));
    const c2 = await s3.send(new CopyObjectCommand({
      Bucket: 'copy-dst', Key: 'replaced with space.bin', CopySource: `${B}/${encodeURIComponent('copy/src.bin')}`,
      MetadataDirective: 'REPLACE', ContentType: 'text/x-new', Metadata: { fresh: 'yes' },
    }));
    expect(c2.CopyObjectResult?.ETag).toBe(src.ETag);
    const rep = await getBytes({ Bucket: 'copy-dst', Key: 'replaced with space.bin' });
    expect(sha256(rep.body)).toBe(sha256(data));
    expect(rep.r.ContentType).toBe('text/x-new');
    expect(rep.r.CacheControl).toBeUndefined();
    expect(rep.r.Metadata).toEqual({ fresh: 'yes' });

    // A copy of an older version by id.
    // Below the chunker's minimum (64 KiB) and above the inline limit (4 KiB): exactly one stored chunk.
    const newer = randomData(50_000);
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'copy/src.bin', Body: newer }));
    const c3 = await s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/old.bin', CopySource: `${B}/copy/src.bin?versionId=${src.VersionId}` }));
    expect(c3.CopySourceVersionId).toBe(src.VersionId);
    expect(sha256((await getBytes({ Bucket: B, Key: 'copy/old.bin' })).body)).toBe(sha256(data));

    const self = await s3Failure(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/kept.bin', CopySource: `${B}/copy/kept.bin` })));
    expect(self.name).toBe('InvalidRequest');
    expect(self.status).toBe(400);
    // Self-copy with REPLACE is how metadata is changed in place.
    const selfReplace = await s3.send(new CopyObjectCommand({
      Bucket: B, Key: 'copy/kept.bin', CopySource: `${B}/copy/kept.bin`, MetadataDirective: 'REPLACE', Metadata: { edited: 'true' },
    }));
    expect(selfReplace.CopyObjectResult?.ETag).toBe(src.ETag);
    expect((await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'copy/kept.bin' }))).Metadata).toEqual({ edited: 'true' });

    const missing = await s3Failure(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/x', CopySource: `${B}/copy/absent` })));
    expect(missing.name).toBe('NoSuchKey');
    const pre = await s3Failure(s3.send(new CopyObjectCommand({ Bucket: B, Key: 'copy/x', CopySource: `${B}/copy/kept.bin`, CopySourceIfMatch: '"abc"' })));
    expect(pre.status).toBe(412);

    const after = await stitchJson<{ storedBytes: number; chunks: number; logicalBytes: number }>(server.dataDir, 'stat');
    // Four copies of 6 MiB were made (plus one 50 kB put, a single chunk): not one more byte of
    // chunk data.
    expect(after.logicalBytes - before.logicalBytes).toBe(4 * data.length + newer.length);
    expect(after.storedBytes - before.storedBytes).toBe(newer.length);
    expect(after.chunks - before.chunks).toBe(1);
  });
});

describe('listings', () => {
  const B = 'listing';
  const keys: string[] = [];
  for (let i = 0; i < 1200; i++) {
    const n = String(i).padStart(4, '0');
    if (i % 10 === 0) keys.push(`top-${n}`);
    else keys.push(`dir${i % 7}/sub${i % 3}/file-${n}`);
  }
  const sorted = [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

  beforeAll(async () => {
    await s3.send(new CreateBucketCommand({ Bucket: B }));
    await putMany(B, keys);
  }, 120_000);

  it('pages ListObjectsV2 over 1,200 keys with continuation tokens: no duplicate, no gap', async () => {
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 250, ContinuationToken: token }));
      pages++;
      expect(r.KeyCount).toBe(r.Contents!.length);
      expect(r.MaxKeys).toBe(250);
      for (const c of r.Contents!) {
        expect(c.Size).toBe(Buffer.byteLength(c.Key!));
        expect(c.ETag).toBe(`"${md5hex(Buffer.from(c.Key!))}"`);
        expect(c.Owner).toBeUndefined();
      }
      seen.push(...r.Contents!.map((c) => c.Key!));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
      if (r.IsTruncated) expect(token).toBeTruthy();
    } while (token);
    expect(pages).toBe(5);
    expect(seen).toEqual(sorted);

    // Default page: 1,000 keys and truncated.
    const first = await s3.send(new ListObjectsV2Command({ Bucket: B }));
    expect(first.KeyCount).toBe(1000);
    expect(first.IsTruncated).toBe(true);
    const second = await s3.send(new ListObjectsV2Command({ Bucket: B, ContinuationToken: first.NextContinuationToken }));
    expect(second.KeyCount).toBe(200);
    expect(second.IsTruncated).toBe(false);
    expect(second.ContinuationToken).toBe(first.NextContinuationToken);

    // max-keys above 1000 is capped; max-keys 0 is an empty, untruncated page.
    expect((await s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 5000 }))).KeyCount).toBe(1000);
    const zero = await s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 0 }));
    expect(zero.KeyCount).toBe(0);

    const badToken = await s3Failure(s3.send(new ListObjectsV2Command({ Bucket: B, ContinuationToken: '!!!not a token' })));
    expect(badToken.status).toBe(400);
  });

  it('pages ListObjects v1 with markers', async () => {
    const seen: string[] = [];
    let marker: string | undefined;
    for (;;) {
      const r = await s3.send(new ListObjectsCommand({ Bucket: B, MaxKeys: 333, Marker: marker }));
      expect(r.Marker ?? '').toBe(marker ?? '');
      const page = r.Contents!.map((c) => c.Key!);
      expect(r.Contents!.every((c) => c.Owner?.ID)).toBe(true);
      seen.push(...page);
      if (!r.IsTruncated) break;
      marker = r.NextMarker ?? page[page.length - 1];
    }
    expect(seen).toEqual(sorted);
  });

  it('groups by delimiter into CommonPrefixes, with prefix, and pages over them', async () => {
    const root = await s3.send(new ListObjectsV2Command({ Bucket: B, Delimiter: '/' }));
    expect(root.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['dir0/', 'dir1/', 'dir2/', 'dir3/', 'dir4/', 'dir5/', 'dir6/']);
    expect(root.Contents!.map((c) => c.Key)).toEqual(sorted.filter((k) => !k.includes('/')));
    expect(root.KeyCount).toBe(7 + 120);
    expect(root.Delimiter).toBe('/');

    const sub = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'dir3/', Delimiter: '/' }));
    expect(sub.Prefix).toBe('dir3/');
    expect(sub.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['dir3/sub0/', 'dir3/sub1/', 'dir3/sub2/']);
    expect(sub.Contents ?? []).toEqual([]);

    const leaf = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'dir3/sub1/' }));
    expect(leaf.Contents!.map((c) => c.Key)).toEqual(sorted.filter((k) => k.startsWith('dir3/sub1/')));

    // Paging with a delimiter: keys and prefixes together count against max-keys.
    const entries: string[] = [];
    let token: string | undefined;
    do {
      const r = await s3.send(new ListObjectsV2Command({ Bucket: B, Delimiter: '/', MaxKeys: 4, ContinuationToken: token }));
      const n = (r.Contents?.length ?? 0) + (r.CommonPrefixes?.length ?? 0);
      expect(n).toBeLessThanOrEqual(4);
      expect(r.KeyCount).toBe(n);
      entries.push(...(r.CommonPrefixes ?? []).map((p) => p.Prefix!), ...(r.Contents ?? []).map((c) => c.Key!));
      token = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (token);
    const expected = [...root.CommonPrefixes!.map((p) => p.Prefix!), ...root.Contents!.map((c) => c.Key!)];
    expect([...entries].sort()).toEqual([...expected].sort());
    expect(new Set(entries).size).toBe(entries.length);

    // v1 with a delimiter and a marker inside a common prefix's range.
    const v1 = await s3.send(new ListObjectsCommand({ Bucket: B, Delimiter: '/', Marker: 'dir4/' }));
    expect(v1.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['dir5/', 'dir6/']);
    // Prefix that matches nothing.
    const none = await s3.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'zzz' }));
    expect(none.KeyCount).toBe(0);
    expect(none.Contents ?? []).toEqual([]);
  });

  it('honours start-after and fetch-owner', async () => {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: B, StartAfter: 'dir6/sub2/', MaxKeys: 1000 }));
    expect(r.StartAfter).toBe('dir6/sub2/');
    expect(r.Contents!.map((c) => c.Key)).toEqual(sorted.filter((k) => k > 'dir6/sub2/'));
    const mid = await s3.send(new ListObjectsV2Command({ Bucket: B, StartAfter: sorted[500], MaxKeys: 3 }));
    expect(mid.Contents!.map((c) => c.Key)).toEqual(sorted.slice(501, 504));
    const owned = await s3.send(new ListObjectsV2Command({ Bucket: B, MaxKeys: 3, FetchOwner: true }));
    expect(owned.Contents!.every((c) => !!c.Owner?.ID && !!c.Owner.DisplayName)).toBe(true);
  });

  it('url-encodes odd keys with encoding-type=url and round-trips them', async () => {
    const odd = 'odd-keys';
    await s3.send(new CreateBucketCommand({ Bucket: odd }));
    const oddKeys = [
      'with space', 'a+b', '100%', '%41literal', 'ünïcødé/ключ/鍵', 'amp&lt;<tag>', 'q?x=1&y', 'hash#frag',
      'tilde~star*', 'emoji 🧵', 'semi;colon', "quote'\"", 'new\nline',
    ];
    for (const Key of oddKeys) {
      await s3.send(new PutObjectCommand({ Bucket: odd, Key, Body: `body of ${Key}` }));
      expect((await getBytes({ Bucket: odd, Key })).body.toString(), Key).toBe(`body of ${Key}`);
    }
    const expected = [...oddKeys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));

    const enc = await s3.send(new ListObjectsV2Command({ Bucket: odd, EncodingType: 'url' }));
    expect(enc.EncodingType).toBe('url');
    const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
    expect(enc.Contents!.map((c) => decode(c.Key!))).toEqual(expected);
    // Encoded means no raw space/'+'/'%'/newline survives in the XML keys.
    for (const c of enc.Contents!) expect(c.Key!, c.Key).not.toMatch(/[ \n+<&]|%(?![0-9A-F]{2})/);

    const v1 = await s3.send(new ListObjectsCommand({ Bucket: odd, EncodingType: 'url', Delimiter: '/' }));
    expect(v1.CommonPrefixes!.map((p) => decode(p.Prefix!))).toEqual(['ünïcødé/']);
    const vs = await s3.send(new ListObjectVersionsCommand({ Bucket: odd, EncodingType: 'url' }));
    expect(vs.Versions!.map((v) => decode(v.Key!))).toEqual(expected);

    // Without encoding, XML escaping alone must keep keys intact (minus the newline, which XML
    // parsers may normalise).
    const plain = await s3.send(new ListObjectsV2Command({ Bucket: odd }));
    expect(plain.Contents!.map((c) => c.Key).filter((k) => !k!.includes('\n'))).toEqual(expected.filter((k) => !k.includes('\n')));
    // A prefix with odd characters.
    const pre = await s3.send(new ListObjectsV2Command({ Bucket: odd, Prefix: 'ünïcødé/ключ/', EncodingType: 'url' }));
    expect(pre.Contents!.map((c) => decode(c.Key!))).toEqual(['ünïcødé/ключ/鍵']);
    expect(decode(pre.Prefix!)).toBe('ünïcødé/ключ/');
  });

  it('pages ListObjectVersions with key and version-id markers', async () => {
    const VB = 'versions';
    await s3.send(new CreateBucketCommand({ Bucket: VB }));
    const made: Array<{ key: string; versionId: string; marker: boolean }> = [];
    for (const key of ['a', 'b/1', 'b/2', 'c']) {
      for (let i = 0; i < 4; i++) {
        const r = await s3.send(new PutObjectCommand({ Bucket: VB, Key: key, Body: `${key}#${i}` }));
        made.push({ key, versionId: r.VersionId!, marker: false });
      }
    }
    const dm = await s3.send(new DeleteObjectCommand({ Bucket: VB, Key: 'b/1' }));
    made.push({ key: 'b/1', versionId: dm.VersionId!, marker: true });

    const all = await s3.send(new ListObjectVersionsCommand({ Bucket: VB }));
    expect(all.IsTruncated).toBe(false);
    expect(all.Versions!.length).toBe(16);
    expect(all.DeleteMarkers!.length).toBe(1);
    const latest = [...all.Versions!, ...all.DeleteMarkers!].filter((v) => v.IsLatest).map((v) => v.Key).sort();
    expect(latest).toEqual(['a', 'b/1', 'b/2', 'c']);
    // Newest first within a key.
    const aVersions = all.Versions!.filter((v) => v.Key === 'a').map((v) => v.VersionId);
    expect(aVersions).toEqual(made.filter((m) => m.key === 'a').map((m) => m.versionId).reverse());
    expect(all.Versions!.find((v) => v.Key === 'c' && v.IsLatest)?.ETag).toBe(`"${md5hex(Buffer.from('c#3'))}"`);

    for (const pageSize of [1, 3, 5]) {
      const seen: string[] = [];
      let keyMarker: string | undefined;
      let versionMarker: string | undefined;
      for (let guard = 0; guard < 100; guard++) {
        const r = await s3.send(new ListObjectVersionsCommand({
          Bucket: VB, MaxKeys: pageSize, KeyMarker: keyMarker, VersionIdMarker: versionMarker,
        }));
        const page = [...(r.Versions ?? []), ...(r.DeleteMarkers ?? [])] as ObjectVersion[];
        expect(page.length).toBeLessThanOrEqual(pageSize);
        seen.push(...page.map((v) => `${v.Key}@${v.VersionId}`));
        if (!r.IsTruncated) break;
        expect(r.NextKeyMarker).toBeTruthy();
        keyMarker = r.NextKeyMarker;
        versionMarker = r.NextVersionIdMarker;
      }
      expect(new Set(seen).size, `page size ${pageSize}`).toBe(seen.length);
      expect([...seen].sort(), `page size ${pageSize}`).toEqual(made.map((m) => `${m.key}@${m.versionId}`).sort());
    }

    const withPrefix = await s3.send(new ListObjectVersionsCommand({ Bucket: VB, Prefix: 'b/', Delimiter: '/' }));
    expect(withPrefix.Versions!.length).toBe(8);
    const grouped = await s3.send(new ListObjectVersionsCommand({ Bucket: VB, Delimiter: '/' }));
    expect(grouped.CommonPrefixes!.map((p) => p.Prefix)).toEqual(['b/']);
    expect(grouped.Versions!.map((v) => v.Key)).toEqual(['a', 'a', 'a', 'a', 'c', 'c', 'c', 'c']);
  });
});

// Last in the file: a failure here has been a server hang (an endless loop in the version
// listing), which would take every later test down with it.
describe('a key with more versions than one listing batch', () => {
  it('lists and pages 1,100 versions of one key', async () => {
    const DB = 'deep-versions';
    await s3.send(new CreateBucketCommand({ Bucket: DB }));
    const n = 1100;
    const ids = new Set<string>();
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < n) {
        const i = next++;
        ids.add((await s3.send(new PutObjectCommand({ Bucket: DB, Key: 'hot', Body: `v${i}` }))).VersionId!);
      }
    }));
    await s3.send(new PutObjectCommand({ Bucket: DB, Key: 'later', Body: 'x' }));
    expect(ids.size).toBe(n);
    for (const MaxKeys of [1000, 300]) {
      const seen: string[] = [];
      let KeyMarker: string | undefined;
      let VersionIdMarker: string | undefined;
      for (let guard = 0; guard < 10; guard++) {
        const r = await s3.send(new ListObjectVersionsCommand({ Bucket: DB, MaxKeys, KeyMarker, VersionIdMarker }),
          { abortSignal: AbortSignal.timeout(20_000) });
        seen.push(...(r.Versions ?? []).map((v) => `${v.Key}@${v.VersionId}`));
        if (!r.IsTruncated) break;
        KeyMarker = r.NextKeyMarker;
        VersionIdMarker = r.NextVersionIdMarker;
      }
      expect(seen.length, `max-keys ${MaxKeys}`).toBe(n + 1);
      expect(new Set(seen).size, `max-keys ${MaxKeys}`).toBe(n + 1);
      expect(seen.filter((s) => s.startsWith('hot@')).map((s) => s.slice(4)).sort()).toEqual([...ids].sort());
    }
  });
});

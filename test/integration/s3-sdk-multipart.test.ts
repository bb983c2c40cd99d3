// Multipart uploads through @aws-sdk/client-s3 and @aws-sdk/lib-storage against a real
// `stitch serve` process.
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand,
  GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand, PutObjectCommand, UploadPartCommand,
  UploadPartCopyCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KiB, MiB, md5hex, multipartEtag, randomData, s3client, s3Failure, sha256, startS3Server, stopChecked, type S3ServerProcess,
} from '../helpers/s3-server.ts';

const B = 'multipart';
let server: S3ServerProcess;
let s3: S3Client;

beforeAll(async () => {
  server = await startS3Server();
  s3 = s3client(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: B }));
});

afterAll(async () => {
  s3?.destroy();
  await stopChecked(server);
});

async function getBytes(Key: string, Bucket = B): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket, Key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

async function create(Key: string, extra: Record<string, unknown> = {}): Promise<string> {
  const r = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key, ...extra }));
  expect(r.Bucket).toBe(B);
  expect(r.Key).toBe(Key);
  expect(r.UploadId).toBeTruthy();
  return r.UploadId!;
}

async function part(Key: string, UploadId: string, PartNumber: number, Body: Buffer): Promise<string> {
  const r = await s3.send(new UploadPartCommand({ Bucket: B, Key, UploadId, PartNumber, Body }));
  expect(r.ETag).toBe(`"${md5hex(Body)}"`);
  return r.ETag!;
}

describe('multipart uploads', () => {
  it('completes 3 parts of 5 MiB and 4 parts (3 x 5 MiB + a small last part) uploaded out of order', async () => {
    for (const count of [3, 4]) {
      const Key = `assembled-${count}.bin`;
      const parts = Array.from({ length: count }, (_, i) => (i < 3 ? randomData(5 * MiB) : randomData(1234)));
      const id = await create(Key, { ContentType: 'application/x-parts', Metadata: { parts: String(count) }, CacheControl: 'max-age=60' });
      // Reverse order, two at a time.
      const etags = new Map<number, string>();
      const order = parts.map((_, i) => i + 1).reverse();
      for (let i = 0; i < order.length; i += 2) {
        await Promise.all(order.slice(i, i + 2).map(async (n) => etags.set(n, await part(Key, id, n, parts[n - 1]))));
      }
      const done = await s3.send(new CompleteMultipartUploadCommand({
        Bucket: B, Key, UploadId: id,
        MultipartUpload: { Parts: parts.map((_, i) => ({ PartNumber: i + 1, ETag: etags.get(i + 1) })) },
      }));
      const expectedEtag = `"${multipartEtag(parts)}"`;
      expect(expectedEtag).toMatch(new RegExp(`^"[0-9a-f]{32}-${count}"$`));
      expect(done.ETag).toBe(expectedEtag);
      expect(done.Key).toBe(Key);
      expect(done.Bucket).toBe(B);
      expect(done.VersionId).toBeTruthy();

      const whole = Buffer.concat(parts);
      const got = await getBytes(Key);
      expect(got.length).toBe(whole.length);
      expect(sha256(got)).toBe(sha256(whole));
      const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key }));
      expect(h.ETag).toBe(expectedEtag);
      expect(h.ContentLength).toBe(whole.length);
      expect(h.ContentType).toBe('application/x-parts');
      expect(h.CacheControl).toBe('max-age=60');
      expect(h.Metadata).toEqual({ parts: String(count) });
      expect(h.VersionId).toBe(done.VersionId);
      // A range across a part boundary.
      const r = await s3.send(new GetObjectCommand({ Bucket: B, Key, Range: `bytes=${5 * MiB - 10}-${5 * MiB + 9}` }));
      expect(Buffer.from(await r.Body!.transformToByteArray()).equals(whole.subarray(5 * MiB - 10, 5 * MiB + 10))).toBe(true);

      // The upload is gone once completed.
      expect((await s3Failure(s3.send(new ListPartsCommand({ Bucket: B, Key, UploadId: id })))).name).toBe('NoSuchUpload');
    }
  });

  it('lists parts (with paging) and uploads; a re-uploaded part replaces the old one; a subset of parts may be completed', async () => {
    const Key = 'listed/parts.bin';
    const id = await create(Key);
    const p1 = randomData(5 * MiB);
    const p2old = randomData(5 * MiB);
    const p2 = randomData(5 * MiB);
    const p3 = randomData(100 * KiB);
    await part(Key, id, 1, p1);
    await part(Key, id, 2, p2old);
    await part(Key, id, 3, p3);
    const e2 = await part(Key, id, 2, p2);

    const lp = await s3.send(new ListPartsCommand({ Bucket: B, Key, UploadId: id }));
    expect(lp.UploadId).toBe(id);
    expect(lp.IsTruncated).toBe(false);
    expect(lp.Parts!.map((p) => [p.PartNumber, p.ETag, p.Size])).toEqual([
      [1, `"${md5hex(p1)}"`, p1.length], [2, e2, p2.length], [3, `"${md5hex(p3)}"`, p3.length],
    ]);
    expect(lp.Parts!.every((p) => p.LastModified instanceof Date)).toBe(true);
    const page1 = await s3.send(new ListPartsCommand({ Bucket: B, Key, UploadId: id, MaxParts: 2 }));
    expect(page1.Parts!.map((p) => p.PartNumber)).toEqual([1, 2]);
    expect(page1.IsTruncated).toBe(true);
    expect(page1.NextPartNumberMarker).toBe('2');
    const page2 = await s3.send(new ListPartsCommand({ Bucket: B, Key, UploadId: id, MaxParts: 2, PartNumberMarker: page1.NextPartNumberMarker }));
    expect(page2.Parts!.map((p) => p.PartNumber)).toEqual([3]);
    expect(page2.IsTruncated).toBe(false);

    const other1 = await create('listed/other.bin');
    const other2 = await create('elsewhere.bin');
    const all = await s3.send(new ListMultipartUploadsCommand({ Bucket: B }));
    const ids = all.Uploads!.map((u) => [u.Key, u.UploadId]);
    expect(ids).toEqual(expect.arrayContaining([[Key, id], ['listed/other.bin', other1], ['elsewhere.bin', other2]]));
    expect(all.Uploads!.every((u) => u.Initiated instanceof Date)).toBe(true);
    const listed = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'listed/' }));
    expect(listed.Uploads!.map((u) => u.Key).sort()).toEqual(['listed/other.bin', 'listed/parts.bin']);
    const paged = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'listed/', MaxUploads: 1 }));
    expect(paged.Uploads!.length).toBe(1);
    expect(paged.IsTruncated).toBe(true);

    // Complete with parts 1 and 3 only: the object is their concatenation.
    const done = await s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id,
      MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${md5hex(p1)}"` }, { PartNumber: 3, ETag: `"${md5hex(p3)}"` }] },
    }));
    expect(done.ETag).toBe(`"${multipartEtag([p1, p3])}"`);
    expect(sha256(await getBytes(Key))).toBe(sha256(Buffer.concat([p1, p3])));

    for (const [k, u] of [['listed/other.bin', other1], ['elsewhere.bin', other2]] as const) {
      await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: k, UploadId: u }));
    }
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: B }));
    expect(after.Uploads ?? []).toEqual([]);
  });

  it('pages ListMultipartUploads with key and upload-id markers, also inside one key with several uploads', async () => {
    const made: string[] = [];
    for (const Key of ['page/a', 'page/k', 'page/k', 'page/k', 'page/k', 'page/kk', 'page/z', 'page/z']) {
      made.push(`${Key}:${await create(Key)}`);
    }
    for (const MaxUploads of [1, 2, 3]) {
      const seen: string[] = [];
      let KeyMarker: string | undefined;
      let UploadIdMarker: string | undefined;
      for (let guard = 0; guard < 20; guard++) {
        const r = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'page/', MaxUploads, KeyMarker, UploadIdMarker }));
        expect((r.Uploads ?? []).length).toBeLessThanOrEqual(MaxUploads);
        seen.push(...(r.Uploads ?? []).map((u) => `${u.Key}:${u.UploadId}`));
        if (!r.IsTruncated) break;
        KeyMarker = r.NextKeyMarker;
        UploadIdMarker = r.NextUploadIdMarker;
      }
      expect(new Set(seen).size, `max-uploads ${MaxUploads}`).toBe(seen.length);
      expect([...seen].sort(), `max-uploads ${MaxUploads}`).toEqual([...made].sort());
    }
    // A key marker alone skips every upload of that key.
    const after = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'page/', KeyMarker: 'page/k' }));
    expect(after.Uploads!.map((u) => u.Key)).toEqual(['page/kk', 'page/z', 'page/z']);
    for (const m of made) {
      const [Key, UploadId] = m.split(':');
      await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key, UploadId }));
    }
  });

  it('aborts: the upload and its parts are gone', async () => {
    const Key = 'aborted.bin';
    const id = await create(Key);
    await part(Key, id, 1, randomData(64 * KiB));
    const r = await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key, UploadId: id }));
    expect(r.$metadata.httpStatusCode).toBe(204);
    const lp = await s3Failure(s3.send(new ListPartsCommand({ Bucket: B, Key, UploadId: id })));
    expect(lp.name).toBe('NoSuchUpload');
    expect(lp.status).toBe(404);
    expect((await s3Failure(s3.send(new UploadPartCommand({ Bucket: B, Key, UploadId: id, PartNumber: 2, Body: 'x' })))).name).toBe('NoSuchUpload');
    expect((await s3Failure(s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: '"x"' }] },
    })))).name).toBe('NoSuchUpload');
    expect((await s3Failure(s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key, UploadId: id })))).name).toBe('NoSuchUpload');
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key })))).status).toBe(404);
    // An upload id used with another key is not that key's upload.
    const id2 = await create('real.bin');
    expect((await s3Failure(s3.send(new ListPartsCommand({ Bucket: B, Key: 'not-real.bin', UploadId: id2 })))).name).toBe('NoSuchUpload');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: B, Key: 'real.bin', UploadId: id2 }));
  });

  it('refuses EntityTooSmall, InvalidPart and InvalidPartOrder, and the upload stays usable', async () => {
    const Key = 'refused.bin';
    const id = await create(Key);
    const small1 = randomData(1 * MiB);
    const small2 = randomData(1 * MiB);
    const e1 = await part(Key, id, 1, small1);
    const e2 = await part(Key, id, 2, small2);

    const tooSmall = await s3Failure(s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: e1 }, { PartNumber: 2, ETag: e2 }] },
    })));
    expect(tooSmall.name).toBe('EntityTooSmall');
    expect(tooSmall.status).toBe(400);

    const wrongTag = await s3Failure(s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: `"${'0'.repeat(32)}"` }] },
    })));
    expect(wrongTag.name).toBe('InvalidPart');
    expect(wrongTag.status).toBe(400);
    const missingPart = await s3Failure(s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 7, ETag: e1 }] },
    })));
    expect(missingPart.name).toBe('InvalidPart');

    const order = await s3Failure(s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: e2 }, { PartNumber: 1, ETag: e1 }] },
    })));
    expect(order.name).toBe('InvalidPartOrder');
    expect(order.status).toBe(400);

    const badNumber = await s3Failure(s3.send(new UploadPartCommand({ Bucket: B, Key, UploadId: id, PartNumber: 10001, Body: 'x' })));
    expect(badNumber.status).toBe(400);

    // Nothing was created by the failures; the upload still completes.
    expect((await s3Failure(s3.send(new HeadObjectCommand({ Bucket: B, Key })))).status).toBe(404);
    const ok = await s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 2, ETag: e2 }] },
    }));
    expect(ok.ETag).toBe(`"${multipartEtag([small2])}"`);
    expect((await getBytes(Key)).equals(small2)).toBe(true);
  });

  it('UploadPartCopy copies whole objects and byte ranges into parts', async () => {
    const src = randomData(12 * MiB + 77);
    const put = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'copy-source.bin', Body: src }));
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'copy-source.bin', Body: 'a newer version' }));
    const Key = 'copied-parts.bin';
    const id = await create(Key);
    const src2 = randomData(5 * MiB + 1);
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'whole source.bin', Body: src2 }));

    const c1 = await s3.send(new UploadPartCopyCommand({
      Bucket: B, Key, UploadId: id, PartNumber: 1,
      CopySource: `${B}/copy-source.bin?versionId=${put.VersionId}`, CopySourceRange: `bytes=${MiB}-${6 * MiB - 1}`,
    }));
    const r1 = src.subarray(MiB, 6 * MiB);
    expect(c1.CopyPartResult?.ETag).toBe(`"${md5hex(r1)}"`);
    expect(c1.CopySourceVersionId).toBe(put.VersionId);
    const c2 = await s3.send(new UploadPartCopyCommand({
      Bucket: B, Key, UploadId: id, PartNumber: 2, CopySource: `${B}/${encodeURIComponent('whole source.bin')}`,
    }));
    expect(c2.CopyPartResult?.ETag).toBe(`"${md5hex(src2)}"`);
    const c3 = await s3.send(new UploadPartCopyCommand({
      Bucket: B, Key, UploadId: id, PartNumber: 3,
      CopySource: `${B}/copy-source.bin?versionId=${put.VersionId}`, CopySourceRange: `bytes=${12 * MiB}-${12 * MiB + 76}`,
    }));
    const r3 = src.subarray(12 * MiB);
    expect(c3.CopyPartResult?.ETag).toBe(`"${md5hex(r3)}"`);

    const bad = await s3Failure(s3.send(new UploadPartCopyCommand({
      Bucket: B, Key, UploadId: id, PartNumber: 4, CopySource: `${B}/copy-source.bin`, CopySourceRange: 'bytes=100-',
    })));
    expect(bad.status).toBe(400);
    const beyond = await s3Failure(s3.send(new UploadPartCopyCommand({
      Bucket: B, Key, UploadId: id, PartNumber: 4, CopySource: `${B}/whole source.bin`, CopySourceRange: `bytes=${6 * MiB}-${7 * MiB}`,
    })));
    expect(beyond.status).toBe(416);

    const done = await s3.send(new CompleteMultipartUploadCommand({
      Bucket: B, Key, UploadId: id,
      MultipartUpload: { Parts: [c1, c2, c3].map((c, i) => ({ PartNumber: i + 1, ETag: c.CopyPartResult!.ETag })) },
    }));
    const whole = Buffer.concat([r1, src2, r3]);
    expect(done.ETag).toBe(`"${multipartEtag([r1, src2, r3])}"`);
    expect(sha256(await getBytes(Key))).toBe(sha256(whole));
  });

  it('@aws-sdk/lib-storage uploads 40 MiB from a stream', async () => {
    const data = randomData(40 * MiB);
    const partSize = 8 * MiB;
    // An unsized stream in odd-sized pieces, as from a pipe.
    const stream = Readable.from((function* () {
      for (let off = 0; off < data.length; off += 300_001) yield data.subarray(off, Math.min(off + 300_001, data.length));
    })());
    const progress: number[] = [];
    const up = new Upload({
      client: s3, params: { Bucket: B, Key: 'streamed/40mib.bin', Body: stream, ContentType: 'video/x-test' },
      partSize, queueSize: 3,
    });
    up.on('httpUploadProgress', (p) => progress.push(p.loaded ?? 0));
    const r = await up.done();
    const parts: Buffer[] = [];
    for (let off = 0; off < data.length; off += partSize) parts.push(data.subarray(off, off + partSize));
    expect(r.ETag).toBe(`"${multipartEtag(parts)}"`);
    expect(progress.length).toBeGreaterThan(0);
    expect(Math.max(...progress)).toBe(data.length);
    const h = await s3.send(new HeadObjectCommand({ Bucket: B, Key: 'streamed/40mib.bin' }));
    expect(h.ContentLength).toBe(data.length);
    expect(h.ContentType).toBe('video/x-test');
    expect(sha256(await getBytes('streamed/40mib.bin'))).toBe(sha256(data));
    // No upload is left behind.
    const ups = await s3.send(new ListMultipartUploadsCommand({ Bucket: B, Prefix: 'streamed/' }));
    expect(ups.Uploads ?? []).toEqual([]);

    // A small body goes up as one PutObject with a plain MD5 ETag.
    const small = randomData(100 * KiB);
    const one = await new Upload({ client: s3, params: { Bucket: B, Key: 'streamed/small.bin', Body: Readable.from([small]) } }).done();
    expect(one.ETag).toBe(`"${md5hex(small)}"`);
  });
});

// Authentication and integrity of the S3 gateway over real HTTP: anonymous, bad and unknown keys,
// presigned URLs, public-read buckets, payload hashes, Content-MD5, flexible checksums, clock skew.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import {
  CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand,
  S3Client, type ChecksumAlgorithm,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawRequest, signRequest } from '../helpers/s3-raw.ts';
import {
  ACCESS_KEY_ID, KiB, MiB, REGION, SECRET_ACCESS_KEY, md5hex, randomData, s3client, s3Failure, sha256, startS3Server, stopChecked,
  type S3ServerProcess,
} from '../helpers/s3-server.ts';

const B = 'private';
const P = 'public-bucket';
let server: S3ServerProcess;
let s3: S3Client;

beforeAll(async () => {
  server = await startS3Server();
  s3 = s3client(server.endpoint);
  await s3.send(new CreateBucketCommand({ Bucket: B }));
  await s3.send(new PutObjectCommand({ Bucket: B, Key: 'secret.txt', Body: 'top secret' }));
});

afterAll(async () => {
  s3?.destroy();
  await stopChecked(server);
});

const url = (path: string) => `${server.endpoint}${path}`;
const errorCode = (text: string) => /<Code>([^<]*)<\/Code>/.exec(text)?.[1];

async function exists(Bucket: string, Key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket, Key }));
    return true;
  } catch (err) {
    if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return false;
    throw err;
  }
}

describe('signatures', () => {
  it('refuses requests without credentials with 403 AccessDenied', async () => {
    for (const [method, path, body] of [
      ['GET', '/', undefined], ['GET', `/${B}`, undefined], ['GET', `/${B}/secret.txt`, undefined],
      ['PUT', `/${B}/new.txt`, 'data'], ['DELETE', `/${B}/secret.txt`, undefined], ['PUT', '/new-bucket', undefined],
      ['POST', `/${B}/x?uploads`, undefined],
    ] as const) {
      const r = await fetch(url(path), { method, body });
      const text = await r.text();
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(errorCode(text), `${method} ${path}`).toBe('AccessDenied');
      expect(r.headers.get('content-type')).toBe('application/xml');
    }
    const head = await fetch(url(`/${B}/secret.txt`), { method: 'HEAD' });
    expect(head.status).toBe(403);
    // Nothing changed.
    expect(await exists(B, 'new.txt')).toBe(false);
    expect(await exists(B, 'secret.txt')).toBe(true);
    expect((await s3.send(new ListBucketsCommand({}))).Buckets!.map((b) => b.Name)).not.toContain('new-bucket');
  });

  it('refuses a wrong secret (SignatureDoesNotMatch) and an unknown key (InvalidAccessKeyId)', async () => {
    const wrong = s3client(server.endpoint, { secretAccessKey: `${SECRET_ACCESS_KEY}x` });
    const w = await s3Failure(wrong.send(new GetObjectCommand({ Bucket: B, Key: 'secret.txt' })));
    expect(w.name).toBe('SignatureDoesNotMatch');
    expect(w.status).toBe(403);
    const wp = await s3Failure(wrong.send(new PutObjectCommand({ Bucket: B, Key: 'by-wrong-secret', Body: 'x' })));
    expect(wp.name).toBe('SignatureDoesNotMatch');
    expect(await exists(B, 'by-wrong-secret')).toBe(false);
    wrong.destroy();

    const unknown = s3client(server.endpoint, { accessKeyId: 'AKIANOSUCHKEY0000000' });
    const u = await s3Failure(unknown.send(new ListBucketsCommand({})));
    expect(u.name).toBe('InvalidAccessKeyId');
    expect(u.status).toBe(403);
    unknown.destroy();

    // The raw signer agrees with the server (baseline for the raw tests below)...
    const ok = await rawRequest(server.endpoint, 'GET', `/${B}/secret.txt`, { sign: true });
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('top secret');
    // ... and a signature does not survive a change of path or of a signed header.
    const signed = signRequest('GET', server.endpoint, `/${B}/secret.txt`, { range: 'bytes=0-2' }, undefined);
    const otherPath = await rawRequest(server.endpoint, 'GET', `/${B}/other-path.txt`, { headers: signed });
    expect(otherPath.status).toBe(403);
    expect(otherPath.code).toBe('SignatureDoesNotMatch');
    const otherRange = await rawRequest(server.endpoint, 'GET', `/${B}/secret.txt`, { headers: { ...signed, range: 'bytes=0-9' } });
    expect(otherRange.status).toBe(403);
    expect(otherRange.code).toBe('SignatureDoesNotMatch');
    const asSigned = await rawRequest(server.endpoint, 'GET', `/${B}/secret.txt`, { headers: signed });
    expect(asSigned.status).toBe(206);
    expect(asSigned.text).toBe('top');
  });

  it('refuses a request dated 20 minutes off with RequestTimeTooSkewed; the SDK corrects its clock and retries', async () => {
    for (const offset of [-20 * 60_000, 20 * 60_000]) {
      const r = await rawRequest(server.endpoint, 'GET', `/${B}/secret.txt`, { sign: { time: Date.now() + offset } });
      expect(r.status).toBe(403);
      expect(r.code).toBe('RequestTimeTooSkewed');
    }
    // 5 minutes off is within the allowed skew.
    expect((await rawRequest(server.endpoint, 'GET', `/${B}/secret.txt`, { sign: { time: Date.now() - 5 * 60_000 } })).status).toBe(200);

    const skewed = new S3Client({
      endpoint: server.endpoint, region: REGION, forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY }, systemClockOffset: -20 * 60_000,
    });
    const f = await s3Failure(skewed.send(new ListBucketsCommand({})));
    expect(f.name).toBe('RequestTimeTooSkewed');
    expect(f.status).toBe(403);
    // The error carries ServerTime (and the response a Date header): the SDK takes its clock
    // offset from it, so the next call is signed with the server's time and goes through.
    expect(Math.abs(skewed.config.systemClockOffset!)).toBeLessThan(60_000);
    const r = await skewed.send(new ListBucketsCommand({}));
    expect(r.Buckets!.map((b) => b.Name)).toContain(B);
    skewed.destroy();
  });

  it('refuses x-amz-* headers that were not signed', async () => {
    const headers = signRequest('PUT', server.endpoint, `/${B}/unsigned-meta`, {}, Buffer.from('x'));
    const r = await rawRequest(server.endpoint, 'PUT', `/${B}/unsigned-meta`, {
      headers: { ...headers, 'x-amz-meta-evil': 'injected' }, body: 'x',
    });
    expect(r.status).toBe(403);
    expect(r.code).toBe('AccessDenied');
    expect(await exists(B, 'unsigned-meta')).toBe(false);
  });
});

describe('presigned URLs', () => {
  it('presigned GET and PUT work with plain fetch', async () => {
    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'secret.txt' }), { expiresIn: 300 });
    expect(get).toContain('X-Amz-Signature=');
    const r = await fetch(get);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('top secret');
    // Response overrides are signed into the URL.
    const over = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'secret.txt', ResponseContentType: 'text/x-presigned' }), { expiresIn: 300 });
    const ro = await fetch(over);
    expect(ro.headers.get('content-type')).toBe('text/x-presigned');
    await ro.arrayBuffer();

    const data = randomData(3 * MiB + 5);
    // SDK v3's default (requestChecksumCalculation WHEN_SUPPORTED) signs the CRC32 of an *empty*
    // body into a presigned PUT URL (x-amz-checksum-crc32=AAAAAA==): AWS refuses any other body with
    // BadDigest, and so does stitchfs. Presigned PUT URLs are made with WHEN_REQUIRED.
    const defaults = await getSignedUrl(s3, new PutObjectCommand({ Bucket: B, Key: 'presigned/crc.bin' }), { expiresIn: 300 });
    if (defaults.includes('x-amz-checksum-crc32=AAAAAA')) {
      const bad = await fetch(defaults, { method: 'PUT', body: data });
      expect(bad.status).toBe(400);
      expect(errorCode(await bad.text())).toBe('BadDigest');
      expect(await exists(B, 'presigned/crc.bin')).toBe(false);
      const empty = await fetch(defaults, { method: 'PUT', body: '' });
      expect(empty.status).toBe(200);
      await empty.text();
    }
    const presigner = new S3Client({
      endpoint: server.endpoint, region: REGION, forcePathStyle: true, requestChecksumCalculation: 'WHEN_REQUIRED',
      credentials: { accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY },
    });
    const put = await getSignedUrl(presigner, new PutObjectCommand({ Bucket: B, Key: 'presigned/upload.bin', ContentType: 'application/x-presigned' }), { expiresIn: 300 });
    expect(put).not.toContain('x-amz-checksum');
    const pr = await fetch(put, { method: 'PUT', body: data, headers: { 'content-type': 'application/x-presigned' } });
    presigner.destroy();
    const ptext = await pr.text();
    expect(pr.status, ptext).toBe(200);
    expect(pr.headers.get('etag')).toBe(`"${md5hex(data)}"`);
    const back = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'presigned/upload.bin' }));
    expect(back.ContentType).toBe('application/x-presigned');
    expect(sha256(Buffer.from(await back.Body!.transformToByteArray()))).toBe(sha256(data));

    // A presigned HEAD.
    const head = await getSignedUrl(s3, new HeadObjectCommand({ Bucket: B, Key: 'presigned/upload.bin' }), { expiresIn: 60 });
    const hr = await fetch(head, { method: 'HEAD' });
    expect(hr.status).toBe(200);
    expect(hr.headers.get('content-length')).toBe(String(data.length));
  });

  it('refuses an expired presigned URL', async () => {
    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'secret.txt' }), { expiresIn: 1 });
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: B, Key: 'presigned/late.bin' }), { expiresIn: 1 });
    await new Promise((res) => setTimeout(res, 2_200));
    const r = await fetch(get);
    const text = await r.text();
    expect(r.status).toBe(403);
    expect(errorCode(text)).toBe('AccessDenied');
    expect(text).toContain('expired');
    const p = await fetch(put, { method: 'PUT', body: 'too late' });
    expect(p.status).toBe(403);
    await p.text();
    expect(await exists(B, 'presigned/late.bin')).toBe(false);
  });

  it('refuses a tampered presigned URL', async () => {
    const get = await getSignedUrl(s3, new GetObjectCommand({ Bucket: B, Key: 'secret.txt' }), { expiresIn: 300 });
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'other.txt', Body: 'other' }));
    const sig = /X-Amz-Signature=([0-9a-f]{64})/.exec(get)![1];
    const flipped = sig.slice(0, -1) + (sig.endsWith('0') ? '1' : '0');
    const tampered = [
      get.replace('/secret.txt', '/other.txt'),
      get.replace(/X-Amz-Expires=\d+/, 'X-Amz-Expires=604800'),
      get.replace(sig, flipped),
      `${get}&response-content-type=text%2Fhtml`,
      get.replace(/X-Amz-Credential=[^&]+/, (m) => m.replace(ACCESS_KEY_ID, 'AKIAOTHERKEY00000000')),
    ];
    for (const t of tampered) {
      const r = await fetch(t);
      const text = await r.text();
      expect(r.status, t).toBe(403);
      expect(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'AccessDenied'], t).toContain(errorCode(text));
    }
    const put = await getSignedUrl(s3, new PutObjectCommand({ Bucket: B, Key: 'presigned/tamper.bin' }), { expiresIn: 300 });
    const r = await fetch(put.replace('/presigned/tamper.bin', '/presigned/elsewhere.bin'), { method: 'PUT', body: 'x' });
    expect(r.status).toBe(403);
    await r.text();
    expect(await exists(B, 'presigned/elsewhere.bin')).toBe(false);
    expect(await exists(B, 'presigned/tamper.bin')).toBe(false);
  });
});

describe('public-read buckets', () => {
  it('are readable anonymously but not writable', async () => {
    await s3.send(new CreateBucketCommand({ Bucket: P, ACL: 'public-read' }));
    await s3.send(new PutObjectCommand({ Bucket: P, Key: 'hello.txt', Body: 'hello, world', ContentType: 'text/plain' }));

    const g = await fetch(url(`/${P}/hello.txt`));
    expect(g.status).toBe(200);
    expect(g.headers.get('content-type')).toBe('text/plain');
    expect(await g.text()).toBe('hello, world');
    const rg = await fetch(url(`/${P}/hello.txt`), { headers: { range: 'bytes=7-' } });
    expect(rg.status).toBe(206);
    expect(await rg.text()).toBe('world');
    const h = await fetch(url(`/${P}/hello.txt`), { method: 'HEAD' });
    expect(h.status).toBe(200);
    const l = await fetch(url(`/${P}?list-type=2`));
    const listing = await l.text();
    expect(l.status).toBe(200);
    expect(listing).toContain('<Key>hello.txt</Key>');
    const missing = await fetch(url(`/${P}/nope`));
    expect(missing.status).toBe(404);
    expect(errorCode(await missing.text())).toBe('NoSuchKey');

    // An anonymous SDK client reads too.
    const anon = new S3Client({
      endpoint: server.endpoint, region: REGION, forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: '', secretAccessKey: '' }, signer: { sign: async (req) => req },
    });
    const ag = await anon.send(new GetObjectCommand({ Bucket: P, Key: 'hello.txt' }));
    expect(await ag.Body!.transformToString()).toBe('hello, world');
    const al = await anon.send(new ListObjectsV2Command({ Bucket: P }));
    expect(al.Contents!.map((c) => c.Key)).toEqual(['hello.txt']);
    const ap = await s3Failure(anon.send(new PutObjectCommand({ Bucket: P, Key: 'anon.txt', Body: 'x' })));
    expect(ap.name).toBe('AccessDenied');
    anon.destroy();

    for (const [method, path] of [
      ['PUT', `/${P}/anon-upload.txt`], ['DELETE', `/${P}/hello.txt`], ['POST', `/${P}/anon-mp?uploads`],
      ['POST', `/${P}?delete`], ['PUT', `/${P}?versioning`], ['DELETE', `/${P}`],
    ] as const) {
      const r = await fetch(url(path), { method, body: method === 'DELETE' ? undefined : 'payload' });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(errorCode(await r.text()), `${method} ${path}`).toBe('AccessDenied');
    }
    expect(await exists(P, 'anon-upload.txt')).toBe(false);
    expect(await exists(P, 'hello.txt')).toBe(true);
    const ups = await rawRequest(server.endpoint, 'GET', `/${P}?uploads`, {});
    expect(ups.status).toBe(403);

    // Bad credentials on a public bucket are refused, never downgraded to anonymous.
    const badSig = await rawRequest(server.endpoint, 'GET', `/${P}/hello.txt`, { sign: { secretAccessKey: 'wrong' } });
    expect(badSig.status).toBe(403);
    expect(badSig.code).toBe('SignatureDoesNotMatch');
    // A private bucket stays private.
    const priv = await fetch(url(`/${B}/secret.txt`));
    expect(priv.status).toBe(403);
    await priv.text();
  });
});

describe('payload integrity', () => {
  it('refuses a signed PUT whose body does not match x-amz-content-sha256, and stores nothing', async () => {
    const body = randomData(256 * KiB);
    const claimed = createHash('sha256').update('something else').digest('hex');
    const r = await rawRequest(server.endpoint, 'PUT', `/${B}/sha-mismatch.bin`, { body, sign: { payloadHash: claimed } });
    expect(r.status).toBe(400);
    expect(r.code).toBe('XAmzContentSHA256Mismatch');
    expect(await exists(B, 'sha-mismatch.bin')).toBe(false);
    // Over an existing object: the old version stays current, no new version appears.
    await s3.send(new PutObjectCommand({ Bucket: B, Key: 'keep.bin', Body: 'original' }));
    const r2 = await rawRequest(server.endpoint, 'PUT', `/${B}/keep.bin`, { body, sign: { payloadHash: claimed } });
    expect(r2.code).toBe('XAmzContentSHA256Mismatch');
    const kept = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'keep.bin' }));
    expect(await kept.Body!.transformToString()).toBe('original');
    // The matching hash is accepted.
    const ok = await rawRequest(server.endpoint, 'PUT', `/${B}/sha-match.bin`, { body, sign: true });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe(`"${md5hex(body)}"`);
    // A multipart part with a wrong hash is refused too, and not listed.
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: B, Key: 'mp-sha.bin' }));
    const pr = await rawRequest(server.endpoint, 'PUT', `/${B}/mp-sha.bin?partNumber=1&uploadId=${UploadId}`, { body, sign: { payloadHash: claimed } });
    expect(pr.code).toBe('XAmzContentSHA256Mismatch');
    const lp = await rawRequest(server.endpoint, 'GET', `/${B}/mp-sha.bin?uploadId=${UploadId}`, { sign: true });
    expect(lp.status).toBe(200);
    expect(lp.text).not.toContain('<Part>');
  });

  it('refuses a wrong Content-MD5 with BadDigest and stores nothing', async () => {
    const body = Buffer.from('content with a digest');
    const wrongMd5 = createHash('md5').update('different').digest('base64');
    const r = await rawRequest(server.endpoint, 'PUT', `/${B}/md5.txt`, { body, headers: { 'content-md5': wrongMd5 }, sign: true });
    expect(r.status).toBe(400);
    expect(r.code).toBe('BadDigest');
    expect(await exists(B, 'md5.txt')).toBe(false);
    const sdk = await s3Failure(s3.send(new PutObjectCommand({ Bucket: B, Key: 'md5-sdk.txt', Body: body, ContentMD5: wrongMd5 })));
    expect(sdk.name).toBe('BadDigest');
    expect(await exists(B, 'md5-sdk.txt')).toBe(false);
    // Malformed Content-MD5: InvalidDigest.
    const bad = await rawRequest(server.endpoint, 'PUT', `/${B}/md5.txt`, { body, headers: { 'content-md5': 'not-base64' }, sign: true });
    expect(bad.status).toBe(400);
    expect(bad.code).toBe('InvalidDigest');
    expect(await exists(B, 'md5.txt')).toBe(false);
    // The right one is accepted.
    const goodMd5 = createHash('md5').update(body).digest('base64');
    const ok = await s3.send(new PutObjectCommand({ Bucket: B, Key: 'md5.txt', Body: body, ContentMD5: goodMd5 }));
    expect(ok.ETag).toBe(`"${md5hex(body)}"`);
  });

  it("accepts SDK v3's default flexible checksums (CRC32 trailer on streams) and other algorithms; refuses a wrong one", async () => {
    const data = randomData(5 * MiB + 3);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data));
    // A stream body: the SDK sends aws-chunked with an x-amz-checksum-crc32 trailer.
    const cmd = new PutObjectCommand({
      Bucket: B, Key: 'crc/streamed.bin', ContentLength: data.length,
      Body: Readable.from((function* () { for (let o = 0; o < data.length; o += 65_536) yield data.subarray(o, o + 65_536); })()),
    });
    let sent: Record<string, string> = {};
    cmd.middlewareStack.add((next) => async (args) => {
      sent = { ...(args.request as { headers: Record<string, string> }).headers };
      return next(args);
    }, { step: 'deserialize' });
    const streamed = await s3.send(cmd);
    // What the SDK actually sent: aws-chunked framing with a CRC32 trailer.
    expect(sent['x-amz-trailer']).toBe('x-amz-checksum-crc32');
    expect(sent['content-encoding']).toContain('aws-chunked');
    expect(sent['x-amz-decoded-content-length']).toBe(String(data.length));
    expect(streamed.ETag).toBe(`"${md5hex(data)}"`);
    expect(streamed.ChecksumCRC32).toBe(crc.toString('base64'));
    const back = await s3.send(new GetObjectCommand({ Bucket: B, Key: 'crc/streamed.bin' }));
    expect(back.ContentEncoding).toBeUndefined();
    expect(sha256(Buffer.from(await back.Body!.transformToByteArray()))).toBe(sha256(data));

    const small = Buffer.from('checksummed');
    for (const algo of ['CRC32', 'CRC32C', 'SHA1', 'SHA256', 'CRC64NVME'] as ChecksumAlgorithm[]) {
      const r = await s3.send(new PutObjectCommand({ Bucket: B, Key: `crc/${algo}`, Body: small, ChecksumAlgorithm: algo }));
      expect(r.ETag, algo).toBe(`"${md5hex(small)}"`);
      const field = `Checksum${algo}` as 'ChecksumSHA256';
      expect(r[field], algo).toBeTruthy();
    }
    const sha = createHash('sha256').update(small).digest('base64');
    expect((await s3.send(new PutObjectCommand({ Bucket: B, Key: 'crc/sha', Body: small, ChecksumSHA256: sha }))).ChecksumSHA256).toBe(sha);

    const wrong = await s3Failure(s3.send(new PutObjectCommand({ Bucket: B, Key: 'crc/wrong', Body: small, ChecksumCRC32: 'AAAAAA==' })));
    expect(wrong.name).toBe('BadDigest');
    expect(wrong.status).toBe(400);
    expect(await exists(B, 'crc/wrong')).toBe(false);
    const wrongSha = await s3Failure(s3.send(new PutObjectCommand({
      Bucket: B, Key: 'crc/wrong', Body: small, ChecksumSHA256: createHash('sha256').update('x').digest('base64'),
    })));
    expect(wrongSha.name).toBe('BadDigest');
    expect(await exists(B, 'crc/wrong')).toBe(false);
  });
});

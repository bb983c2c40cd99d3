import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { CreateMultipartUploadCommand, PutObjectCommand, S3Client, UploadPartCommand, type ChecksumAlgorithm as SdkAlgorithm } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { createChecksum } from '../../src/s3/auth/checksums.ts';
import { staticCredentials } from '../../src/s3/auth/credentials.ts';
import { S3AuthError } from '../../src/s3/auth/errors.ts';
import { verifiedBody } from '../../src/s3/auth/payload.ts';
import { parseQuery, verifySigV4, type Headers, type SigV4Auth, type SigV4Request } from '../../src/s3/auth/sigv4.ts';

const KEY = 'AKIDPAYLOAD';
const SECRET = 'payload/secret';
const store = staticCredentials({ [KEY]: SECRET });

interface SdkRequest {
  method: string;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

function escape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

// The captured SDK request as the gateway would receive it, body bytes included.
async function onWire(r: SdkRequest): Promise<{ req: SigV4Request; body: Buffer }> {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(r.query ?? {})) {
    if (v === null) parts.push(escape(k));
    else for (const one of Array.isArray(v) ? v : [v]) parts.push(`${escape(k)}=${escape(one)}`);
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  let body = Buffer.alloc(0);
  if (r.body instanceof Uint8Array || typeof r.body === 'string') body = Buffer.from(r.body as Uint8Array);
  else if (r.body && typeof (r.body as Readable)[Symbol.asyncIterator] === 'function') {
    const chunks: Buffer[] = [];
    for await (const c of r.body as Readable) chunks.push(Buffer.from(c));
    body = Buffer.concat(chunks);
  }
  return { req: { method: r.method, path: r.path, query: parseQuery(parts.join('&')), headers }, body };
}

function capturingClient(): { client: S3Client; sent: SdkRequest[] } {
  const sent: SdkRequest[] = [];
  const client = new S3Client({
    region: 'segment-b',
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    credentials: { accessKeyId: KEY, secretAccessKey: SECRET },
    requestHandler: {
      handle: async (request: SdkRequest) => {
        sent.push(request);
        const xml = '<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>';
        return { response: { statusCode: 200, headers: { etag: '"e"' }, body: Readable.from([Buffer.from(xml)]) } };
      },
    } as never,
  });
  return { client, sent };
}

// Delivered in random-size pieces, as a socket would.
async function* pieces(body: Buffer): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < body.length; ) {
    const n = 1 + Math.floor(Math.random() * 20000);
    yield body.subarray(at, at + n);
    at += n;
  }
}

async function readAll(b: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const p of b) out.push(Buffer.from(p));
  return Buffer.concat(out);
}

async function failure(auth: SigV4Auth | undefined, headers: Headers, body: Buffer): Promise<string> {
  try {
    await readAll(verifiedBody(auth, headers, pieces(body)));
  } catch (err) {
    if (err instanceof S3AuthError) return err.code;
    throw err;
  }
  return 'accepted';
}

const b64 = async (alg: Parameters<typeof createChecksum>[0], data: Buffer) => {
  const c = createChecksum(alg);
  c.update(data);
  return c.digest();
};

describe('verifiedBody with what @aws-sdk/client-s3 sends', () => {
  const payload = randomBytes(300_000);
  const algorithms: Array<[SdkAlgorithm, string]> = [
    ['CRC32', 'x-amz-checksum-crc32'],
    ['CRC32C', 'x-amz-checksum-crc32c'],
    ['CRC64NVME', 'x-amz-checksum-crc64nvme'],
    ['SHA1', 'x-amz-checksum-sha1'],
    ['SHA256', 'x-amz-checksum-sha256'],
  ];

  for (const [alg, header] of algorithms) {
    it(`streams an aws-chunked PutObject with a ${alg} trailer`, async () => {
      const { client, sent } = capturingClient();
      const stream = Readable.from([payload.subarray(0, 70_000), payload.subarray(70_000, 250_000), payload.subarray(250_000)]);
      await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'big/file.bin', Body: stream, ContentLength: payload.length, ChecksumAlgorithm: alg }));
      const { req, body } = await onWire(sent[0]!);
      expect(req.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
      expect(req.headers['x-amz-trailer']).toBe(header);
      const auth = verifySigV4(req, store, { now: Date.now() });
      expect(auth.payloadMode).toEqual({ kind: 'streaming-unsigned-trailer' });
      const verified = verifiedBody(auth, req.headers, pieces(body));
      expect((await readAll(verified)).equals(payload)).toBe(true);
      expect(verified.length).toBe(payload.length);
      expect(verified.checksum).toEqual({ algorithm: alg.toLowerCase(), value: await b64(alg.toLowerCase() as never, payload) });
      // One payload byte changed in transit: the trailer checksum catches it.
      const at = body.indexOf(payload.subarray(1000, 1032));
      const bad = Buffer.from(body);
      bad[at] = bad[at]! ^ 1;
      expect(await failure(auth, req.headers, bad)).toBe('BadDigest');
    });
  }

  it('checks the signed sha256 and x-amz-checksum header of a buffered PutObject and UploadPart', async () => {
    const { client, sent } = capturingClient();
    const data = randomBytes(5000);
    await client.send(new PutObjectCommand({ Bucket: 'b', Key: 'k', Body: data, ChecksumAlgorithm: 'CRC32C' }));
    await client.send(new CreateMultipartUploadCommand({ Bucket: 'b', Key: 'k' }));
    await client.send(new UploadPartCommand({ Bucket: 'b', Key: 'k', UploadId: 'u1', PartNumber: 3, Body: data }));
    for (const captured of [sent[0]!, sent[2]!]) {
      const { req, body } = await onWire(captured);
      const auth = verifySigV4(req, store, { now: Date.now() });
      expect(auth.payloadMode).toEqual({ kind: 'sha256', hex: createHash('sha256').update(data).digest('hex') });
      const verified = verifiedBody(auth, req.headers, pieces(body));
      expect((await readAll(verified)).equals(data)).toBe(true);
      expect(verified.checksum?.value).toBe(await b64(verified.checksum!.algorithm, data));
      const bad = Buffer.from(body);
      bad[17] = bad[17]! ^ 0x80;
      expect(await failure(auth, req.headers, bad)).toBe('XAmzContentSHA256Mismatch');
      expect(await failure(auth, req.headers, body.subarray(1))).toBe('XAmzContentSHA256Mismatch');
    }
    // CreateMultipartUpload carries a bare '?uploads', signed as 'uploads='.
    const { req } = await onWire(sent[1]!);
    expect(req.query).toContainEqual(['uploads', '']);
    expect(verifySigV4(req, store, { now: Date.now() }).accessKeyId).toBe(KEY);
  });
});

describe('verifiedBody checks', () => {
  const data = Buffer.from('the quick brown fox jumps over the lazy dog');
  const unsignedAuth = { payloadMode: { kind: 'unsigned' }, presigned: false } as SigV4Auth;

  it('checks x-amz-checksum-* and Content-MD5 even on unsigned and anonymous bodies', async () => {
    const crc = await b64('crc32', data);
    const md5 = createHash('md5').update(data).digest('base64');
    for (const auth of [unsignedAuth, undefined]) {
      expect(await failure(auth, { 'x-amz-checksum-crc32': crc }, data)).toBe('accepted');
      expect(await failure(auth, { 'x-amz-checksum-crc32': crc }, Buffer.from(data.toString().replace('fox', 'cat')))).toBe('BadDigest');
      expect(await failure(auth, { 'x-amz-checksum-crc32': 'AAAA' }, data)).toBe('InvalidRequest');
      expect(await failure(auth, { 'x-amz-checksum-crc32': crc, 'x-amz-checksum-sha1': await b64('sha1', data) }, data)).toBe('InvalidRequest');
      expect(await failure(auth, { 'content-md5': md5 }, data)).toBe('accepted');
      expect(await failure(auth, { 'content-md5': md5 }, data.subarray(0, 10))).toBe('BadDigest');
      expect(await failure(auth, { 'content-md5': 'not-md5' }, data)).toBe('InvalidDigest');
    }
    const v = verifiedBody(undefined, { 'x-amz-checksum-crc32': crc, 'x-amz-checksum-type': 'FULL_OBJECT' }, pieces(data));
    await readAll(v);
    expect(v.checksum).toEqual({ algorithm: 'crc32', value: crc });
    // Headers as req.headersDistinct gives them: every value a list; unrelated repeats are fine,
    // a repeated integrity header is not.
    const distinct = { 'x-amz-checksum-crc32': [crc], 'x-amz-meta-tag': ['a', 'b'], 'content-md5': [md5] };
    expect(await failure(unsignedAuth, distinct, data)).toBe('accepted');
    expect(await failure(unsignedAuth, { ...distinct, 'x-amz-checksum-crc32': [crc, crc] }, data)).toBe('InvalidRequest');
  });

  it('takes a presigned URL’s hoisted checksum from the query', async () => {
    const crc = await b64('crc32', data);
    const presigned = { ...unsignedAuth, presigned: true };
    const good = verifiedBody(presigned, {}, pieces(data), { query: [['x-amz-checksum-crc32', crc]] });
    await readAll(good);
    expect(good.checksum?.value).toBe(crc);
    const bad = verifiedBody(presigned, {}, pieces(data), { query: [['x-amz-checksum-crc32', await b64('crc32', Buffer.from('x'))]] });
    await expect(readAll(bad)).rejects.toMatchObject({ code: 'BadDigest' });
  });

  it('needs x-amz-decoded-content-length for aws-chunked, and refuses two checksum sources', () => {
    const streaming = { payloadMode: { kind: 'streaming-unsigned-trailer' }, presigned: false } as SigV4Auth;
    expect(() => verifiedBody(streaming, {}, pieces(data))).toThrow(expect.objectContaining({ code: 'MissingContentLength' }));
    expect(() => verifiedBody(streaming, { 'x-amz-decoded-content-length': '12abc' }, pieces(data))).toThrow(
      expect.objectContaining({ code: 'InvalidArgument' }),
    );
    expect(() =>
      verifiedBody(
        streaming,
        { 'x-amz-decoded-content-length': '5', 'x-amz-trailer': 'x-amz-checksum-crc32', 'x-amz-checksum-crc32': 'AAAAAA==' },
        pieces(data),
      ),
    ).toThrow(expect.objectContaining({ code: 'InvalidRequest' }));
  });

  it("decodes AWS's signed chunked example end to end", async () => {
    const seed = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
    const headers = {
      'content-encoding': 'aws-chunked',
      'content-length': '66824',
      host: 's3.amazonaws.com',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'x-amz-date': '20130524T000000Z',
      'x-amz-decoded-content-length': '66560',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;' +
        `x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${seed}`,
    };
    const auth = verifySigV4(
      { method: 'PUT', path: '/examplebucket/chunkObject.txt', query: [], headers },
      staticCredentials({ AKIAIOSFODNN7EXAMPLE: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }),
      { now: Date.UTC(2013, 4, 24, 0, 5) },
    );
    const body = Buffer.concat([
      Buffer.from('10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n'),
      Buffer.alloc(65536, 'a'),
      Buffer.from('\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n'),
      Buffer.alloc(1024, 'a'),
      Buffer.from('\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n'),
    ]);
    const verified = verifiedBody(auth, headers, pieces(body));
    expect((await readAll(verified)).equals(Buffer.alloc(66560, 'a'))).toBe(true);
    // The same body under a different seed (another request's signature) is refused.
    expect(await failure({ ...auth, seedSignature: '0'.repeat(64) }, headers, body)).toBe('SignatureDoesNotMatch');
  });
});

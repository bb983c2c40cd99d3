import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeAwsChunked, type AwsChunkedOptions, type ChunkSigning, type StreamingMode } from '../../src/s3/auth/aws-chunked.ts';
import { type ChecksumAlgorithm, createChecksum } from '../../src/s3/auth/checksums.ts';
import { staticCredentials } from '../../src/s3/auth/credentials.ts';
import { S3AuthError } from '../../src/s3/auth/errors.ts';
import { verifySigV4 } from '../../src/s3/auth/sigv4.ts';

// ---------------------------------------------------------------------------------------------
// An encoder written from the spec, independent of the decoder (and checked below against AWS's
// published chunk signatures, so it is not merely agreeing with the code under test).

const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');
const hmac = (key: Buffer, s: string) => createHmac('sha256', key).update(s).digest();

function signingKey(secret: string, date: string, region: string): Buffer {
  return [date, region, 's3', 'aws4_request'].reduce<Buffer>((k, part) => hmac(k, part), Buffer.from('AWS4' + secret));
}

function chunkSignature(s: ChunkSigning, prev: string, data: Uint8Array): string {
  const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${s.amzDate}\n${s.scope}\n${prev}\n${EMPTY}\n${sha256(data)}`;
  return hmac(s.signingKey, sts).toString('hex');
}

function trailerSignature(s: ChunkSigning, prev: string, lines: string[]): string {
  const sts = `AWS4-HMAC-SHA256-TRAILER\n${s.amzDate}\n${s.scope}\n${prev}\n${sha256(lines.map((l) => l + '\n').join(''))}`;
  return hmac(s.signingKey, sts).toString('hex');
}

interface Encoded {
  body: Buffer;
  sigs: string[]; // every chunk signature, final one included, then the trailer signature
}

function encode(mode: StreamingMode, chunks: Buffer[], opts: { signing?: ChunkSigning; trailers?: string[] } = {}): Encoded {
  const out: Buffer[] = [];
  const sigs: string[] = [];
  let prev = opts.signing?.seedSignature ?? '';
  for (const data of [...chunks, Buffer.alloc(0)]) {
    if (mode === 'streaming-unsigned-trailer') {
      out.push(Buffer.from(`${data.length.toString(16)}\r\n`));
    } else {
      prev = chunkSignature(opts.signing!, prev, data);
      sigs.push(prev);
      out.push(Buffer.from(`${data.length.toString(16)};chunk-signature=${prev}\r\n`));
    }
    if (data.length > 0) out.push(data, Buffer.from('\r\n'));
  }
  if (mode === 'streaming-signed') {
    out.push(Buffer.from('\r\n'));
  } else {
    const lines = opts.trailers ?? [];
    for (const line of lines) out.push(Buffer.from(line + '\r\n'));
    if (mode === 'streaming-signed-trailer') {
      const sig = trailerSignature(opts.signing!, prev, lines);
      sigs.push(sig);
      out.push(Buffer.from(`x-amz-trailer-signature:${sig}\r\n`));
    }
    out.push(Buffer.from('\r\n'));
  }
  return { body: Buffer.concat(out), sigs };
}

// A deterministic PRNG, so a failing split is reproducible from its seed.
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

// The body as a network would deliver it: pieces of random sizes, as fresh Uint8Arrays.
async function* pieces(body: Buffer, seed: number, max = 9000): AsyncGenerator<Uint8Array> {
  const rand = rng(seed);
  for (let at = 0; at < body.length; ) {
    const n = 1 + Math.floor(rand() * max);
    yield new Uint8Array(body.subarray(at, at + n));
    at += n;
  }
}

async function decodeAll(body: Buffer | AsyncIterable<Uint8Array>, options: AwsChunkedOptions, seed = 1) {
  const source = Buffer.isBuffer(body) ? pieces(body, seed) : body;
  const decoded = decodeAwsChunked(source, options);
  const out: Buffer[] = [];
  for await (const b of decoded) out.push(Buffer.from(b));
  return { bytes: Buffer.concat(out), decoded };
}

async function failure(body: Buffer | AsyncIterable<Uint8Array>, options: AwsChunkedOptions, seed = 1): Promise<string> {
  try {
    await decodeAll(body, options, seed);
  } catch (err) {
    if (err instanceof S3AuthError) return err.code;
    throw err;
  }
  return 'accepted';
}

async function digestOf(alg: ChecksumAlgorithm, data: Buffer): Promise<string> {
  const c = createChecksum(alg);
  c.update(data);
  return c.digest();
}

// ---------------------------------------------------------------------------------------------

const AKID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const EXAMPLE: Omit<ChunkSigning, 'seedSignature'> = {
  signingKey: signingKey(SECRET, '20130524', 'us-east-1'),
  scope: '20130524/us-east-1/s3/aws4_request',
  amzDate: '20130524T000000Z',
};
const A64K = Buffer.alloc(65536, 'a');
const A1K = Buffer.alloc(1024, 'a');

describe('AWS published chunked-upload examples', () => {
  const seed1 = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
  const sigs1 = [
    'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
    '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
    'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
  ];
  const example1 = Buffer.concat([
    Buffer.from(`10000;chunk-signature=${sigs1[0]}\r\n`),
    A64K,
    Buffer.from(`\r\n400;chunk-signature=${sigs1[1]}\r\n`),
    A1K,
    Buffer.from(`\r\n0;chunk-signature=${sigs1[2]}\r\n\r\n`),
  ]);

  it('the test encoder reproduces the published chunk signatures and body', () => {
    const enc = encode('streaming-signed', [A64K, A1K], { signing: { ...EXAMPLE, seedSignature: seed1 } });
    expect(enc.sigs).toEqual(sigs1);
    expect(enc.body.equals(example1)).toBe(true);
    expect(example1.length).toBe(66824); // the example's Content-Length
  });

  it('decodes example 1 from its headers, in any split', async () => {
    const auth = verifySigV4(
      {
        method: 'PUT',
        path: '/examplebucket/chunkObject.txt',
        query: [],
        headers: {
          'content-encoding': 'aws-chunked',
          'content-length': '66824',
          host: 's3.amazonaws.com',
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          'x-amz-date': '20130524T000000Z',
          'x-amz-decoded-content-length': '66560',
          'x-amz-storage-class': 'REDUCED_REDUNDANCY',
          authorization:
            `AWS4-HMAC-SHA256 Credential=${AKID}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;` +
            `x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${seed1}`,
        },
      },
      staticCredentials({ [AKID]: SECRET }),
      { now: Date.UTC(2013, 4, 24) },
    );
    const options: AwsChunkedOptions = { mode: 'streaming-signed', decodedContentLength: 66560, signing: auth };
    for (const seed of [1, 2, 3, 4, 5]) {
      const { bytes, decoded } = await decodeAll(example1, options, seed);
      expect(bytes.equals(Buffer.alloc(66560, 'a'))).toBe(true);
      expect(decoded.decodedLength).toBe(66560);
      expect(decoded.checksum).toBeUndefined();
    }
    // One byte at a time: every framing boundary falls between two pieces.
    const oneByte = (async function* () {
      for (let i = 0; i < example1.length; i++) yield example1.subarray(i, i + 1);
    })();
    expect((await decodeAll(oneByte, options)).bytes.length).toBe(66560);
  });

  it('decodes example 2 (signed, with a signed crc32c trailer)', async () => {
    const seed2 = '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e';
    const sigs2 = [
      'b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2',
      '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7',
      '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992',
      'd81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435',
    ];
    const signing = { ...EXAMPLE, seedSignature: seed2 };
    const enc = encode('streaming-signed-trailer', [A64K, A1K], { signing, trailers: ['x-amz-checksum-crc32c:sOO8/Q=='] });
    expect(enc.sigs).toEqual(sigs2);
    const options: AwsChunkedOptions = {
      mode: 'streaming-signed-trailer',
      decodedContentLength: 66560,
      trailer: 'x-amz-checksum-crc32c',
      signing,
    };
    const { bytes, decoded } = await decodeAll(enc.body, options);
    expect(bytes.equals(Buffer.alloc(66560, 'a'))).toBe(true);
    expect(decoded.checksum).toEqual({ algorithm: 'crc32c', value: 'sOO8/Q==' });
    expect(decoded.trailers.get('x-amz-checksum-crc32c')).toBe('sOO8/Q==');
    const forged = Buffer.from(enc.body.toString('latin1').replace('sOO8/Q==', 'AAAAAA=='), 'latin1');
    expect(await failure(forged, options)).toBe('SignatureDoesNotMatch');
  });
});

// ---------------------------------------------------------------------------------------------

const SIGNING: ChunkSigning = {
  signingKey: signingKey('gateway-secret', '20250115', 'us-west-stitch'),
  scope: '20250115/us-west-stitch/s3/aws4_request',
  amzDate: '20250115T120000Z',
  seedSignature: sha256('pretend this is the request signature'),
};

function randomChunks(seed: number, count: number, maxSize: number): Buffer[] {
  const rand = rng(seed);
  return Array.from({ length: count }, () => randomBytes(1 + Math.floor(rand() * maxSize)));
}

const total = (chunks: Buffer[]) => chunks.reduce((n, c) => n + c.length, 0);

describe('round trips of bodies built from the spec', () => {
  it('signed: any chunking, any split', async () => {
    for (const seed of [11, 12, 13]) {
      const chunks = randomChunks(seed, 1 + (seed % 7), 200_000);
      const { body } = encode('streaming-signed', chunks, { signing: SIGNING });
      const options: AwsChunkedOptions = { mode: 'streaming-signed', decodedContentLength: total(chunks), signing: SIGNING };
      const { bytes } = await decodeAll(body, options, seed);
      expect(bytes.equals(Buffer.concat(chunks))).toBe(true);
    }
  });

  for (const alg of ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'] as const) {
    it(`signed with a ${alg} trailer, and unsigned with one`, async () => {
      const chunks = randomChunks(alg.length, 5, 100_000);
      const payload = Buffer.concat(chunks);
      const name = `x-amz-checksum-${alg}`;
      const value = await digestOf(alg, payload);
      for (const mode of ['streaming-signed-trailer', 'streaming-unsigned-trailer'] as const) {
        const { body } = encode(mode, chunks, { signing: SIGNING, trailers: [`${name}:${value}`] });
        const options: AwsChunkedOptions = { mode, decodedContentLength: payload.length, trailer: name, signing: SIGNING };
        const { bytes, decoded } = await decodeAll(body, options, 7);
        expect(bytes.equals(payload)).toBe(true);
        expect(decoded.checksum).toEqual({ algorithm: alg, value });
      }
    });
  }

  it('an empty payload is just the final chunk', async () => {
    for (const mode of ['streaming-signed', 'streaming-signed-trailer', 'streaming-unsigned-trailer'] as const) {
      const { body } = encode(mode, [], { signing: SIGNING });
      const { bytes } = await decodeAll(body, { mode, decodedContentLength: 0, signing: SIGNING });
      expect([mode, bytes.length]).toEqual([mode, 0]);
    }
  });

  it("accepts the AWS SDK for JavaScript's unsigned body without checksum ('0\\r\\n' then end)", async () => {
    const body = Buffer.from('5\r\nhello\r\n0\r\n');
    const { bytes } = await decodeAll(body, { mode: 'streaming-unsigned-trailer', decodedContentLength: 5 });
    expect(bytes.toString()).toBe('hello');
    // ...but not when a trailer was promised.
    expect(await failure(body, { mode: 'streaming-unsigned-trailer', decodedContentLength: 5, trailer: 'x-amz-checksum-crc32' })).toBe('IncompleteBody');
  });
});

describe('refusals', () => {
  const chunks = [Buffer.from('first chunk of data '), Buffer.from('second chunk, a little longer'), Buffer.from('3rd')];
  const payload = Buffer.concat(chunks);
  const signedOpts: AwsChunkedOptions = { mode: 'streaming-signed', decodedContentLength: payload.length, signing: SIGNING };
  const signed = encode('streaming-signed', chunks, { signing: SIGNING });
  const replace = (body: Buffer, from: string, to: string) => {
    const text = body.toString('latin1');
    expect(text.includes(from)).toBe(true);
    return Buffer.from(text.replace(from, to), 'latin1');
  };

  it('the untampered body decodes (so the cases below fail for what they change)', async () => {
    expect((await decodeAll(signed.body, signedOpts)).bytes.equals(payload)).toBe(true);
  });

  it('a flipped payload byte breaks its chunk signature, and nothing of that chunk is released', async () => {
    const bad = replace(signed.body, 'second', 'sEcond');
    const got: Buffer[] = [];
    let code = 'accepted';
    try {
      for await (const b of decodeAwsChunked(pieces(bad, 3, 7), signedOpts)) got.push(Buffer.from(b));
    } catch (err) {
      code = (err as S3AuthError).code;
    }
    expect(code).toBe('SignatureDoesNotMatch');
    expect(Buffer.concat(got).toString()).toBe('first chunk of data ');
  });

  it('refuses changed, missing, reordered and dropped chunk signatures', async () => {
    const [s0, s1, s2, sFinal] = signed.sigs as [string, string, string, string];
    const frame = (data: Buffer, sig: string) => Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${sig}\r\n`), data, Buffer.from('\r\n')]);
    const end = Buffer.from(`0;chunk-signature=${sFinal}\r\n\r\n`);
    const cases: Array<[string, Buffer, AwsChunkedOptions]> = [
      ['flipped chunk signature', replace(signed.body, s1, s1.slice(0, 5) + (s1[5] === 'a' ? 'b' : 'a') + s1.slice(6)), signedOpts],
      ['flipped final signature', replace(signed.body, sFinal, sFinal.replace(/^./, (c) => (c === '0' ? '1' : '0'))), signedOpts],
      ['final signature replaced by a previous one', replace(signed.body, sFinal, s2), signedOpts],
      ['uppercase signature', replace(signed.body, s0, s0.toUpperCase()), signedOpts],
      ['missing chunk-signature', replace(signed.body, `;chunk-signature=${s1}`, ''), signedOpts],
      ['chunks reordered', Buffer.concat([frame(chunks[1]!, s1), frame(chunks[0]!, s0), frame(chunks[2]!, s2), end]), signedOpts],
      [
        'a chunk dropped',
        Buffer.concat([frame(chunks[0]!, s0), frame(chunks[2]!, s2), end]),
        { ...signedOpts, decodedContentLength: chunks[0]!.length + chunks[2]!.length },
      ],
      ['wrong seed', signed.body, { ...signedOpts, signing: { ...SIGNING, seedSignature: sha256('other request') } }],
      ['wrong key', signed.body, { ...signedOpts, signing: { ...SIGNING, signingKey: signingKey('other', '20250115', 'us-west-stitch') } }],
    ];
    for (const [name, body, options] of cases) expect([name, await failure(body, options)]).toEqual([name, 'SignatureDoesNotMatch']);
  });

  it('refuses a body truncated anywhere', async () => {
    for (const mode of ['streaming-signed', 'streaming-signed-trailer', 'streaming-unsigned-trailer'] as const) {
      const value = await digestOf('crc32', payload);
      const { body } = encode(mode, chunks, { signing: SIGNING, trailers: mode === 'streaming-signed' ? [] : [`x-amz-checksum-crc32:${value}`] });
      const options: AwsChunkedOptions = {
        mode,
        decodedContentLength: payload.length,
        signing: SIGNING,
        ...(mode !== 'streaming-signed' && { trailer: 'x-amz-checksum-crc32' }),
      };
      expect(await failure(body, options)).toBe('accepted');
      for (let cut = 0; cut < body.length; cut++) {
        expect([mode, cut, await failure(body.subarray(0, cut), options, cut)]).toEqual([mode, cut, 'IncompleteBody']);
      }
    }
  });

  it('refuses a body without its final chunk', async () => {
    const cut = signed.body.toString('latin1').lastIndexOf('0;chunk-signature=');
    expect(await failure(signed.body.subarray(0, cut), signedOpts)).toBe('IncompleteBody');
    const unsigned = encode('streaming-unsigned-trailer', chunks);
    const cutU = unsigned.body.toString('latin1').lastIndexOf('0\r\n');
    expect(await failure(unsigned.body.subarray(0, cutU), { mode: 'streaming-unsigned-trailer', decodedContentLength: payload.length })).toBe('IncompleteBody');
  });

  it('refuses a decoded length other than the declared one', async () => {
    expect(await failure(signed.body, { ...signedOpts, decodedContentLength: payload.length + 1 })).toBe('IncompleteBody');
    expect(await failure(signed.body, { ...signedOpts, decodedContentLength: payload.length - 1 })).toBe('InvalidRequest');
    expect(await failure(signed.body, { ...signedOpts, decodedContentLength: 0 })).toBe('InvalidRequest');
    expect(() => decodeAwsChunked(pieces(signed.body, 1), { ...signedOpts, decodedContentLength: -1 })).toThrow(S3AuthError);
  });

  it('refuses a wrong trailer checksum, signed or not', async () => {
    const wrong = await digestOf('crc32', Buffer.from('something else'));
    for (const mode of ['streaming-signed-trailer', 'streaming-unsigned-trailer'] as const) {
      const { body } = encode(mode, chunks, { signing: SIGNING, trailers: [`x-amz-checksum-crc32:${wrong}`] });
      const options: AwsChunkedOptions = { mode, decodedContentLength: payload.length, signing: SIGNING, trailer: 'x-amz-checksum-crc32' };
      expect([mode, await failure(body, options)]).toEqual([mode, 'BadDigest']);
      // A flipped payload byte in the unsigned mode is caught by the checksum alone.
      const right = encode(mode, chunks, { signing: SIGNING, trailers: [`x-amz-checksum-crc32:${await digestOf('crc32', payload)}`] });
      const flipped = replace(right.body, 'second', 'sEcond');
      expect([mode, await failure(flipped, options)]).toEqual([mode, mode === 'streaming-unsigned-trailer' ? 'BadDigest' : 'SignatureDoesNotMatch']);
    }
  });

  it('refuses trailers that were not promised, promised ones that are missing, and bad trailer signatures', async () => {
    const crc = await digestOf('crc32', payload);
    const line = `x-amz-checksum-crc32:${crc}`;
    const opts = (mode: StreamingMode, trailer?: string): AwsChunkedOptions => ({
      mode,
      decodedContentLength: payload.length,
      signing: SIGNING,
      ...(trailer !== undefined && { trailer }),
    });
    const unsigned = (trailers: string[]) => encode('streaming-unsigned-trailer', chunks, { trailers }).body;
    expect(await failure(unsigned([line]), opts('streaming-unsigned-trailer'))).toBe('InvalidRequest');
    expect(await failure(unsigned([]), opts('streaming-unsigned-trailer', 'x-amz-checksum-crc32'))).toBe('InvalidRequest');
    expect(await failure(unsigned([line, line]), opts('streaming-unsigned-trailer', 'x-amz-checksum-crc32'))).toBe('InvalidRequest');
    expect(await failure(unsigned([`x-amz-checksum-crc32:not-base64`]), opts('streaming-unsigned-trailer', 'x-amz-checksum-crc32'))).toBe('InvalidRequest');
    expect(await failure(unsigned(['x-amz-checksum-crc32 no colon']), opts('streaming-unsigned-trailer', 'x-amz-checksum-crc32'))).toBe('InvalidRequest');
    expect(await failure(unsigned([line]), opts('streaming-unsigned-trailer', 'x-amz-checksum-crc32'))).toBe('accepted');

    const signedTrailer = encode('streaming-signed-trailer', chunks, { signing: SIGNING, trailers: [line] });
    const o = opts('streaming-signed-trailer', 'x-amz-checksum-crc32');
    expect(await failure(signedTrailer.body, o)).toBe('accepted');
    const tSig = signedTrailer.sigs.at(-1)!;
    expect(await failure(replace(signedTrailer.body, `x-amz-trailer-signature:${tSig}\r\n`, ''), o)).toBe('SignatureDoesNotMatch');
    expect(await failure(replace(signedTrailer.body, tSig, sha256('x')), o)).toBe('SignatureDoesNotMatch');
    expect(await failure(replace(signedTrailer.body, `${line}\r\n`, ''), o)).toBe('SignatureDoesNotMatch');
    // A trailer on a body whose mode has none is refused.
    expect(await failure(replace(signed.body, /\r\n\r\n$/.exec(signed.body.toString('latin1'))![0], `\r\n${line}\r\n\r\n`), signedOpts)).toBe(
      'InvalidRequest',
    );
    // Only x-amz-checksum-* trailers, one of them, and only in the trailer modes.
    expect(() => decodeAwsChunked(pieces(Buffer.alloc(0), 1), opts('streaming-unsigned-trailer', 'x-amz-meta-foo'))).toThrow(S3AuthError);
    expect(() => decodeAwsChunked(pieces(Buffer.alloc(0), 1), opts('streaming-unsigned-trailer', 'x-amz-checksum-crc32,x-amz-checksum-sha1'))).toThrow(
      S3AuthError,
    );
    expect(() => decodeAwsChunked(pieces(Buffer.alloc(0), 1), opts('streaming-signed', 'x-amz-checksum-crc32'))).toThrow(S3AuthError);
  });

  it('refuses malformed framing', async () => {
    const u = (text: string, n = 5): Promise<string> =>
      failure(Buffer.from(text, 'latin1'), { mode: 'streaming-unsigned-trailer', decodedContentLength: n });
    expect(await u('5\r\nhello\r\n0\r\n\r\n')).toBe('accepted');
    expect(await u('5\nhello\r\n0\r\n\r\n')).toBe('InvalidRequest'); // bare LF
    expect(await u('x5\r\nhello\r\n0\r\n\r\n')).toBe('InvalidRequest'); // not hex
    expect(await u('\r\nhello\r\n0\r\n\r\n')).toBe('InvalidRequest'); // empty size
    expect(await u('4\r\nhello\r\n0\r\n\r\n')).toBe('InvalidRequest'); // size does not match data
    expect(await u('5\r\nhelloXX0\r\n\r\n')).toBe('InvalidRequest'); // no CRLF after data
    expect(await u('5\r\nhello\r\n0\r\n\r\nextra')).toBe('InvalidRequest'); // bytes after the end
    expect(await u('5;name=value;other\r\nhello\r\n0\r\n\r\n')).toBe('accepted'); // unknown extensions are ignored
    expect(await u('')).toBe('IncompleteBody');
  });

  it('refuses an oversize chunk header line without reading on', async () => {
    const long = `5;x-pad=${'p'.repeat(5000)}\r\nhello\r\n0\r\n\r\n`;
    expect(await failure(Buffer.from(long), { mode: 'streaming-unsigned-trailer', decodedContentLength: 5 })).toBe('InvalidRequest');
    // A 'line' that never ends: refused after about maxLineLength bytes, not after the whole body.
    let pulled = 0;
    const endless = (async function* () {
      for (;;) {
        pulled += 1024;
        yield Buffer.alloc(1024, 'f');
      }
    })();
    expect(await failure(endless, { mode: 'streaming-unsigned-trailer', decodedContentLength: 1 << 30, maxLineLength: 4096 })).toBe('InvalidRequest');
    expect(pulled).toBeLessThanOrEqual(8192);
  });

  it('refuses a signed chunk above the size limit before reading its data', async () => {
    const big = Buffer.alloc(64 * 1024, 7);
    const { body } = encode('streaming-signed', [big], { signing: SIGNING });
    const options: AwsChunkedOptions = { mode: 'streaming-signed', decodedContentLength: big.length, signing: SIGNING };
    expect(await failure(body, options)).toBe('accepted');
    let pulled = 0;
    const counting = (async function* () {
      for (let at = 0; at < body.length; at += 100) {
        pulled += 100;
        yield body.subarray(at, at + 100);
      }
    })();
    expect(await failure(counting, { ...options, maxChunkSize: 32 * 1024 })).toBe('InvalidRequest');
    expect(pulled).toBeLessThanOrEqual(200);
    // The default limit is 16 MiB: a declared 17 MiB chunk is refused from its header alone.
    const header = Buffer.from(`${(17 << 20).toString(16)};chunk-signature=${sha256('x')}\r\n`);
    expect(await failure(header, { ...options, decodedContentLength: 1 << 30 })).toBe('InvalidRequest');
  });

  it('can be read only once', async () => {
    const decoded = decodeAwsChunked(pieces(signed.body, 1), signedOpts);
    for await (const _ of decoded) void _;
    expect(() => decoded[Symbol.asyncIterator]()).toThrow();
  });
});

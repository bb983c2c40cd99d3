import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { S3RequestPresigner } from '@aws-sdk/s3-request-presigner';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { staticCredentials } from '../../src/s3/auth/credentials.ts';
import {
  buildCanonicalRequest,
  canonicalHeaderValue,
  canonicalQueryString,
  canonicalUri,
  deriveSigningKey,
  EMPTY_SHA256,
  parseQuery,
  requestHasAuth,
  S3AuthError,
  sha256Hex,
  signaturesEqual,
  verifySigV4,
  type Headers,
  type SigV4Request,
} from '../../src/s3/auth/sigv4.ts';

// AWS's documented example credentials and time (S3 API reference, "Signature Calculations for the
// Authorization Header", "... Query Parameters" and "... Chunked Upload").
const AKID = 'AKIAIOSFODNN7EXAMPLE';
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const EXAMPLE_NOW = Date.UTC(2013, 4, 24, 0, 0, 0);
const EXAMPLE_CRED = `${AKID}/20130524/us-east-1/s3/aws4_request`;
const store = staticCredentials({ [AKID]: SECRET });

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3AuthError) return err.code;
    throw err;
  }
  return 'accepted';
}

function authHeader(signedHeaders: string, signature: string, credential = EXAMPLE_CRED): string {
  return `AWS4-HMAC-SHA256 Credential=${credential},SignedHeaders=${signedHeaders},Signature=${signature}`;
}

// Replace one hex digit, so a signature differs in exactly one place.
function flipHex(sig: string, at = 10): string {
  return sig.slice(0, at) + (sig[at] === '0' ? '1' : '0') + sig.slice(at + 1);
}

interface Example {
  name: string;
  req: SigV4Request;
  signature: string;
  signedHeaders: string;
}

const HOST = 'examplebucket.s3.amazonaws.com';
const headerExamples: Example[] = [
  {
    name: 'GET Object (range)',
    req: {
      method: 'GET',
      path: '/test.txt',
      query: [],
      headers: { host: HOST, range: 'bytes=0-9', 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': '20130524T000000Z' },
    },
    signedHeaders: 'host;range;x-amz-content-sha256;x-amz-date',
    signature: 'f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  },
  {
    name: 'PUT Object',
    req: {
      method: 'PUT',
      path: '/test%24file.text',
      query: [],
      headers: {
        host: HOST,
        date: 'Fri, 24 May 2013 00:00:00 GMT',
        'x-amz-date': '20130524T000000Z',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
      },
    },
    signedHeaders: 'date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class',
    signature: '98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
  },
  {
    name: 'GET Bucket Lifecycle',
    req: {
      method: 'GET',
      path: '/',
      query: parseQuery('lifecycle'),
      headers: { host: HOST, 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': '20130524T000000Z' },
    },
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: 'fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
  },
  {
    name: 'GET Bucket (List Objects)',
    req: {
      method: 'GET',
      path: '/',
      query: parseQuery('max-keys=2&prefix=J'),
      headers: { host: HOST, 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-date': '20130524T000000Z' },
    },
    signedHeaders: 'host;x-amz-content-sha256;x-amz-date',
    signature: '34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
  },
];

function withAuth(e: Example, signature = e.signature): SigV4Request {
  return { ...e.req, headers: { ...e.req.headers, authorization: authHeader(e.signedHeaders, signature) } };
}

const PRESIGNED_EXAMPLE =
  'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request' +
  '&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host' +
  '&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';

describe('AWS published SigV4 examples', () => {
  for (const e of headerExamples) {
    it(`accepts ${e.name} and refuses it with one signature digit changed`, () => {
      const auth = verifySigV4(withAuth(e), store, { now: EXAMPLE_NOW });
      expect(auth.accessKeyId).toBe(AKID);
      expect(auth.scope).toBe('20130524/us-east-1/s3/aws4_request');
      expect(auth.amzDate).toBe('20130524T000000Z');
      expect(auth.region).toBe('us-east-1');
      expect(auth.seedSignature).toBe(e.signature);
      expect(auth.presigned).toBe(false);
      expect(auth.payloadMode).toEqual({ kind: 'sha256', hex: e.req.headers['x-amz-content-sha256'] });
      expect(auth.signingKey.equals(deriveSigningKey(SECRET, '20130524', 'us-east-1', 's3'))).toBe(true);
      expect(codeOf(() => verifySigV4(withAuth(e, flipHex(e.signature)), store, { now: EXAMPLE_NOW }))).toBe('SignatureDoesNotMatch');
    });
  }

  it('builds the documented canonical request for GET Object', () => {
    const e = headerExamples[0]!;
    const canonical = buildCanonicalRequest(e.req, [], e.signedHeaders.split(';'), EMPTY_SHA256);
    expect(canonical).toBe(
      [
        'GET',
        '/test.txt',
        '',
        'host:examplebucket.s3.amazonaws.com',
        'range:bytes=0-9',
        `x-amz-content-sha256:${EMPTY_SHA256}`,
        'x-amz-date:20130524T000000Z',
        '',
        'host;range;x-amz-content-sha256;x-amz-date',
        EMPTY_SHA256,
      ].join('\n'),
    );
    expect(sha256Hex(canonical)).toBe('7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972');
  });

  it('accepts the presigned URL example within its day and refuses it after', () => {
    const req = { method: 'GET', path: '/test.txt', query: parseQuery(PRESIGNED_EXAMPLE), headers: { host: HOST } };
    const auth = verifySigV4(req, store, { now: EXAMPLE_NOW + 3600_000 });
    expect(auth.presigned).toBe(true);
    expect(auth.payloadMode).toEqual({ kind: 'unsigned' });
    expect(auth.seedSignature).toBe('aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404');
    expect(codeOf(() => verifySigV4(req, store, { now: EXAMPLE_NOW + 86400_000 }))).toBe('accepted');
    expect(codeOf(() => verifySigV4(req, store, { now: EXAMPLE_NOW + 86401_000 }))).toBe('AccessDenied');
    const otherKey = { ...req, path: '/test2.txt' };
    expect(codeOf(() => verifySigV4(otherKey, store, { now: EXAMPLE_NOW }))).toBe('SignatureDoesNotMatch');
  });

  it('accepts the seed signatures of both chunked-upload examples', () => {
    const base = {
      'content-encoding': 'aws-chunked',
      host: 's3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-decoded-content-length': '66560',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
    };
    const signed = verifySigV4(
      {
        method: 'PUT',
        path: '/examplebucket/chunkObject.txt',
        query: [],
        headers: {
          ...base,
          'content-length': '66824',
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          authorization: authHeader(
            'content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class',
            '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
          ),
        },
      },
      store,
      { now: EXAMPLE_NOW },
    );
    expect(signed.payloadMode).toEqual({ kind: 'streaming-signed' });
    expect(signed.seedSignature).toBe('4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9');

    const trailer = verifySigV4(
      {
        method: 'PUT',
        path: '/examplebucket/chunkObject.txt',
        query: [],
        headers: {
          ...base,
          'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER',
          'x-amz-trailer': 'x-amz-checksum-crc32c',
          authorization: authHeader(
            'content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer',
            '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e',
          ),
        },
      },
      store,
      { now: EXAMPLE_NOW },
    );
    expect(trailer.payloadMode).toEqual({ kind: 'streaming-signed-trailer' });
  });
});

describe('canonicalization', () => {
  it('encodes each path segment exactly once, from the bytes sent', () => {
    expect(canonicalUri('')).toBe('/');
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('/photos/My%20Photo.jpg')).toBe('/photos/My%20Photo.jpg');
    expect(canonicalUri('/a+b')).toBe('/a%2Bb'); // '+' in a path is a literal plus
    expect(canonicalUri('/x%2Fy/z')).toBe('/x%2Fy/z'); // an encoded slash stays part of its segment
    expect(canonicalUri('/t%c3%a9')).toBe('/t%C3%A9');
    expect(canonicalUri('/ü')).toBe('/%C3%BC');
    expect(canonicalUri("/!'()*$@=,;:")).toBe('/%21%27%28%29%2A%24%40%3D%2C%3B%3A');
    expect(canonicalUri('/~a-b_c.d')).toBe('/~a-b_c.d');
    expect(canonicalUri('/a//b/./c/../d')).toBe('/a//b/./c/../d'); // S3 does not normalize
    expect(codeOf(() => canonicalUri('/bad%zzescape'))).toBe('InvalidURI');
    expect(codeOf(() => canonicalUri('/truncated%4'))).toBe('InvalidURI');
  });

  it('sorts the query by encoded name then value and writes bare names as name=', () => {
    expect(canonicalQueryString([])).toBe('');
    expect(canonicalQueryString([['prefix', 'J'], ['max-keys', '2']])).toBe('max-keys=2&prefix=J');
    expect(canonicalQueryString([['acl', '']])).toBe('acl=');
    expect(canonicalQueryString([['b', '2'], ['a', 'z'], ['a', 'y']])).toBe('a=y&a=z&b=2');
    expect(canonicalQueryString([['prefix', 'a b/ü*~']])).toBe('prefix=a%20b%2F%C3%BC%2A~');
    // Sorting happens on the encoded form: 'A' (0x41) < '_' < 'a', and '%' sorts before letters.
    expect(canonicalQueryString([['a', '1'], ['_', '1'], ['A', '1'], ['$', '1']])).toBe('%24=1&A=1&_=1&a=1');
  });

  it('parses raw query strings the way S3 reads them', () => {
    expect(parseQuery('')).toEqual([]);
    expect(parseQuery('acl')).toEqual([['acl', '']]);
    expect(parseQuery('a=1=2&b=')).toEqual([['a', '1=2'], ['b', '']]);
    expect(parseQuery('p=a+b%2Bc%20d')).toEqual([['p', 'a b+c d']]);
    expect(parseQuery('k=%C3%BC&&x')).toEqual([['k', 'ü'], ['x', '']]);
  });

  it('trims header values, collapses inner whitespace and joins repeats with commas', () => {
    expect(canonicalHeaderValue('  a   b\t c  ')).toBe('a b c');
    expect(canonicalHeaderValue(['x  y', ' z '])).toBe('x y,z');
    expect(canonicalHeaderValue(undefined)).toBe('');
  });

  it('compares signatures by value', () => {
    const s = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
    expect(signaturesEqual(s, s.slice())).toBe(true);
    expect(signaturesEqual(s, flipHex(s, 63))).toBe(false);
    expect(signaturesEqual(s, s.slice(0, 63))).toBe(false);
    expect(signaturesEqual(s, '')).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// Round trips against AWS's own signers.

type SourceData = string | ArrayBuffer | ArrayBufferView;
function bytes(data: SourceData): Buffer {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(data);
}

// The smithy signer takes its hash from outside; node:crypto is what the gateway uses too, but the
// canonicalization under test is entirely the signer's own.
class NodeSha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

interface SdkRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string | string[] | null>;
  headers: Record<string, string>;
  body?: unknown;
}

// What the gateway would see on the wire: the SDK's path as is, its query serialized as the SDK's
// HTTP handler does, header names lowercased.
function escape(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}
function onWire(r: SdkRequest): SigV4Request {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(r.query ?? {})) {
    if (v === null) parts.push(escape(k));
    else for (const one of Array.isArray(v) ? v : [v]) parts.push(`${escape(k)}=${escape(one)}`);
  }
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) headers[k.toLowerCase()] = v;
  return { method: r.method, path: r.path, query: parseQuery(parts.join('&')), headers };
}

const KEY = 'AKIDSTITCHTEST';
const KEY_SECRET = 'sEcReT/with+odd=chars';
const gwStore = staticCredentials({ [KEY]: KEY_SECRET });
const SIGNED_AT = new Date(Date.UTC(2025, 0, 15, 12, 0, 0));
const AT = SIGNED_AT.getTime();

function signer(opts: { service?: string; region?: string; secret?: string } = {}): SignatureV4 {
  return new SignatureV4({
    service: opts.service ?? 's3',
    region: opts.region ?? 'us-west-stitch',
    credentials: { accessKeyId: KEY, secretAccessKey: opts.secret ?? KEY_SECRET },
    sha256: NodeSha256,
    uriEscapePath: false, // S3: the path is signed as sent, already encoded once
    applyChecksum: true,
  });
}

function baseRequest(): SdkRequest {
  return {
    method: 'GET',
    protocol: 'http:',
    hostname: 'gw.example',
    port: 9000,
    path: '/bucket/dir/a%20b%2Bc%C3%BC.txt',
    query: { 'list-type': '2', prefix: 'a b/ü*', delimiter: '/', versions: '' },
    headers: { host: 'gw.example:9000', 'x-amz-meta-color': 'blue', 'content-type': 'text/plain', 'x-amz-content-sha256': EMPTY_SHA256 },
  };
}

async function signed(req = baseRequest(), s = signer()): Promise<SigV4Request> {
  return onWire((await s.sign(req as never, { signingDate: SIGNED_AT })) as unknown as SdkRequest);
}

function tamper(r: SigV4Request, change: Partial<SigV4Request> & { setHeaders?: Headers }): SigV4Request {
  return { ...r, ...change, headers: { ...r.headers, ...change.headers, ...change.setHeaders } };
}

describe('round trips with @smithy/signature-v4 (header auth)', () => {
  it('accepts what the signer produced, with any region', async () => {
    for (const region of ['us-west-stitch', 'eu-central-1', 'local']) {
      const req = await signed(baseRequest(), signer({ region }));
      const auth = verifySigV4(req, gwStore, { now: AT + 1000 });
      expect(auth.accessKeyId).toBe(KEY);
      expect(auth.region).toBe(region);
      expect(auth.scope).toBe(`20250115/${region}/s3/aws4_request`);
      expect(auth.amzDate).toBe('20250115T120000Z');
      expect(auth.payloadMode).toEqual({ kind: 'sha256', hex: EMPTY_SHA256 });
      expect(auth.seedSignature).toBe(/Signature=([0-9a-f]{64})/.exec(req.headers['authorization'] as string)![1]);
      expect(auth.signedHeaders).toContain('x-amz-meta-color');
    }
  });

  it('refuses every tampering', async () => {
    const req = await signed();
    const now = { now: AT };
    expect(codeOf(() => verifySigV4(req, gwStore, now))).toBe('accepted');
    const cases: Array<[string, SigV4Request]> = [
      ['changed signed header', tamper(req, { setHeaders: { 'x-amz-meta-color': 'red' } })],
      ['changed host', tamper(req, { setHeaders: { host: 'evil.example:9000' } })],
      ['changed path', tamper(req, { path: '/bucket/dir/a%20b%2Bc%C3%BC.tx' })],
      ['path with a different encoding of a slash', tamper(req, { path: '/bucket/dir%2Fa%20b%2Bc%C3%BC.txt' })],
      ['changed method', tamper(req, { method: 'DELETE' })],
      ['changed query value', tamper(req, { query: req.query.map(([k, v]) => [k, k === 'prefix' ? 'a b/' : v] as const) })],
      ['added query param', tamper(req, { query: [...req.query, ['max-keys', '1']] })],
      ['removed query param', tamper(req, { query: req.query.filter(([k]) => k !== 'delimiter') })],
      ['changed payload hash', tamper(req, { setHeaders: { 'x-amz-content-sha256': sha256Hex('x') } })],
    ];
    for (const [name, bad] of cases) expect([name, codeOf(() => verifySigV4(bad, gwStore, now))]).toEqual([name, 'SignatureDoesNotMatch']);
  });

  it('refuses a wrong secret, an unknown key and another service', async () => {
    expect(codeOf(() => verifySigV4({ method: 'GET', path: '/', query: [], headers: { host: 'h' } }, gwStore))).toBe('AccessDenied');
    const wrongSecret = await signed(baseRequest(), signer({ secret: 'not-the-secret' }));
    expect(codeOf(() => verifySigV4(wrongSecret, gwStore, { now: AT }))).toBe('SignatureDoesNotMatch');
    const req = await signed();
    expect(codeOf(() => verifySigV4(req, staticCredentials({ OTHER: KEY_SECRET }), { now: AT }))).toBe('InvalidAccessKeyId');
    const iam = await signed(baseRequest(), signer({ service: 'iam' }));
    expect(codeOf(() => verifySigV4(iam, gwStore, { now: AT }))).toBe('AuthorizationHeaderMalformed');
  });

  it('refuses a clock skewed more than 15 minutes either way, with its own error', async () => {
    const req = await signed();
    expect(codeOf(() => verifySigV4(req, gwStore, { now: AT + 14 * 60_000 }))).toBe('accepted');
    expect(codeOf(() => verifySigV4(req, gwStore, { now: AT - 14 * 60_000 }))).toBe('accepted');
    expect(codeOf(() => verifySigV4(req, gwStore, { now: AT + 16 * 60_000 }))).toBe('RequestTimeTooSkewed');
    expect(codeOf(() => verifySigV4(req, gwStore, { now: new Date(AT - 16 * 60_000) }))).toBe('RequestTimeTooSkewed');
    try {
      verifySigV4(req, gwStore, { now: AT + 3600_000 });
    } catch (err) {
      expect((err as S3AuthError).status).toBe(403);
      expect((err as S3AuthError).details['RequestTime']).toBe('20250115T120000Z');
    }
  });

  it('refuses x-amz-* headers that were not signed', async () => {
    const req = await signed();
    const extra = tamper(req, { setHeaders: { 'x-amz-copy-source': '/other/secret' } });
    expect(codeOf(() => verifySigV4(extra, gwStore, { now: AT }))).toBe('AccessDenied');
    // Other unsigned headers (proxies add them) are fine.
    const proxied = tamper(req, { setHeaders: { 'x-forwarded-for': '10.0.0.1', 'user-agent': 'curl' } });
    expect(codeOf(() => verifySigV4(proxied, gwStore, { now: AT }))).toBe('accepted');
  });

  it('recognizes every payload mode and refuses unknown ones', async () => {
    const modes: Array<[string, unknown]> = [
      ['UNSIGNED-PAYLOAD', { kind: 'unsigned' }],
      ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD', { kind: 'streaming-signed' }],
      ['STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', { kind: 'streaming-signed-trailer' }],
      ['STREAMING-UNSIGNED-PAYLOAD-TRAILER', { kind: 'streaming-unsigned-trailer' }],
      [sha256Hex('abc').toUpperCase(), { kind: 'sha256', hex: sha256Hex('abc') }],
    ];
    for (const [value, mode] of modes) {
      const r = baseRequest();
      r.method = 'PUT';
      r.headers['x-amz-content-sha256'] = value;
      expect(verifySigV4(await signed(r), gwStore, { now: AT }).payloadMode).toEqual(mode);
    }
    for (const [value, code] of [
      ['STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD', 'InvalidRequest'],
      ['sha256-of-nothing', 'InvalidArgument'],
    ]) {
      const r = baseRequest();
      r.headers['x-amz-content-sha256'] = value!;
      const s = await signed(r);
      expect(codeOf(() => verifySigV4(s, gwStore, { now: AT }))).toBe(code);
    }
  });

  it('refuses malformed Authorization headers', async () => {
    const req = await signed();
    const auth = req.headers['authorization'] as string;
    const sig = /Signature=([0-9a-f]{64})/.exec(auth)![1]!;
    const cred = `${KEY}/20250115/us-west-stitch/s3/aws4_request`;
    const sh = /SignedHeaders=([^,]+)/.exec(auth)![1]!;
    const variants: Array<[string, string]> = [
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh}, Signature=${sig}, Extra=1`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh}, Signature=${sig}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${KEY}/20250115/us-west-stitch/s3, SignedHeaders=${sh}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${KEY}/20250116/us-west-stitch/s3/aws4_request, SignedHeaders=${sh}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${KEY}/20250115/us-west-stitch/s3/aws5_request, SignedHeaders=${sh}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh.split(';').reverse().join(';')}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh.replace('host;', '')}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh.replace('host', 'Host')}, Signature=${sig}`, 'AuthorizationHeaderMalformed'],
      [`AWS4-HMAC-SHA256 Credential=${cred},SignedHeaders=${sh},Signature=${sig}`, 'accepted'],
      [`AWS4-HMAC-SHA256 Credential=${cred}, SignedHeaders=${sh}, Signature=${sig.toUpperCase()}`, 'SignatureDoesNotMatch'],
      [`AWS ${KEY}:c2lnbmF0dXJl`, 'InvalidRequest'],
      [`AWS4-ECDSA-P256-SHA256 Credential=${cred}, SignedHeaders=${sh}, Signature=${sig}`, 'InvalidRequest'],
    ];
    for (const [header, code] of variants) {
      expect([header, codeOf(() => verifySigV4(tamper(req, { setHeaders: { authorization: header } }), gwStore, { now: AT }))]).toEqual([
        header,
        code,
      ]);
    }
  });

  it('needs a valid date and the payload hash header', async () => {
    const req = await signed();
    const noDate = tamper(req, {});
    delete (noDate.headers as Record<string, unknown>)['x-amz-date'];
    expect(codeOf(() => verifySigV4(noDate, gwStore, { now: AT }))).toBe('AccessDenied');
    expect(codeOf(() => verifySigV4(tamper(req, { setHeaders: { 'x-amz-date': '2025-01-15T12:00:00Z' } }), gwStore, { now: AT }))).toBe('AccessDenied');
    expect(codeOf(() => verifySigV4(tamper(req, { setHeaders: { 'x-amz-date': '20250231T120000Z' } }), gwStore, { now: AT }))).toBe('AccessDenied');
    const noSha = tamper(req, {});
    delete (noSha.headers as Record<string, unknown>)['x-amz-content-sha256'];
    expect(codeOf(() => verifySigV4(noSha, gwStore, { now: AT }))).toBe('InvalidRequest');
  });

  it('takes the time from the Date header when there is no x-amz-date', () => {
    // Signed by hand (the SDK always sends x-amz-date): the string to sign carries the Date
    // header's instant in the ISO 8601 basic format.
    const headers: Record<string, string> = { host: 'gw.example', date: 'Wed, 15 Jan 2025 12:00:00 GMT', 'x-amz-content-sha256': EMPTY_SHA256 };
    const canonical = `GET\n/b/k\n\ndate:${headers['date']}\nhost:gw.example\nx-amz-content-sha256:${EMPTY_SHA256}\n\ndate;host;x-amz-content-sha256\n${EMPTY_SHA256}`;
    const scope = '20250115/any/s3/aws4_request';
    const key = ['20250115', 'any', 's3', 'aws4_request'].reduce<Buffer>(
      (k, part) => createHmac('sha256', k).update(part).digest(),
      Buffer.from('AWS4' + KEY_SECRET),
    );
    const sts = `AWS4-HMAC-SHA256\n20250115T120000Z\n${scope}\n${createHash('sha256').update(canonical).digest('hex')}`;
    const sig = createHmac('sha256', key).update(sts).digest('hex');
    headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${KEY}/${scope}, SignedHeaders=date;host;x-amz-content-sha256, Signature=${sig}`;
    const req = { method: 'GET', path: '/b/k', query: [], headers };
    const auth = verifySigV4(req, gwStore, { now: AT });
    expect(auth.amzDate).toBe('20250115T120000Z');
    expect(codeOf(() => verifySigV4(req, gwStore, { now: AT + 20 * 60_000 }))).toBe('RequestTimeTooSkewed');
  });
});

describe('header bytes as node:http delivers them', () => {
  it('accepts UTF-8 header values signed over their bytes (as boto3 sends x-amz-meta-*)', () => {
    const value = 'Grüße, 東京 €';
    const canonical =
      `PUT\n/b/k\n\nhost:gw.example\nx-amz-content-sha256:UNSIGNED-PAYLOAD\nx-amz-date:20250115T120000Z\nx-amz-meta-note:${value}\n\n` +
      'host;x-amz-content-sha256;x-amz-date;x-amz-meta-note\nUNSIGNED-PAYLOAD';
    const scope = '20250115/r/s3/aws4_request';
    const key = ['20250115', 'r', 's3', 'aws4_request'].reduce<Buffer>((k, part) => createHmac('sha256', k).update(part).digest(), Buffer.from('AWS4' + KEY_SECRET));
    const sts = `AWS4-HMAC-SHA256\n20250115T120000Z\n${scope}\n${createHash('sha256').update(canonical, 'utf8').digest('hex')}`;
    const sig = createHmac('sha256', key).update(sts).digest('hex');
    const headers = {
      host: 'gw.example',
      'x-amz-content-sha256': 'UNSIGNED-PAYLOAD',
      'x-amz-date': '20250115T120000Z',
      // node:http decodes each received byte as one latin1 char.
      'x-amz-meta-note': Buffer.from(value, 'utf8').toString('latin1'),
      authorization: `AWS4-HMAC-SHA256 Credential=${KEY}/${scope}, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-note, Signature=${sig}`,
    };
    const req = { method: 'PUT', path: '/b/k', query: [], headers };
    expect(verifySigV4(req, gwStore, { now: AT }).payloadMode).toEqual({ kind: 'unsigned' });
    // The same text given as a real Unicode string (not off the wire) is hashed as UTF-8 too.
    expect(codeOf(() => verifySigV4({ ...req, headers: { ...headers, 'x-amz-meta-note': value } }, gwStore, { now: AT }))).toBe('accepted');
    const other = Buffer.from('Grüsse, 東京 €', 'utf8').toString('latin1');
    expect(codeOf(() => verifySigV4({ ...req, headers: { ...headers, 'x-amz-meta-note': other } }, gwStore, { now: AT }))).toBe('SignatureDoesNotMatch');
  });
});

describe('round trips with presigned URLs', () => {
  // 's3' is the SDK's S3 presigner; the plain smithy signer needs UNSIGNED-PAYLOAD set by hand
  // (S3's rule for presigned URLs), which it then hoists into the query or, if told, keeps as a
  // signed header the client must send.
  type Presigner = 's3' | 'smithy-hoisted' | 'smithy-header';
  async function presigned(
    expiresIn = 3600,
    opts: { service?: string; presigner?: Presigner } = {},
  ): Promise<SigV4Request> {
    const req = { ...baseRequest(), headers: { host: 'gw.example:9000' } as Record<string, string> };
    if (opts.presigner === 's3') {
      const p = new S3RequestPresigner({
        service: 's3',
        region: 'us-west-stitch',
        credentials: { accessKeyId: KEY, secretAccessKey: KEY_SECRET },
        sha256: NodeSha256,
      });
      return onWire((await p.presign(req as never, { signingDate: SIGNED_AT, expiresIn })) as unknown as SdkRequest);
    }
    req.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
    const unhoistableHeaders = new Set(opts.presigner === 'smithy-header' ? ['x-amz-content-sha256'] : []);
    const out = await signer(opts).presign(req as never, { signingDate: SIGNED_AT, expiresIn, unhoistableHeaders });
    return onWire(out as unknown as SdkRequest);
  }

  it('accepts URLs from the presigners until they expire', async () => {
    for (const presigner of ['s3', 'smithy-hoisted', 'smithy-header'] as const) {
      const req = await presigned(600, { presigner });
      const auth = verifySigV4(req, gwStore, { now: AT + 1000 });
      expect(auth.presigned).toBe(true);
      expect(auth.payloadMode).toEqual({ kind: 'unsigned' });
      expect(auth.accessKeyId).toBe(KEY);
      expect(codeOf(() => verifySigV4(req, gwStore, { now: AT + 600_000 }))).toBe('accepted');
      expect(codeOf(() => verifySigV4(req, gwStore, { now: AT + 600_001 }))).toBe('AccessDenied');
      // Presigned URLs are used long after signing: no skew rule on the past, only expiry.
      const week = await presigned(7 * 86400, { presigner });
      expect(codeOf(() => verifySigV4(week, gwStore, { now: AT + 6 * 86400_000 }))).toBe('accepted');
    }
    // The S3 presigner binds UNSIGNED-PAYLOAD in the query.
    const s3req = await presigned(600, { presigner: 's3' });
    expect(s3req.query).toContainEqual(['X-Amz-Content-Sha256', 'UNSIGNED-PAYLOAD']);
    // Kept as a header, it is signed: changing it breaks the signature.
    const inHeader = await presigned(600, { presigner: 'smithy-header' });
    expect(inHeader.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    const changed = tamper(inHeader, { setHeaders: { 'x-amz-content-sha256': EMPTY_SHA256 } });
    expect(codeOf(() => verifySigV4(changed, gwStore, { now: AT }))).toBe('SignatureDoesNotMatch');
  });

  it('refuses tampered, future-dated, over-long and malformed URLs', async () => {
    const req = await presigned(3600, { presigner: 's3' });
    const set = (name: string, value: string) => ({ ...req, query: req.query.map(([k, v]) => [k, k === name ? value : v] as const) });
    const drop = (name: string) => ({ ...req, query: req.query.filter(([k]) => k !== name) });
    const at = { now: AT };
    expect(codeOf(() => verifySigV4(req, gwStore, at))).toBe('accepted');
    expect(codeOf(() => verifySigV4({ ...req, path: '/bucket/other' }, gwStore, at))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4({ ...req, headers: { host: 'evil:9000' } }, gwStore, at))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4({ ...req, method: 'PUT' }, gwStore, at))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4(set('prefix', 'x'), gwStore, at))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4({ ...req, query: [...req.query, ['max-keys', '5']] }, gwStore, at))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4(set('X-Amz-Expires', '7200'), gwStore, at))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4(set('X-Amz-Expires', '604801'), gwStore, at))).toBe('AuthorizationQueryParametersError');
    expect(codeOf(() => verifySigV4(set('X-Amz-Expires', '-1'), gwStore, at))).toBe('AuthorizationQueryParametersError');
    expect(codeOf(() => verifySigV4(set('X-Amz-Algorithm', 'AWS4-HMAC-SHA1'), gwStore, at))).toBe('AuthorizationQueryParametersError');
    expect(codeOf(() => verifySigV4(set('X-Amz-Date', '20250115T1200Z'), gwStore, at))).toBe('AuthorizationQueryParametersError');
    expect(codeOf(() => verifySigV4(set('X-Amz-Content-Sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'), gwStore, at))).toBe('InvalidRequest');
    for (const name of ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature']) {
      expect([name, codeOf(() => verifySigV4(drop(name), gwStore, at))]).toEqual([name, 'AuthorizationQueryParametersError']);
    }
    expect(codeOf(() => verifySigV4(req, gwStore, { now: AT - 20 * 60_000 }))).toBe('AccessDenied');
    expect(codeOf(() => verifySigV4(req, staticCredentials({}), at))).toBe('InvalidAccessKeyId');
    const iam = await presigned(3600, { service: 'iam' });
    expect(codeOf(() => verifySigV4(iam, gwStore, at))).toBe('AuthorizationQueryParametersError');
    const both = { ...req, headers: { ...req.headers, authorization: 'AWS4-HMAC-SHA256 Credential=x' } };
    expect(codeOf(() => verifySigV4(both, gwStore, at))).toBe('InvalidArgument');
    const v2 = { ...req, query: parseQuery('AWSAccessKeyId=AKID&Expires=1700000000&Signature=abc%3D') };
    expect(codeOf(() => verifySigV4(v2, gwStore, at))).toBe('InvalidRequest');
  });
});

describe('requestHasAuth', () => {
  it('tells anonymous requests from signed ones, even broken signed ones', () => {
    expect(requestHasAuth({ host: 'h' }, [])).toBe(false);
    expect(requestHasAuth({ host: 'h' }, parseQuery('prefix=a&list-type=2'))).toBe(false);
    expect(requestHasAuth({ host: 'h', authorization: 'garbage' }, [])).toBe(true);
    expect(requestHasAuth({ host: 'h' }, parseQuery(PRESIGNED_EXAMPLE))).toBe(true);
    expect(requestHasAuth({ host: 'h' }, parseQuery('X-Amz-Signature=00'))).toBe(true);
    expect(requestHasAuth({ host: 'h' }, parseQuery('AWSAccessKeyId=A&Signature=s&Expires=1'))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// The real client: what @aws-sdk/client-s3 actually sends, captured instead of transmitted.

function capturingClient(region = 'segment-a'): { client: S3Client; sent: SdkRequest[] } {
  const sent: SdkRequest[] = [];
  const client = new S3Client({
    region,
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    credentials: { accessKeyId: KEY, secretAccessKey: KEY_SECRET },
    requestHandler: {
      handle: async (request: SdkRequest) => {
        sent.push(request);
        return { response: { statusCode: 200, headers: {}, body: Readable.from([]) } };
      },
    } as never,
  });
  return { client, sent };
}

describe('requests from @aws-sdk/client-s3', () => {
  it('verifies GetObject, ListObjectsV2 and PutObject as the SDK signs them', async () => {
    const { client, sent } = capturingClient();
    await client.send(new GetObjectCommand({ Bucket: 'photos', Key: 'y/2024 summer/ü+#?.jpg', Range: 'bytes=0-99' }));
    await client.send(new ListObjectsV2Command({ Bucket: 'photos', Prefix: "a b/ü*'()!", Delimiter: '/', MaxKeys: 7 }));
    await client.send(new PutObjectCommand({ Bucket: 'photos', Key: 'k=v&x', Body: Buffer.from('hello'), Metadata: { owner: 'me' } }));
    expect(sent).toHaveLength(3);
    const [get, list, put] = sent.map(onWire) as [SigV4Request, SigV4Request, SigV4Request];
    const now = { now: Date.now() };
    expect(verifySigV4(get, gwStore, now).payloadMode).toEqual({ kind: 'sha256', hex: EMPTY_SHA256 });
    expect(verifySigV4(list, gwStore, now).region).toBe('segment-a');
    expect(list.query).toContainEqual(['prefix', "a b/ü*'()!"]);
    expect(verifySigV4(put, gwStore, now).payloadMode).toEqual({ kind: 'sha256', hex: sha256Hex('hello') });
    expect(codeOf(() => verifySigV4(tamper(put, { setHeaders: { 'x-amz-meta-owner': 'you' } }), gwStore, now))).toBe('SignatureDoesNotMatch');
    expect(codeOf(() => verifySigV4(tamper(get, { setHeaders: { range: 'bytes=0-' } }), gwStore, now))).toBe('SignatureDoesNotMatch');
  });
});

import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { CredentialStore } from './credentials.ts';
import { S3AuthError } from './errors.ts';

export { S3AuthError, isS3AuthError, type S3AuthErrorCode } from './errors.ts';

// AWS Signature Version 4 verification for S3, header and presigned-URL forms. Pure: the caller
// hands over the request line and headers and the current time; nothing here does I/O.

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;
export const MAX_PRESIGNED_EXPIRES_S = 7 * 24 * 3600;

export type HeaderValue = string | readonly string[] | undefined;
// Lowercase names and latin1 values, as node:http gives them. Pass `req.headersDistinct` as is:
// repeated headers are then canonicalized as AWS says, values joined by ','. (`req.headers` works
// too, but node joins some repeats with ', ', which no client signed.)
export type Headers = Readonly<Record<string, HeaderValue>>;
export type QueryPairs = ReadonlyArray<readonly [string, string]>;

export interface SigV4Request {
  method: string;
  // The path exactly as on the request line (before '?'), still percent-encoded: the canonical URI
  // is computed from the bytes the client sent, so '%2F' and '/' stay distinct.
  path: string;
  // Decoded (name, value) pairs in wire order, e.g. from parseQuery(); a bare `?acl` is ['acl', ''].
  query: QueryPairs;
  headers: Headers;
}

export type PayloadMode =
  | { kind: 'sha256'; hex: string }
  | { kind: 'unsigned' }
  | { kind: 'streaming-signed' }
  | { kind: 'streaming-signed-trailer' }
  | { kind: 'streaming-unsigned-trailer' };

export interface SigV4Auth {
  accessKeyId: string;
  payloadMode: PayloadMode;
  // The request's own signature: the first link of the aws-chunked signature chain.
  seedSignature: string;
  signingKey: Buffer;
  scope: string; // date/region/s3/aws4_request
  amzDate: string; // YYYYMMDDTHHMMSSZ, as signed
  region: string;
  presigned: boolean;
  signedHeaders: readonly string[];
}

export interface VerifyOptions {
  now?: number | Date;
  maxSkewMs?: number;
}

const STREAMING_MODES: Record<string, PayloadMode> = {
  'UNSIGNED-PAYLOAD': { kind: 'unsigned' },
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD': { kind: 'streaming-signed' },
  'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER': { kind: 'streaming-signed-trailer' },
  'STREAMING-UNSIGNED-PAYLOAD-TRAILER': { kind: 'streaming-unsigned-trailer' },
};

// Query parameters that make a request a (possibly unsupported) signed one rather than anonymous.
const QUERY_AUTH_MARKERS = ['x-amz-algorithm', 'x-amz-credential', 'x-amz-signature', 'awsaccesskeyid', 'signature'];

// True when the request carries any credentials, good or bad. A request with none may be served as
// anonymous (public-read buckets); one with broken credentials must be refused, never downgraded.
export function requestHasAuth(headers: Headers, query: QueryPairs): boolean {
  if (headers['authorization'] !== undefined) return true;
  return query.some(([k]) => QUERY_AUTH_MARKERS.includes(k.toLowerCase()));
}

export function verifySigV4(req: SigV4Request, credentials: CredentialStore, options: VerifyOptions = {}): SigV4Auth {
  const now = options.now === undefined ? Date.now() : +options.now;
  const maxSkewMs = options.maxSkewMs ?? MAX_CLOCK_SKEW_MS;
  const authorization = headerValue(req.headers, 'authorization');
  const inQuery = req.query.some(([k]) => k === 'X-Amz-Algorithm' || k === 'X-Amz-Credential' || k === 'X-Amz-Signature');
  if (authorization !== undefined && inQuery) {
    throw new S3AuthError('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified');
  }
  if (authorization !== undefined) return verifyHeaderAuth(req, authorization, credentials, now, maxSkewMs);
  if (inQuery) return verifyQueryAuth(req, credentials, now, maxSkewMs);
  if (req.query.some(([k]) => k === 'AWSAccessKeyId' || k === 'Signature')) {
    throw new S3AuthError('InvalidRequest', 'Signature Version 2 is not supported; use AWS4-HMAC-SHA256');
  }
  throw new S3AuthError('AccessDenied', 'Access Denied: the request is not signed');
}

// ---------------------------------------------------------------------------------------------
// Header form: Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...

function verifyHeaderAuth(
  req: SigV4Request,
  authorization: string,
  credentials: CredentialStore,
  now: number,
  maxSkewMs: number,
): SigV4Auth {
  const bad = (why: string) => new S3AuthError('AuthorizationHeaderMalformed', `The authorization header is malformed; ${why}`);
  const space = authorization.indexOf(' ');
  const algorithm = space < 0 ? authorization : authorization.slice(0, space);
  if (algorithm !== ALGORITHM) {
    if (algorithm === 'AWS') throw new S3AuthError('InvalidRequest', 'Signature Version 2 is not supported; use AWS4-HMAC-SHA256');
    throw new S3AuthError('InvalidRequest', `The authorization mechanism '${algorithm}' is not supported; use AWS4-HMAC-SHA256`);
  }
  const fields = new Map<string, string>();
  for (const part of authorization.slice(space + 1).split(',')) {
    const item = part.trim();
    const eq = item.indexOf('=');
    if (eq <= 0) throw bad(`'${item}' is not a key=value pair`);
    const key = item.slice(0, eq);
    if (!['Credential', 'SignedHeaders', 'Signature'].includes(key)) throw bad(`unknown component '${key}'`);
    if (fields.has(key)) throw bad(`'${key}' given twice`);
    fields.set(key, item.slice(eq + 1));
  }
  const credential = fields.get('Credential');
  const signedHeadersText = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (credential === undefined || signedHeadersText === undefined || signature === undefined) {
    throw bad('Credential, SignedHeaders and Signature are all required');
  }

  const date = requestDate(req.headers);
  const cred = parseCredential(credential, date.amzDate, bad);
  const signedHeaders = parseSignedHeaders(signedHeadersText, req.headers, bad);
  // S3 requires the payload hash header on every header-signed request: it is what binds the body
  // (or the chosen streaming scheme) to the signature.
  const contentSha = headerValue(req.headers, 'x-amz-content-sha256');
  if (contentSha === undefined) {
    throw new S3AuthError('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
  }
  const payloadMode = parsePayloadHash(contentSha);
  const secret = lookupSecret(credentials, cred.accessKeyId);
  checkSkew(date.time, now, maxSkewMs, date.amzDate);

  const canonicalRequest = buildCanonicalRequest(req, req.query, signedHeaders, contentSha);
  return finish(req, cred, secret, signature, canonicalRequest, date.amzDate, signedHeaders, payloadMode, false);
}

// x-amz-date wins over Date, as in AWS; either must be valid, since the signature is only as
// fresh as the time it covers.
function requestDate(headers: Headers): { amzDate: string; time: number } {
  const amz = headerValue(headers, 'x-amz-date');
  if (amz !== undefined) {
    const time = parseAmzDate(amz);
    if (time !== undefined) return { amzDate: amz, time };
  } else {
    const date = headerValue(headers, 'date');
    const time = date === undefined ? NaN : Date.parse(date);
    if (Number.isFinite(time)) return { amzDate: formatAmzDate(time), time };
  }
  throw new S3AuthError('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
}

function checkSkew(time: number, now: number, maxSkewMs: number, amzDate: string): void {
  if (Math.abs(now - time) > maxSkewMs) {
    throw new S3AuthError('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      RequestTime: amzDate,
      ServerTime: new Date(now).toISOString(),
      MaxAllowedSkewMilliseconds: String(maxSkewMs),
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Query form (presigned URL): X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders, -Signature.

// Given twice, any of these would let the signer's value and the one we read differ.
const AUTH_QUERY_PARAMS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Content-Sha256'];

function verifyQueryAuth(req: SigV4Request, credentials: CredentialStore, now: number, maxSkewMs: number): SigV4Auth {
  const bad = (why: string) =>
    new S3AuthError('AuthorizationQueryParametersError', `Query-string authentication is malformed; ${why}`);
  const params = new Map<string, string>();
  for (const [k, v] of req.query) {
    if (!k.startsWith('X-Amz-')) continue;
    if (params.has(k) && AUTH_QUERY_PARAMS.includes(k)) throw bad(`'${k}' given twice`);
    params.set(k, v);
  }
  const get = (name: string): string => {
    const v = params.get(name);
    if (v === undefined) {
      throw new S3AuthError(
        'AuthorizationQueryParametersError',
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
      );
    }
    return v;
  };
  const algorithm = get('X-Amz-Algorithm');
  const credential = get('X-Amz-Credential');
  const amzDate = get('X-Amz-Date');
  const expiresText = get('X-Amz-Expires');
  const signedHeadersText = get('X-Amz-SignedHeaders');
  const signature = get('X-Amz-Signature');
  if (algorithm !== ALGORITHM) throw bad(`X-Amz-Algorithm only supports "${ALGORITHM}"`);
  const time = parseAmzDate(amzDate);
  if (time === undefined) throw bad('X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd\'T\'HHmmss\'Z\'"');
  if (!/^\d{1,6}$/.test(expiresText)) throw bad('X-Amz-Expires must be a whole number of seconds');
  const expires = Number(expiresText);
  if (expires < 1 || expires > MAX_PRESIGNED_EXPIRES_S) {
    throw bad(`X-Amz-Expires must be between 1 and ${MAX_PRESIGNED_EXPIRES_S} seconds (seven days)`);
  }
  const cred = parseCredential(credential, amzDate, bad);
  const signedHeaders = parseSignedHeaders(signedHeadersText, req.headers, bad);

  // The payload is unsigned unless the signer bound a hash, in the query (where the AWS SDK's
  // presigner hoists X-Amz-Content-Sha256) or in a signed header.
  let contentSha = params.get('X-Amz-Content-Sha256');
  if (contentSha === undefined && signedHeaders.includes('x-amz-content-sha256')) {
    contentSha = headerValue(req.headers, 'x-amz-content-sha256');
  }
  contentSha ??= 'UNSIGNED-PAYLOAD';
  const payloadMode = parsePayloadHash(contentSha);
  if (payloadMode.kind !== 'unsigned' && payloadMode.kind !== 'sha256') {
    throw new S3AuthError('InvalidRequest', 'aws-chunked streaming uploads cannot be presigned');
  }
  const secret = lookupSecret(credentials, cred.accessKeyId);
  if (now > time + expires * 1000) {
    throw new S3AuthError('AccessDenied', 'Request has expired', {
      XAmzExpires: expiresText,
      Expires: new Date(time + expires * 1000).toISOString(),
      ServerTime: new Date(now).toISOString(),
    });
  }
  // A URL dated in the future would stay valid past its stated lifetime; allow only clock skew.
  if (time > now + maxSkewMs) throw new S3AuthError('AccessDenied', 'Request is not valid yet: X-Amz-Date is in the future');

  const query = req.query.filter(([k]) => k !== 'X-Amz-Signature');
  const canonicalRequest = buildCanonicalRequest(req, query, signedHeaders, contentSha);
  return finish(req, cred, secret, signature, canonicalRequest, amzDate, signedHeaders, payloadMode, true);
}

// ---------------------------------------------------------------------------------------------
// Shared steps.

interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  scope: string;
}

// AKID/yyyymmdd/region/s3/aws4_request. Any region is accepted (one gateway per segment, clients
// configured for whatever region name), but it must be the date signed and the service s3, or a
// signature made for another service or day could be replayed here.
function parseCredential(text: string, amzDate: string, bad: (why: string) => S3AuthError): Credential {
  const parts = text.split('/');
  if (parts.length !== 5 || parts.some((p) => p.length === 0)) {
    throw bad(`the Credential '${text}' must be accessKeyId/date/region/service/aws4_request`);
  }
  const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
  if (!/^\d{8}$/.test(date)) throw bad(`invalid credential date '${date}'`);
  if (date !== amzDate.slice(0, 8)) throw bad(`invalid credential date '${date}': it is not the date of the request (${amzDate})`);
  if (service !== 's3') throw bad(`incorrect service '${service}'; this endpoint belongs to 's3'`);
  if (terminator !== 'aws4_request') throw bad(`incorrect terminal '${terminator}'; this endpoint uses 'aws4_request'`);
  return { accessKeyId, date, region, scope: `${date}/${region}/s3/aws4_request` };
}

// Lowercase, sorted, unique, and covering host and every x-amz-* header present: an unsigned
// x-amz-* header (x-amz-copy-source, x-amz-acl, x-amz-meta-*) would let a man in the middle change
// what a validly signed request does.
function parseSignedHeaders(text: string, headers: Headers, bad: (why: string) => S3AuthError): string[] {
  const names = text.split(';');
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    if (name.length === 0 || name !== name.toLowerCase() || /[\s:]/.test(name)) throw bad(`invalid signed header name '${name}'`);
    if (i > 0 && names[i - 1]! >= name) throw bad('SignedHeaders must be sorted and unique');
  }
  if (!names.includes('host')) throw bad("'host' must be a signed header");
  const unsigned = Object.keys(headers).filter(
    (h) => h.startsWith('x-amz-') && headers[h] !== undefined && !names.includes(h),
  );
  if (unsigned.length > 0) {
    throw new S3AuthError('AccessDenied', 'There were headers present in the request which were not signed', {
      HeadersNotSigned: unsigned.sort().join(', '),
    });
  }
  return names;
}

function parsePayloadHash(value: string): PayloadMode {
  const known = STREAMING_MODES[value];
  if (known) return known;
  if (/^[0-9a-fA-F]{64}$/.test(value)) return { kind: 'sha256', hex: value.toLowerCase() };
  if (value.startsWith('STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD')) {
    throw new S3AuthError('InvalidRequest', 'Signature Version 4A (ECDSA) payload signing is not supported');
  }
  throw new S3AuthError(
    'InvalidArgument',
    'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a valid sha256 value.',
  );
}

function lookupSecret(credentials: CredentialStore, accessKeyId: string): string {
  const secret = credentials.secretFor(accessKeyId);
  if (secret === undefined) {
    throw new S3AuthError('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      AWSAccessKeyId: accessKeyId,
    });
  }
  return secret;
}

function finish(
  req: SigV4Request,
  cred: Credential,
  secret: string,
  signature: string,
  canonicalRequest: string,
  amzDate: string,
  signedHeaders: string[],
  payloadMode: PayloadMode,
  presigned: boolean,
): SigV4Auth {
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${cred.scope}\n${sha256Hex(byteString(canonicalRequest))}`;
  const signingKey = deriveSigningKey(secret, cred.date, cred.region, 's3');
  const expected = hmacHex(signingKey, stringToSign);
  if (!signaturesEqual(expected, signature)) {
    throw new S3AuthError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      { AWSAccessKeyId: cred.accessKeyId, SignatureProvided: signature, StringToSign: stringToSign, CanonicalRequest: canonicalRequest, Method: req.method },
    );
  }
  return {
    accessKeyId: cred.accessKeyId,
    payloadMode,
    seedSignature: expected,
    signingKey,
    scope: cred.scope,
    amzDate,
    region: cred.region,
    presigned,
    signedHeaders,
  };
}

// node:http hands header values over as latin1, one char per byte received; turning them back into
// those bytes reproduces what the client hashed (e.g. boto3's UTF-8 x-amz-meta-* values). Everything
// else in a canonical request is ASCII. A string with chars above 0xFF did not come off the wire
// that way, so it is hashed as UTF-8.
function byteString(s: string): Buffer {
  return /[^\x00-\xff]/.test(s) ? Buffer.from(s, 'utf8') : Buffer.from(s, 'latin1');
}

// Compare in time independent of where the first difference is, so a forger cannot find the
// signature byte by byte. The length is public (always 64 hex digits).
export function signaturesEqual(expectedHex: string, providedHex: string): boolean {
  const a = Buffer.from(expectedHex, 'utf8');
  const b = Buffer.from(providedHex, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

// ---------------------------------------------------------------------------------------------
// Canonical request, exactly as AWS specifies it for S3.

export function buildCanonicalRequest(req: SigV4Request, query: QueryPairs, signedHeaders: readonly string[], payloadHash: string): string {
  const headerLines = signedHeaders.map((name) => `${name}:${canonicalHeaderValue(req.headers[name])}\n`).join('');
  return [
    req.method.toUpperCase(),
    canonicalUri(req.path),
    canonicalQueryString(query),
    headerLines,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

// Each segment percent-decoded to bytes and re-encoded once; S3 does not normalize '.', '..' or
// '//', so neither do we.
export function canonicalUri(rawPath: string): string {
  if (rawPath === '') return '/';
  return rawPath
    .split('/')
    .map((segment) => uriEncodeBytes(percentDecode(segment, false)))
    .join('/');
}

// Sorted by encoded name, then encoded value; a parameter without a value is 'name='.
export function canonicalQueryString(query: QueryPairs): string {
  const encoded = query.map(([k, v]) => [uriEncode(k), uriEncode(v)] as const);
  encoded.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return encoded.map(([k, v]) => `${k}=${v}`).join('&');
}

// Trimmed, inner runs of whitespace collapsed, repeated headers joined with ','.
export function canonicalHeaderValue(value: HeaderValue): string {
  if (value === undefined) return '';
  const values = typeof value === 'string' ? [value] : value;
  return values.map((v) => v.trim().replace(/\s+/g, ' ')).join(',');
}

// Parses a raw query string (after '?') into decoded pairs, for routing and for verification
// alike so both see the same parameters. '+' is a space here (form encoding, as S3 reads it); in
// paths it stays a literal '+'.
export function parseQuery(raw: string): Array<[string, string]> {
  if (raw === '') return [];
  return raw
    .split('&')
    .filter((part) => part.length > 0)
    .map((part) => {
      const eq = part.indexOf('=');
      const k = eq < 0 ? part : part.slice(0, eq);
      const v = eq < 0 ? '' : part.slice(eq + 1);
      return [percentDecode(k, true).toString('utf8'), percentDecode(v, true).toString('utf8')];
    });
}

function percentDecode(text: string, plusIsSpace: boolean): Buffer {
  const s = plusIsSpace ? text.replaceAll('+', ' ') : text;
  if (!s.includes('%')) return Buffer.from(s, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = s.indexOf('%'); i >= 0; i = s.indexOf('%', start)) {
    const hex = s.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new S3AuthError('InvalidURI', `Couldn't parse the specified URI: bad escape '%${hex}'`);
    parts.push(Buffer.from(s.slice(start, i), 'utf8'), Buffer.from([parseInt(hex, 16)]));
    start = i + 3;
  }
  parts.push(Buffer.from(s.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

// AWS UriEncode of a string: UTF-8 bytes, everything but A-Z a-z 0-9 - . _ ~ as %XX (uppercase).
export function uriEncode(text: string): string {
  return uriEncodeBytes(Buffer.from(text, 'utf8'));
}

function uriEncodeBytes(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += UNRESERVED.test(c) ? c : '%' + (b < 16 ? '0' : '') + b.toString(16).toUpperCase();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Primitives, shared with the aws-chunked decoder.

// A signing key is valid for one day, region and service: clients reuse it, and so can we. Four
// HMACs per request showed up at 8-16% of small-request CPU. The cache is keyed by the secret
// itself (never logged), and bounded so rotating or hostile keys cannot grow it.
const SIGNING_KEY_CACHE_MAX = 256;
const signingKeys = new Map<string, Buffer>();

export function deriveSigningKey(secret: string, date: string, region: string, service: string): Buffer {
  const id = `${secret}\n${date}\n${region}\n${service}`;
  const cached = signingKeys.get(id);
  if (cached) return cached;
  const kDate = hmac(Buffer.from('AWS4' + secret, 'utf8'), date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  const key = hmac(kService, 'aws4_request');
  if (signingKeys.size >= SIGNING_KEY_CACHE_MAX) signingKeys.delete(signingKeys.keys().next().value!);
  signingKeys.set(id, key);
  return key;
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// YYYYMMDDTHHMMSSZ; undefined unless it names a real instant.
export function parseAmzDate(text: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const time = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
  return formatAmzDate(time) === text ? time : undefined;
}

export function formatAmzDate(time: number): string {
  return new Date(time).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

function headerValue(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(',');
}

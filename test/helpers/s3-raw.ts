// Raw S3 requests for the integration tests: an independent SigV4 signer (so a test can sign
// exactly what it wants, wrong hashes and skewed clocks included), node:http requests and
// node:net sockets for what no well-behaved client would send.
import { createHash, createHmac } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY } from './s3-server.ts';

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const sha256hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

function uriEncodeBytes(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

function percentDecodeBytes(s: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '%' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 1, i + 3))) {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...Buffer.from(s[i], 'utf8'));
  }
  return Buffer.from(out);
}

export const amzDate = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

export interface SignOptions {
  accessKeyId?: string;
  secretAccessKey?: string;
  // The request's time (default now).
  time?: number;
  // x-amz-content-sha256 to sign and send (default: the sha256 of the body).
  payloadHash?: string;
}

// Adds host, x-amz-date, x-amz-content-sha256 and Authorization to `headers` (lowercase names).
// `path` is the request target exactly as it will be sent (percent-encoded, query included, no
// dot-segment normalisation: that is why it is not a URL).
export function signRequest(
  method: string, endpoint: string, path: string, headers: Record<string, string>, body: Uint8Array | undefined, o: SignOptions = {},
): Record<string, string> {
  const time = o.time ?? Date.now();
  const date = amzDate(time);
  const day = date.slice(0, 8);
  const qi = path.indexOf('?');
  const url = { host: new URL(endpoint).host, pathname: qi < 0 ? path : path.slice(0, qi), search: qi < 0 ? '' : path.slice(qi) };
  const out: Record<string, string> = { ...headers, host: url.host, 'x-amz-date': date };
  out['x-amz-content-sha256'] = o.payloadHash ?? sha256hex(body ?? Buffer.alloc(0));
  const names = Object.keys(out).map((h) => h.toLowerCase()).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(out[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalUri = url.pathname.split('/').map((seg) => uriEncodeBytes(percentDecodeBytes(seg))).join('/');
  const pairs: Array<[string, string]> = [];
  for (const part of url.search.slice(1).split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncodeBytes(percentDecodeBytes(k)), uriEncodeBytes(percentDecodeBytes(v))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const canonicalQuery = pairs.map(([k, v]) => `${k}=${v}`).join('&');
  const canonicalRequest = [method, canonicalUri, canonicalQuery, canonicalHeaders, names.join(';'), out['x-amz-content-sha256']].join('\n');
  const scope = `${day}/${REGION}/s3/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256hex(canonicalRequest)}`;
  const kDate = hmac(`AWS4${o.secretAccessKey ?? SECRET_ACCESS_KEY}`, day);
  const key = hmac(hmac(hmac(kDate, REGION), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  out.authorization = `AWS4-HMAC-SHA256 Credential=${o.accessKeyId ?? ACCESS_KEY_ID}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return out;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  // <Code> of an S3 XML error body, if any.
  code: string | undefined;
}

export const errorCode = (text: string) => /<Code>([^<]*)<\/Code>/.exec(text)?.[1];

// One HTTP request. `path` is sent exactly as given (already percent-encoded, query included).
export function rawRequest(
  endpoint: string,
  method: string,
  path: string,
  o: { headers?: Record<string, string>; body?: Uint8Array | string; sign?: boolean | SignOptions } = {},
): Promise<RawResponse> {
  const url = new URL(endpoint);
  const body = typeof o.body === 'string' ? Buffer.from(o.body) : o.body;
  let headers: Record<string, string> = { ...o.headers };
  if (o.sign) headers = signRequest(method, endpoint, path, headers, body, o.sign === true ? {} : o.sign);
  if (body && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers, agent: false }, (res) => {
      const pieces: Buffer[] = [];
      res.on('data', (d: Buffer) => pieces.push(d));
      res.on('end', () => {
        const b = Buffer.concat(pieces);
        const text = b.toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text, code: errorCode(text) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Opens a TCP connection to the endpoint.
export function openSocket(endpoint: string): Promise<Socket> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const s = connect({ host: url.hostname, port: Number(url.port) }, () => resolve(s));
    s.once('error', reject);
  });
}

// Writes raw bytes and collects everything the server sends until it closes the connection (or
// the timeout passes). For requests with `connection: close`.
export async function rawExchange(endpoint: string, bytes: Buffer | string, timeoutMs = 10_000): Promise<{ text: string; status: number; code: string | undefined }> {
  const s = await openSocket(endpoint);
  return new Promise((resolve, reject) => {
    const pieces: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      const text = Buffer.concat(pieces).toString('utf8');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ text, status, code: errorCode(text) });
    };
    const timer = setTimeout(() => {
      s.destroy();
      done();
    }, timeoutMs);
    s.on('data', (d: Buffer) => pieces.push(d));
    s.on('end', done);
    s.on('close', () => {
      clearTimeout(timer);
      done();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      // A reset after the server answered and closed still leaves us its answer.
      if (pieces.length > 0 || err.code === 'ECONNRESET' || err.code === 'EPIPE') return;
      clearTimeout(timer);
      reject(err);
    });
    s.write(bytes);
  });
}

// A full request head (request line + headers + blank line) for raw sockets.
export function requestHead(method: string, path: string, headers: Record<string, string>): string {
  return `${method} ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

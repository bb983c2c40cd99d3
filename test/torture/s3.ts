// A small S3 client for the torture suite over node:http, with its own SigV4 signer: no retries,
// no hidden timeouts, every connection error surfaces, bodies are hashed as they stream (no
// buffering of large objects), and a test can sign exactly what it wants.
import { createHash, createHmac } from 'node:crypto';
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { XMLParser } from 'fast-xml-parser';

export const REGION = 'us-east-1';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Response {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  // <Code> and <Message> of an S3 XML error body.
  code?: string;
  message?: string;
}

export interface Digest {
  status: number;
  headers: IncomingHttpHeaders;
  size: number;
  sha256: string;
  md5: string;
  etag?: string;
  versionId?: string;
  // The declared content-length (for torn-body checks).
  contentLength?: number;
  code?: string;
  message?: string;
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
}

export interface ListedVersion {
  key: string;
  versionId: string;
  isLatest: boolean;
  deleted: boolean;
  size?: number;
  etag?: string;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
export const sha256hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
export const EMPTY_SHA256 = sha256hex('');

// RFC 3986 unreserved characters stay, everything else is %XX of its UTF-8 bytes.
export function uriEncode(s: string, keepSlash = false): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/')) out += c;
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export const objectPath = (bucket: string, key: string) => `/${bucket}/${uriEncode(key, true)}`;

export const amzDate = (ms: number) => new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');

function decodePathSegment(seg: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < seg.length; i++) {
    if (seg[i] === '%' && /^[0-9a-fA-F]{2}$/.test(seg.slice(i + 1, i + 3))) {
      out.push(parseInt(seg.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(...Buffer.from(seg[i], 'utf8'));
  }
  return Buffer.from(out);
}

function canonicalQuery(search: string): string {
  const pairs: Array<[string, string]> = [];
  for (const part of search.split('&').filter(Boolean)) {
    const eq = part.indexOf('=');
    const k = eq < 0 ? part : part.slice(0, eq);
    const v = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncode(decodePathSegment(k).toString('utf8')), uriEncode(decodePathSegment(v).toString('utf8'))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

export interface SignOptions {
  time?: number;
  // x-amz-content-sha256 to sign and send (default: sha256 of the body, or UNSIGNED-PAYLOAD).
  payloadHash?: string;
  region?: string;
}

// Adds host, x-amz-date, x-amz-content-sha256 and authorization. `path` is the request target as
// sent (percent-encoded, with its query).
export function sign(
  creds: Credentials, method: string, host: string, path: string, headers: Record<string, string>, body: Uint8Array | undefined, o: SignOptions = {},
): Record<string, string> {
  const time = o.time ?? Date.now();
  const date = amzDate(time);
  const day = date.slice(0, 8);
  const region = o.region ?? REGION;
  const qi = path.indexOf('?');
  const pathname = qi < 0 ? path : path.slice(0, qi);
  const search = qi < 0 ? '' : path.slice(qi + 1);
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) out[k.toLowerCase()] = v;
  out.host = host;
  out['x-amz-date'] = date;
  out['x-amz-content-sha256'] = o.payloadHash ?? (body ? sha256hex(body) : EMPTY_SHA256);
  const names = Object.keys(out).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(out[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalUri = pathname.split('/').map((seg) => uriEncode(decodePathSegment(seg).toString('utf8'))).join('/');
  const canonicalRequest = [method, canonicalUri, canonicalQuery(search), canonicalHeaders, names.join(';'), out['x-amz-content-sha256']].join('\n');
  const scope = `${day}/${region}/s3/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256hex(canonicalRequest)}`;
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), region), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  out.authorization = `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`;
  return out;
}

// A presigned URL path (query auth), valid `expires` seconds from `time`.
export function presign(creds: Credentials, method: string, host: string, pathname: string, o: { time?: number; expires?: number } = {}): string {
  const time = o.time ?? Date.now();
  const date = amzDate(time);
  const day = date.slice(0, 8);
  const scope = `${day}/${REGION}/s3/aws4_request`;
  const params: Record<string, string> = {
    'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
    'X-Amz-Credential': `${creds.accessKeyId}/${scope}`,
    'X-Amz-Date': date,
    'X-Amz-Expires': String(o.expires ?? 60),
    'X-Amz-SignedHeaders': 'host',
  };
  const query = Object.keys(params).sort().map((k) => `${uriEncode(k)}=${uriEncode(params[k])}`).join('&');
  const canonicalUri = pathname.split('/').map((seg) => uriEncode(decodePathSegment(seg).toString('utf8'))).join('/');
  const canonicalRequest = [method, canonicalUri, query, `host:${host}\n`, 'host', 'UNSIGNED-PAYLOAD'].join('\n');
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${scope}\n${sha256hex(canonicalRequest)}`;
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, day), REGION), 's3'), 'aws4_request');
  const signature = createHmac('sha256', key).update(stringToSign, 'utf8').digest('hex');
  return `${pathname}?${query}&X-Amz-Signature=${signature}`;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  isArray: (name) => ['Contents', 'Version', 'DeleteMarker', 'CommonPrefixes', 'Part', 'Upload', 'Deleted', 'Error', 'Bucket'].includes(name),
});

export function parseXml(text: string): Record<string, unknown> {
  return parser.parse(text, true) as Record<string, unknown>;
}

export function errorOf(body: Buffer): { code?: string; message?: string } {
  const text = body.toString('utf8');
  return { code: /<Code>([^<]*)<\/Code>/.exec(text)?.[1], message: /<Message>([^<]*)<\/Message>/.exec(text)?.[1] };
}

export class S3Failure extends Error {
  readonly status: number;
  readonly code: string | undefined;
  constructor(what: string, r: { status: number; code?: string; message?: string }) {
    super(`${what}: HTTP ${r.status} ${r.code ?? ''} ${r.message ?? ''}`.trim());
    this.status = r.status;
    this.code = r.code;
  }
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Uint8Array | string;
  // Sign (default) or send as is.
  sign?: boolean;
  signOptions?: SignOptions;
  // A socket idle this long fails the request (default 120 s: the machine is slow, not hung).
  idleTimeoutMs?: number;
}

export class S3Client {
  readonly endpoint: string;
  readonly host: string;
  private readonly hostname: string;
  private readonly port: number;
  readonly creds: Credentials;
  private agent: Agent;

  constructor(endpoint: string, creds: Credentials) {
    this.endpoint = endpoint.replace(/\/$/, '');
    const u = new URL(this.endpoint);
    this.host = u.host;
    this.hostname = u.hostname;
    this.port = Number(u.port);
    this.creds = creds;
    this.agent = new Agent({ keepAlive: true, maxSockets: 32 });
  }

  // Drops every kept-alive socket (after a server restart they are all dead).
  reset(): void {
    this.agent.destroy();
    this.agent = new Agent({ keepAlive: true, maxSockets: 32 });
  }

  close(): void {
    this.agent.destroy();
  }

  private send(method: string, path: string, o: RequestOptions, onBody: (res: import('node:http').IncomingMessage) => Promise<unknown>): Promise<void> {
    const body = typeof o.body === 'string' ? Buffer.from(o.body) : o.body;
    let headers: Record<string, string> = { ...o.headers };
    if (body && headers['content-length'] === undefined) headers['content-length'] = String(body.length);
    if (o.sign !== false) headers = sign(this.creds, method, this.host, path, headers, body, o.signOptions);
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: this.hostname, port: this.port, method, path, headers, agent: this.agent }, (res) => {
        onBody(res).then(() => resolve(), reject);
      });
      req.setTimeout(o.idleTimeoutMs ?? 120_000, () => req.destroy(new Error(`${method} ${path}: no progress for ${o.idleTimeoutMs ?? 120_000} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  async request(method: string, path: string, o: RequestOptions = {}): Promise<S3Response> {
    let out: S3Response | undefined;
    await this.send(method, path, o, async (res) => {
      const pieces: Buffer[] = [];
      for await (const d of res) pieces.push(d as Buffer);
      const b = Buffer.concat(pieces);
      out = { status: res.statusCode ?? 0, headers: res.headers, body: b };
      if ((res.statusCode ?? 0) >= 300) Object.assign(out, errorOf(b));
    });
    return out!;
  }

  // GET with the body hashed as it streams. A body cut short rejects (a torn read is an error,
  // never a short success).
  async getDigest(bucket: string, key: string, o: { versionId?: string; range?: string } = {}): Promise<Digest> {
    const path = objectPath(bucket, key) + (o.versionId ? `?versionId=${uriEncode(o.versionId)}` : '');
    let out: Digest | undefined;
    await this.send('GET', path, { headers: o.range ? { range: o.range } : {} }, async (res) => {
      const sha = createHash('sha256');
      const md5 = createHash('md5');
      let size = 0;
      const err: Buffer[] = [];
      const ok = (res.statusCode ?? 0) < 300;
      for await (const d of res) {
        if (ok) {
          sha.update(d as Buffer);
          md5.update(d as Buffer);
          size += (d as Buffer).length;
        } else err.push(d as Buffer);
      }
      if (!res.complete) throw new Error(`GET ${path}: response cut short after ${size} bytes`);
      const declared = res.headers['content-length'] !== undefined ? Number(res.headers['content-length']) : undefined;
      if (ok && declared !== undefined && declared !== size) throw new Error(`GET ${path}: ${size} bytes of ${declared} declared`);
      out = {
        status: res.statusCode ?? 0, headers: res.headers, size, sha256: sha.digest('hex'), md5: md5.digest('hex'),
        etag: unquote(res.headers.etag), versionId: res.headers['x-amz-version-id'] as string | undefined, contentLength: declared,
        ...(ok ? {} : errorOf(Buffer.concat(err))),
      };
    });
    return out!;
  }

  async put(bucket: string, key: string, body: Uint8Array, headers: Record<string, string> = {}): Promise<{ versionId: string; etag: string }> {
    const r = await this.request('PUT', objectPath(bucket, key), { body, headers });
    if (r.status !== 200) throw new S3Failure(`PUT ${bucket}/${key}`, r);
    return { versionId: String(r.headers['x-amz-version-id']), etag: unquote(r.headers.etag)! };
  }

  async del(bucket: string, key: string): Promise<{ versionId: string }> {
    const r = await this.request('DELETE', objectPath(bucket, key));
    if (r.status !== 204) throw new S3Failure(`DELETE ${bucket}/${key}`, r);
    return { versionId: String(r.headers['x-amz-version-id']) };
  }

  async head(bucket: string, key: string, versionId?: string): Promise<S3Response> {
    return this.request('HEAD', objectPath(bucket, key) + (versionId ? `?versionId=${uriEncode(versionId)}` : ''));
  }

  async createBucket(bucket: string): Promise<void> {
    const r = await this.request('PUT', `/${bucket}`);
    if (r.status !== 200 && r.code !== 'BucketAlreadyOwnedByYou') throw new S3Failure(`PUT bucket ${bucket}`, r);
  }

  async createUpload(bucket: string, key: string): Promise<string> {
    const r = await this.request('POST', `${objectPath(bucket, key)}?uploads`);
    if (r.status !== 200) throw new S3Failure(`CreateMultipartUpload ${bucket}/${key}`, r);
    const id = /<UploadId>([^<]+)<\/UploadId>/.exec(r.body.toString())?.[1];
    if (!id) throw new Error(`CreateMultipartUpload ${bucket}/${key}: no UploadId in ${r.body.toString().slice(0, 200)}`);
    return id;
  }

  async uploadPart(bucket: string, key: string, uploadId: string, n: number, body: Uint8Array): Promise<string> {
    const r = await this.request('PUT', `${objectPath(bucket, key)}?partNumber=${n}&uploadId=${uriEncode(uploadId)}`, { body });
    if (r.status !== 200) throw new S3Failure(`UploadPart ${n} ${bucket}/${key}`, r);
    return unquote(r.headers.etag)!;
  }

  async completeUpload(bucket: string, key: string, uploadId: string, etags: string[]): Promise<{ versionId: string; etag: string }> {
    const xml = `<CompleteMultipartUpload>${etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>"${e}"</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
    const r = await this.request('POST', `${objectPath(bucket, key)}?uploadId=${uriEncode(uploadId)}`, { body: xml });
    if (r.status !== 200 || r.code) throw new S3Failure(`CompleteMultipartUpload ${bucket}/${key}`, r);
    const etag = unquote(/<ETag>([^<]+)<\/ETag>/.exec(r.body.toString())?.[1].replaceAll('&quot;', '"'));
    return { versionId: String(r.headers['x-amz-version-id']), etag: etag! };
  }

  async listObjects(bucket: string, prefix = ''): Promise<ListedObject[]> {
    const out: ListedObject[] = [];
    let token: string | undefined;
    for (;;) {
      const q = `list-type=2&max-keys=1000${prefix ? `&prefix=${uriEncode(prefix)}` : ''}${token ? `&continuation-token=${uriEncode(token)}` : ''}`;
      const r = await this.request('GET', `/${bucket}?${q}`);
      if (r.status !== 200) throw new S3Failure(`ListObjectsV2 ${bucket}`, r);
      const doc = parseXml(r.body.toString()).ListBucketResult as Record<string, unknown>;
      for (const c of (doc.Contents ?? []) as Array<Record<string, string>>) {
        out.push({ key: c.Key, size: Number(c.Size), etag: unquote(c.ETag)! });
      }
      if (doc.IsTruncated !== 'true') return out;
      token = doc.NextContinuationToken as string;
    }
  }

  async listVersions(bucket: string, prefix = ''): Promise<ListedVersion[]> {
    const out: ListedVersion[] = [];
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      const q = `versions&max-keys=1000${prefix ? `&prefix=${uriEncode(prefix)}` : ''}`
        + `${keyMarker !== undefined ? `&key-marker=${uriEncode(keyMarker)}` : ''}${versionMarker ? `&version-id-marker=${uriEncode(versionMarker)}` : ''}`;
      const r = await this.request('GET', `/${bucket}?${q}`);
      if (r.status !== 200) throw new S3Failure(`ListObjectVersions ${bucket}`, r);
      const doc = parseXml(r.body.toString()).ListVersionsResult as Record<string, unknown>;
      for (const v of (doc.Version ?? []) as Array<Record<string, string>>) {
        out.push({ key: v.Key, versionId: v.VersionId, isLatest: v.IsLatest === 'true', deleted: false, size: Number(v.Size), etag: unquote(v.ETag) });
      }
      for (const v of (doc.DeleteMarker ?? []) as Array<Record<string, string>>) {
        out.push({ key: v.Key, versionId: v.VersionId, isLatest: v.IsLatest === 'true', deleted: true });
      }
      if (doc.IsTruncated !== 'true') return out;
      keyMarker = doc.NextKeyMarker as string;
      versionMarker = doc.NextVersionIdMarker as string;
    }
  }

  async listBuckets(): Promise<string[]> {
    const r = await this.request('GET', '/');
    if (r.status !== 200) throw new S3Failure('ListBuckets', r);
    const doc = parseXml(r.body.toString()).ListAllMyBucketsResult as { Buckets?: { Bucket?: Array<{ Name: string }> } };
    return (doc.Buckets?.Bucket ?? []).map((b) => b.Name).sort();
  }
}

export function unquote(etag: unknown): string | undefined {
  return typeof etag === 'string' ? etag.replaceAll('"', '') : undefined;
}

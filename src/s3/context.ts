import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Segment } from '../segment/segment.ts';
import type { SigV4Auth } from './auth/sigv4.ts';
import { verifiedBody, type VerifiedBody } from './auth/payload.ts';
import { S3Error } from './errors.ts';
import { xmlDocument } from './xml.ts';

// One S3 request, parsed once: what every endpoint handler receives.
export interface S3Context {
  req: IncomingMessage;
  res: ServerResponse;
  segment: Segment;
  method: string;
  rawPath: string;
  query: ReadonlyArray<readonly [string, string]>;
  bucket: string | undefined;
  key: string | undefined;
  auth: SigV4Auth | undefined;
  requestId: string;
  // Wall clock of the server, injectable for tests.
  now: () => number;
}

export function param(c: S3Context, name: string): string | undefined {
  return c.query.find(([k]) => k === name)?.[1];
}

export function hasParam(c: S3Context, name: string): boolean {
  return c.query.some(([k]) => k === name);
}

export function header(c: S3Context, name: string): string | undefined {
  const v = c.req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

// The payload with every integrity claim of the request checked by the end of iteration.
export function body(c: S3Context): VerifiedBody {
  return verifiedBody(c.auth, c.req.headersDistinct, c.req, { query: c.query });
}

// The object's size as the client declared it, for truncation checks: the decoded length for
// aws-chunked bodies, Content-Length otherwise.
export function declaredSize(c: S3Context): number | undefined {
  const text = header(c, 'x-amz-decoded-content-length') ?? header(c, 'content-length');
  if (text === undefined) return undefined;
  if (!/^\d{1,15}$/.test(text)) throw new S3Error('InvalidArgument', 400, 'invalid content length');
  return Number(text);
}

export function requireBucket(c: S3Context): string {
  if (!c.bucket) throw new S3Error('InvalidRequest', 400, 'this operation needs a bucket');
  return c.bucket;
}

export function requireKey(c: S3Context): { bucket: string; key: string } {
  const bucket = requireBucket(c);
  if (!c.key) throw new S3Error('InvalidRequest', 400, 'this operation needs an object key');
  return { bucket, key: c.key };
}

export function send(c: S3Context, status: number, headers: Record<string, string | number> = {}, payload?: string): void {
  const bytes = payload === undefined ? undefined : Buffer.from(payload);
  c.res.writeHead(status, { ...headers, ...(bytes ? { 'content-length': bytes.length } : status === 204 || c.method === 'HEAD' ? {} : { 'content-length': 0 }) });
  c.res.end(bytes);
}

export function sendXml(c: S3Context, root: string, doc: Record<string, unknown>, headers: Record<string, string | number> = {}): void {
  send(c, 200, { 'content-type': 'application/xml', ...headers }, xmlDocument(root, doc));
}

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ByteRange, ObjectVersion } from '../../segment/segment.ts';
import { isStitchError } from '../../core/errors.ts';
import { type S3Context, header, param, requireKey, send } from '../context.ts';
import { S3Error, notImplemented } from '../errors.ts';
import { quoted } from '../xml.ts';
import { objectHeaders } from './object-headers.ts';

// `bytes=a-b`, `bytes=a-`, `bytes=-n`. Anything else (several ranges, other units, garbage) is
// ignored as RFC 9110 allows and S3 does: the whole object is returned.
export function parseRange(text: string | undefined): ByteRange | undefined {
  const m = text?.trim().match(/^bytes=(\d*)-(\d*)$/);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') return { suffix: Number(m[2]) };
  const start = Number(m[1]);
  if (m[2] === '') return { start };
  const last = Number(m[2]);
  if (last < start) return undefined;
  return { start, end: last + 1 };
}

const httpDate = (ms: number) => new Date(ms).toUTCString();
const etagMatches = (list: string, etag: string) =>
  list.split(',').map((s) => s.trim()).some((t) => t === '*' || t.replace(/^W\//, '').replaceAll('"', '') === etag);

// RFC 9110 section 13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.
function preconditions(c: S3Context, v: ObjectVersion): 304 | 412 | undefined {
  const ifMatch = header(c, 'if-match');
  const ifUnmodified = header(c, 'if-unmodified-since');
  const ifNoneMatch = header(c, 'if-none-match');
  const ifModified = header(c, 'if-modified-since');
  const secs = Math.floor(v.mtime / 1000) * 1000;
  if (ifMatch !== undefined && !etagMatches(ifMatch, v.etag)) return 412;
  if (ifMatch === undefined && ifUnmodified !== undefined && Date.parse(ifUnmodified) < secs) return 412;
  if (ifNoneMatch !== undefined && etagMatches(ifNoneMatch, v.etag)) return 304;
  if (ifNoneMatch === undefined && ifModified !== undefined && Date.parse(ifModified) >= secs) return 304;
  return undefined;
}

const OVERRIDES: Record<string, string> = {
  'response-content-type': 'content-type',
  'response-content-language': 'content-language',
  'response-expires': 'expires',
  'response-cache-control': 'cache-control',
  'response-content-disposition': 'content-disposition',
  'response-content-encoding': 'content-encoding',
};

async function selectVersion(c: S3Context, bucket: string, key: string): Promise<ObjectVersion> {
  const versionId = param(c, 'versionId');
  try {
    const v = await c.segment.head(bucket, key, { versionId: versionId === 'null' ? undefined : versionId });
    if (v.deleted) {
      throw new S3Error('MethodNotAllowed', 405, 'The specified method is not allowed against this resource.', {});
    }
    return v;
  } catch (err) {
    const marker = (err as { deleteMarker?: string }).deleteMarker;
    if (isStitchError(err, 'NoSuchKey') && marker) c.res.setHeader('x-amz-delete-marker', 'true');
    if (err instanceof S3Error && err.status === 405) {
      c.res.setHeader('x-amz-delete-marker', 'true');
      c.res.setHeader('x-amz-version-id', versionId ?? '');
    }
    throw err;
  }
}

export async function getObject(c: S3Context): Promise<void> {
  const { bucket, key } = requireKey(c);
  // Part boundaries are not kept once an upload is completed. partNumber=1 is served as the whole
  // object (what S3 does for a single-part object: clients then see no x-amz-mp-parts-count and
  // read it as one part); a later part would be wrong bytes, so it is refused.
  const partNumber = param(c, 'partNumber');
  if (partNumber !== undefined && partNumber !== '1') throw notImplemented('reading one part of an object (partNumber > 1)');
  const v = await selectVersion(c, bucket, key);
  const cond = preconditions(c, v);
  const base: Record<string, string | number> = {
    etag: quoted(v.etag), 'last-modified': httpDate(v.mtime), 'x-amz-version-id': v.versionId, 'accept-ranges': 'bytes',
  };
  if (cond === 304) return send(c, 304, base);
  if (cond === 412) throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  const headers = { ...base, ...objectHeaders(v) };
  for (const [q, h] of Object.entries(OVERRIDES)) {
    const value = param(c, q);
    // Echoed as a response header: a value HTTP cannot carry (control characters, anything past
    // Latin-1) is the client's error, not a failure of writeHead (it was a 500).
    if (value !== undefined && /[^\t\x20-\x7e\x80-\xff]/.test(value)) {
      throw new S3Error('InvalidArgument', 400, `${q} must be a valid HTTP header value`, { ArgumentName: q });
    }
    if (value !== undefined) headers[h] = value;
  }
  const range = parseRange(header(c, 'range'));
  if (range && v.size === 0) throw new S3Error('InvalidRange', 416, 'The requested range is not satisfiable', { RangeRequested: header(c, 'range') ?? '' });
  const r = await c.segment.get(bucket, key, { versionId: v.versionId, range }).catch((err) => {
    if (isStitchError(err, 'InvalidRange')) c.res.setHeader('content-range', `bytes */${v.size}`);
    throw err;
  });
  const status = range ? 206 : 200;
  if (range) headers['content-range'] = `bytes ${r.start}-${r.end - 1}/${v.size}`;
  headers['content-length'] = r.end - r.start;
  if (c.method === 'HEAD') {
    c.res.writeHead(status, headers);
    c.res.end();
    return;
  }
  // The first chunk is read before the status line, so a chunk that cannot be produced is still a
  // proper S3 error; a failure later can only cut the connection (never send wrong bytes).
  const it = r.body[Symbol.asyncIterator]();
  const first = r.end > r.start ? await it.next() : undefined;
  c.res.writeHead(status, headers);
  if (!first || first.done) {
    c.res.end();
    return;
  }
  const rest = async function* () {
    yield first.value;
    for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
  };
  await pipeline(Readable.from(rest(), { objectMode: false }), c.res);
}

import type { ObjectVersion } from '../../segment/segment.ts';
import { S3Error } from '../errors.ts';
import type { S3Context } from '../context.ts';

// Standard headers S3 stores with an object and returns on GET/HEAD.
export const STORED_HEADERS = ['content-encoding', 'content-disposition', 'content-language', 'cache-control', 'expires'] as const;
// S3's limit on user metadata (names and values, UTF-8).
const MAX_USER_METADATA_BYTES = 2048;

export function objectHeaders(v: ObjectVersion): Record<string, string> {
  const out: Record<string, string> = { 'content-type': v.contentType };
  for (const [k, value] of Object.entries(v.headers)) out[k] = value;
  for (const [k, value] of Object.entries(v.meta)) out[`x-amz-meta-${k}`] = value;
  return out;
}

export function requestMetadata(c: S3Context): { contentType?: string; meta: Record<string, string>; headers: Record<string, string> } {
  const meta: Record<string, string> = {};
  const headers: Record<string, string> = {};
  let metaBytes = 0;
  for (const [name, value] of Object.entries(c.req.headers)) {
    const v = Array.isArray(value) ? value.join(',') : value ?? '';
    if (name.startsWith('x-amz-meta-')) {
      const k = name.slice('x-amz-meta-'.length);
      meta[k] = v;
      metaBytes += Buffer.byteLength(k) + Buffer.byteLength(v);
    } else if ((STORED_HEADERS as readonly string[]).includes(name)) {
      // aws-chunked is transfer framing, not the object's encoding.
      const kept = name === 'content-encoding' ? v.split(',').map((s) => s.trim()).filter((s) => s && s !== 'aws-chunked').join(',') : v;
      if (kept) headers[name] = kept;
    }
  }
  if (metaBytes > MAX_USER_METADATA_BYTES) {
    throw new S3Error('MetadataTooLarge', 400, `Your metadata headers exceed the maximum allowed metadata size (${MAX_USER_METADATA_BYTES} bytes)`);
  }
  const ct = c.req.headers['content-type'];
  return { contentType: ct, meta, headers };
}

import type { IncomingMessage } from 'node:http';
import { S3Error } from './errors.ts';

// Bucket and key of a request: virtual-host style when the Host header is `<bucket>.<domain>`,
// path style (`/<bucket>/<key>`) otherwise. Keys are percent-decoded exactly once.
export function bucketAndKey(req: IncomingMessage, rawPath: string, domains: readonly string[]): { bucket?: string; key?: string } {
  const host = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const vhost = domains.map((d) => d.toLowerCase()).find((d) => host.endsWith(`.${d}`));
  const path = decodePath(rawPath);
  if (vhost) {
    const bucket = host.slice(0, -(vhost.length + 1));
    const key = path.slice(1);
    return { bucket, key: key === '' ? undefined : key };
  }
  const trimmed = path.slice(1);
  if (trimmed === '') return {};
  const slash = trimmed.indexOf('/');
  if (slash < 0) return { bucket: trimmed };
  const key = trimmed.slice(slash + 1);
  return { bucket: trimmed.slice(0, slash), key: key === '' ? undefined : key };
}

function decodePath(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new S3Error('InvalidURI', 400, "Couldn't parse the specified URI.");
  }
}

// One query parser for routing and signature verification, so both read a request alike.
export { parseQuery } from './auth/sigv4.ts';

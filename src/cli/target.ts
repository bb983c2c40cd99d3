import { StitchError } from '../core/errors.ts';

// `BUCKET/KEY` (key required) or `BUCKET[/PREFIX]` (prefix optional), as users type them.
export function parseTarget(text: string, keyRequired: boolean): { bucket: string; key: string } {
  const clean = text.replace(/^s3:\/\//, '');
  const slash = clean.indexOf('/');
  const bucket = slash < 0 ? clean : clean.slice(0, slash);
  const key = slash < 0 ? '' : clean.slice(slash + 1);
  if (!bucket) throw new StitchError('InvalidArgument', `'${text}' names no bucket`);
  if (keyRequired && !key) throw new StitchError('InvalidArgument', `'${text}' names no key: expected BUCKET/KEY`);
  return { bucket, key };
}

// `--at` takes an ISO date, or milliseconds since the epoch.
export function parseTime(text: string): number {
  const ms = /^\d+$/.test(text) ? Number(text) : Date.parse(text);
  if (!Number.isFinite(ms)) throw new StitchError('InvalidArgument', `cannot read '${text}' as a time (use ISO 8601, e.g. 2026-11-22T10:00:00Z)`);
  return ms;
}

export function parseHostPort(text: string): { host: string; port: number } {
  const m = text.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  if (!m || Number(m[2]) > 65535) throw new StitchError('InvalidArgument', `expected HOST:PORT, got '${text}'`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

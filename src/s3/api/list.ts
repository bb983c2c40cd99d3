import { type S3Context, param, requireBucket, sendXml } from '../context.ts';
import { S3Error } from '../errors.ts';
import { iso, quoted } from '../xml.ts';
import { owner } from './owner.ts';

const MAX_KEYS = 1000;

function maxKeys(c: S3Context, name = 'max-keys'): number {
  const text = param(c, name);
  if (text === undefined) return MAX_KEYS;
  if (!/^\d+$/.test(text)) throw new S3Error('InvalidArgument', 400, `${name} must be a non-negative integer`);
  return Math.min(Number(text), MAX_KEYS);
}

function encoder(c: S3Context): (s: string) => string {
  const type = param(c, 'encoding-type');
  if (type === undefined) return (s) => s;
  if (type !== 'url') throw new S3Error('InvalidArgument', 400, 'Invalid Encoding Method specified in Request');
  return (s) => encodeURIComponent(s).replace(/%2F/g, '/');
}

const token = {
  encode: (marker: string) => Buffer.from(marker, 'utf8').toString('base64url'),
  decode: (t: string) => {
    const s = Buffer.from(t, 'base64url').toString('utf8');
    if (Buffer.from(s, 'utf8').toString('base64url') !== t) throw new S3Error('InvalidArgument', 400, 'The continuation token provided is incorrect');
    return s;
  },
};

export function listObjects(c: S3Context): void {
  const bucket = requireBucket(c);
  const v2 = param(c, 'list-type') === '2';
  const enc = encoder(c);
  const prefix = param(c, 'prefix') ?? '';
  const delimiter = param(c, 'delimiter') || undefined;
  const limit = maxKeys(c);
  const cont = param(c, 'continuation-token');
  const startAfter = param(c, 'start-after');
  const marker = param(c, 'marker');
  const after = v2 ? (cont !== undefined ? token.decode(cont) : startAfter) : marker;
  const page = limit === 0
    ? { items: [], commonPrefixes: [], truncated: false, next: undefined }
    : c.segment.list(bucket, { prefix, delimiter, after, limit });
  const fetchOwner = !v2 || param(c, 'fetch-owner') === 'true';
  const contents = page.items.map((o) => ({
    Key: enc(o.key), LastModified: iso(o.mtime), ETag: quoted(o.etag), Size: o.size, StorageClass: 'STANDARD',
    ...(fetchOwner ? { Owner: owner(c) } : {}),
  }));
  const common = page.commonPrefixes.map((p) => ({ Prefix: enc(p) }));
  const base = {
    Name: bucket, Prefix: enc(prefix), ...(delimiter ? { Delimiter: enc(delimiter) } : {}), MaxKeys: limit,
    ...(param(c, 'encoding-type') ? { EncodingType: 'url' } : {}), IsTruncated: page.truncated,
  };
  if (v2) {
    sendXml(c, 'ListBucketResult', {
      ...base, KeyCount: contents.length + common.length,
      ...(cont !== undefined ? { ContinuationToken: cont } : {}),
      ...(startAfter !== undefined ? { StartAfter: enc(startAfter) } : {}),
      ...(page.truncated && page.next !== undefined ? { NextContinuationToken: token.encode(page.next) } : {}),
      Contents: contents, CommonPrefixes: common,
    });
  } else {
    sendXml(c, 'ListBucketResult', {
      ...base, Marker: enc(marker ?? ''),
      ...(page.truncated && page.next !== undefined ? { NextMarker: enc(page.next) } : {}),
      Contents: contents, CommonPrefixes: common,
    });
  }
}

export function listObjectVersions(c: S3Context): void {
  const bucket = requireBucket(c);
  const enc = encoder(c);
  const prefix = param(c, 'prefix') ?? '';
  const delimiter = param(c, 'delimiter') || undefined;
  const limit = maxKeys(c);
  const keyMarker = param(c, 'key-marker') || undefined;
  const versionMarker = param(c, 'version-id-marker') || undefined;
  const page = limit === 0
    ? { items: [], commonPrefixes: [], truncated: false, next: undefined, nextVersion: undefined }
    : c.segment.versions(bucket, { prefix, delimiter, after: keyMarker, afterVersion: versionMarker, limit });
  const entry = (v: (typeof page.items)[number]) => ({
    Key: enc(v.key), VersionId: v.versionId, IsLatest: v.isLatest, LastModified: iso(v.mtime),
    ...(v.deleted ? {} : { ETag: quoted(v.etag), Size: v.size, StorageClass: 'STANDARD' }),
    Owner: owner(c),
  });
  sendXml(c, 'ListVersionsResult', {
    Name: bucket, Prefix: enc(prefix), KeyMarker: enc(keyMarker ?? ''), VersionIdMarker: versionMarker ?? '',
    ...(delimiter ? { Delimiter: enc(delimiter) } : {}), MaxKeys: limit,
    ...(param(c, 'encoding-type') ? { EncodingType: 'url' } : {}), IsTruncated: page.truncated,
    ...(page.truncated ? { NextKeyMarker: enc(page.next ?? ''), NextVersionIdMarker: page.nextVersion ?? '' } : {}),
    Version: page.items.filter((v) => !v.deleted).map(entry),
    DeleteMarker: page.items.filter((v) => v.deleted).map(entry),
    CommonPrefixes: page.commonPrefixes.map((p) => ({ Prefix: enc(p) })),
  });
}

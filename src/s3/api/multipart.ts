import { type S3Context, body, declaredSize, header, param, requireBucket, requireKey, send, sendXml } from '../context.ts';
import { S3Error, malformedXml } from '../errors.ts';
import { iso, quoted, readXml } from '../xml.ts';
import { parseCopySource } from './copy-source.ts';
import { requestMetadata } from './object-headers.ts';
import { owner } from './owner.ts';
import { parseRange } from './object-get.ts';

const MAX_PARTS_LISTED = 1000;
// Uploads of one key scanned when a listing resumes inside that key (in progress at once: far
// more than any client keeps).
const MAX_UPLOADS_OF_ONE_KEY = 10_000;

function uploadId(c: S3Context): string {
  const id = param(c, 'uploadId');
  if (!id) throw new S3Error('InvalidArgument', 400, 'uploadId is required');
  return id;
}

function partNumber(c: S3Context): number {
  const text = param(c, 'partNumber') ?? '';
  if (!/^\d{1,5}$/.test(text)) throw new S3Error('InvalidArgument', 400, 'Part number must be an integer between 1 and 10000, inclusive');
  return Number(text);
}

export function createUpload(c: S3Context): void {
  const { bucket, key } = requireKey(c);
  const md = requestMetadata(c);
  const rec = c.segment.uploads.create(bucket, key, md);
  sendXml(c, 'InitiateMultipartUploadResult', { Bucket: bucket, Key: key, UploadId: rec.uploadId });
}

export async function uploadPart(c: S3Context): Promise<void> {
  const { bucket, key } = requireKey(c);
  const id = uploadId(c);
  const n = partNumber(c);
  const source = header(c, 'x-amz-copy-source');
  if (source !== undefined) return uploadPartCopy(c, bucket, key, id, n, source);
  const b = body(c);
  const p = await c.segment.uploads.putPart(bucket, key, id, n, b, { size: declaredSize(c) });
  const headers: Record<string, string> = { etag: quoted(p.etag) };
  if (b.checksum) headers[`x-amz-checksum-${b.checksum.algorithm}`] = b.checksum.value;
  send(c, 200, headers);
}

async function uploadPartCopy(c: S3Context, bucket: string, key: string, id: string, n: number, sourceText: string): Promise<void> {
  const src = parseCopySource(sourceText);
  const rangeText = header(c, 'x-amz-copy-source-range');
  const range = rangeText === undefined ? undefined : parseRange(rangeText);
  if (rangeText !== undefined && (!range || 'suffix' in range || range.end === undefined)) {
    throw new S3Error('InvalidArgument', 400, 'The x-amz-copy-source-range value must be of the form bytes=first-last');
  }
  c.segment.uploads.get(bucket, key, id);
  const r = await c.segment.get(src.bucket, src.key, { versionId: src.versionId, range });
  for await (const _ of body(c)) {
    // no payload with a copy; drained so the connection stays usable
  }
  const p = await c.segment.uploads.putPart(bucket, key, id, n, r.body);
  sendXml(c, 'CopyPartResult', { LastModified: iso(p.created), ETag: quoted(p.etag) }, { 'x-amz-copy-source-version-id': r.version.versionId });
}

export async function completeUpload(c: S3Context): Promise<void> {
  const { bucket, key } = requireKey(c);
  const id = uploadId(c);
  const doc = (await readXml(body(c))).CompleteMultipartUpload as Record<string, unknown> | undefined;
  if (!doc || typeof doc !== 'object' || !Array.isArray(doc.Part)) throw malformedXml();
  const parts = (doc.Part as Array<Record<string, unknown>>).map((p) => {
    if (typeof p.PartNumber !== 'string' || !/^\d+$/.test(p.PartNumber) || typeof p.ETag !== 'string') throw malformedXml();
    return { part: Number(p.PartNumber), etag: p.ETag };
  });
  const v = await c.segment.uploads.complete(bucket, key, id, parts);
  sendXml(c, 'CompleteMultipartUploadResult', {
    Location: `/${bucket}/${encodeURIComponent(key)}`, Bucket: bucket, Key: key, ETag: quoted(v.etag),
  }, { 'x-amz-version-id': v.versionId });
}

export function abortUpload(c: S3Context): void {
  const { bucket, key } = requireKey(c);
  c.segment.uploads.abort(bucket, key, uploadId(c));
  send(c, 204);
}

export function listParts(c: S3Context): void {
  const { bucket, key } = requireKey(c);
  const id = uploadId(c);
  const marker = Number(param(c, 'part-number-marker') ?? 0) || 0;
  const max = Math.min(Number(param(c, 'max-parts') ?? MAX_PARTS_LISTED) || MAX_PARTS_LISTED, MAX_PARTS_LISTED);
  const all = c.segment.uploads.listParts(bucket, key, id).filter((p) => p.part > marker);
  const page = all.slice(0, max);
  const truncated = all.length > page.length;
  sendXml(c, 'ListPartsResult', {
    Bucket: bucket, Key: key, UploadId: id, PartNumberMarker: marker,
    ...(truncated ? { NextPartNumberMarker: page[page.length - 1].part } : {}),
    MaxParts: max, IsTruncated: truncated, StorageClass: 'STANDARD', Initiator: owner(c), Owner: owner(c),
    Part: page.map((p) => ({ PartNumber: p.part, LastModified: iso(p.created), ETag: quoted(p.etag), Size: p.size })),
  });
}

export function listUploads(c: S3Context): void {
  const bucket = requireBucket(c);
  const prefix = param(c, 'prefix') ?? '';
  const keyMarker = param(c, 'key-marker') || undefined;
  const idMarker = keyMarker === undefined ? undefined : param(c, 'upload-id-marker') || undefined;
  const max = Math.min(Number(param(c, 'max-uploads') ?? 1000) || 1000, 1000);
  // With an upload-id-marker, the page resumes inside the marker key: its uploads after that one
  // (listing order is key, then creation), then the keys after it. Without this, a page cut in
  // the middle of one key's uploads lost the rest of them.
  let sameKey: ReturnType<typeof c.segment.uploads.list> = [];
  if (keyMarker !== undefined && idMarker !== undefined && keyMarker.startsWith(prefix)) {
    const own = c.segment.uploads.list(bucket, keyMarker, undefined, MAX_UPLOADS_OF_ONE_KEY).filter((u) => u.key === keyMarker);
    const i = own.findIndex((u) => u.uploadId === idMarker);
    sameKey = i < 0 ? [] : own.slice(i + 1);
  }
  const rows = [...sameKey, ...c.segment.uploads.list(bucket, prefix, keyMarker, max + 1)].slice(0, max + 1);
  const page = rows.slice(0, max);
  const truncated = rows.length > max;
  sendXml(c, 'ListMultipartUploadsResult', {
    Bucket: bucket, KeyMarker: keyMarker ?? '', UploadIdMarker: idMarker ?? '', Prefix: prefix, MaxUploads: max, IsTruncated: truncated,
    ...(truncated ? { NextKeyMarker: page[page.length - 1].key, NextUploadIdMarker: page[page.length - 1].uploadId } : {}),
    Upload: page.map((u) => ({
      Key: u.key, UploadId: u.uploadId, Initiator: owner(c), Owner: owner(c), StorageClass: 'STANDARD', Initiated: iso(u.created),
    })),
  });
}

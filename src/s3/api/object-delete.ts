import { isStitchError } from '../../core/errors.ts';
import { type S3Context, body, param, requireBucket, requireKey, send, sendXml } from '../context.ts';
import { S3Error, malformedXml, toS3Error } from '../errors.ts';
import { readXml } from '../xml.ts';

// S3's bound on one DeleteObjects request.
const MAX_BATCH_DELETE = 1000;

async function deleteOne(c: S3Context, bucket: string, key: string, versionId: string | undefined) {
  if (versionId === undefined) {
    const marker = await c.segment.delete(bucket, key);
    return { deleteMarker: true, versionId: marker.versionId };
  }
  try {
    const v = c.segment.deleteVersion(bucket, key, versionId);
    return { deleteMarker: v.deleted, versionId };
  } catch (err) {
    // Deleting what is already gone succeeds, as on S3; a malformed id still fails.
    if (isStitchError(err, 'NoSuchVersion')) return { deleteMarker: false, versionId };
    throw err;
  }
}

export async function deleteObject(c: S3Context): Promise<void> {
  const { bucket, key } = requireKey(c);
  const r = await deleteOne(c, bucket, key, param(c, 'versionId'));
  send(c, 204, { 'x-amz-version-id': r.versionId, ...(r.deleteMarker ? { 'x-amz-delete-marker': 'true' } : {}) });
}

export async function deleteObjects(c: S3Context): Promise<void> {
  const bucket = requireBucket(c);
  c.segment.bucket(bucket);
  const doc = (await readXml(body(c))).Delete as Record<string, unknown> | undefined;
  if (!doc || typeof doc !== 'object') throw malformedXml();
  const objects = (doc.Object ?? []) as Array<Record<string, unknown>>;
  if (objects.length === 0) throw malformedXml();
  if (objects.length > MAX_BATCH_DELETE) throw new S3Error('MalformedXML', 400, `at most ${MAX_BATCH_DELETE} keys per request`);
  const quiet = doc.Quiet === 'true';
  const deleted: unknown[] = [];
  const errors: unknown[] = [];
  for (const o of objects) {
    const key = typeof o.Key === 'string' ? o.Key : undefined;
    const versionId = typeof o.VersionId === 'string' ? o.VersionId : undefined;
    if (key === undefined) throw malformedXml();
    try {
      const r = await deleteOne(c, bucket, key, versionId);
      if (!quiet) {
        deleted.push({
          Key: key, ...(versionId ? { VersionId: versionId } : {}),
          ...(r.deleteMarker ? { DeleteMarker: true, DeleteMarkerVersionId: r.versionId } : {}),
        });
      }
    } catch (err) {
      const e = toS3Error(err);
      errors.push({ Key: key, ...(versionId ? { VersionId: versionId } : {}), Code: e.code, Message: e.message });
    }
  }
  sendXml(c, 'DeleteResult', { Deleted: deleted, Error: errors });
}

import { type S3Context, body, param, requireBucket, send, sendXml } from '../context.ts';
import { S3Error, notImplemented } from '../errors.ts';
import { readXml } from '../xml.ts';

export async function createBucket(c: S3Context): Promise<void> {
  const bucket = requireBucket(c);
  // A CreateBucketConfiguration (region) may come along; any region is this segment.
  for await (const _ of body(c)) {
    // drained and verified; the location constraint has no meaning for a single segment
  }
  const acl = c.req.headers['x-amz-acl'];
  c.segment.createBucket(bucket, { publicRead: acl === 'public-read' });
  send(c, 200, { location: `/${bucket}` });
}

export function headBucket(c: S3Context): void {
  c.segment.bucket(requireBucket(c));
  send(c, 200, { 'x-amz-bucket-region': 'us-east-1' });
}

export function deleteBucket(c: S3Context): void {
  c.segment.deleteBucket(requireBucket(c));
  send(c, 204);
}

export function getBucketLocation(c: S3Context): void {
  c.segment.bucket(requireBucket(c));
  // Empty means us-east-1 to every SDK, which keeps their signing region consistent.
  sendXml(c, 'LocationConstraint', {});
}

export function getBucketVersioning(c: S3Context): void {
  const b = c.segment.bucket(requireBucket(c));
  sendXml(c, 'VersioningConfiguration', { Status: b.versioning });
}

export async function putBucketVersioning(c: S3Context): Promise<void> {
  const bucket = requireBucket(c);
  c.segment.bucket(bucket);
  const doc = await readXml(body(c));
  const status = (doc.VersioningConfiguration as Record<string, unknown> | undefined)?.Status;
  if (status === 'Enabled') {
    c.segment.updateBucket(bucket, { versioning: 'Enabled' });
    send(c, 200);
    return;
  }
  // Every write is a version in stitchfs (it is how segments converge); saying "suspended" and
  // keeping versions anyway would be a wrong success.
  if (status === 'Suspended') throw notImplemented('suspending versioning');
  throw new S3Error('MalformedXML', 400, 'VersioningConfiguration Status must be Enabled or Suspended');
}

export function unsupportedBucketSubresource(c: S3Context): never {
  const name = c.query.map(([k]) => k).join(',') || c.method;
  throw notImplemented(`bucket subresource '${name}'`);
}

export { param };

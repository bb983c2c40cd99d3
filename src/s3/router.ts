import { type S3Context, hasParam } from './context.ts';
import { notImplemented } from './errors.ts';
import * as bucket from './api/bucket.ts';
import { listObjects, listObjectVersions } from './api/list.ts';
import * as multipart from './api/multipart.ts';
import { deleteObject, deleteObjects } from './api/object-delete.ts';
import { getObject } from './api/object-get.ts';
import { putObject } from './api/object-put.ts';
import { listBuckets } from './api/service.ts';

export type Handler = (c: S3Context) => void | Promise<void>;

// Subresources stitchfs does not implement: answered 501 rather than served as if they were a
// plain GET/PUT of the bucket or object, which would be a wrong success.
const UNSUPPORTED = [
  'acl', 'policy', 'policyStatus', 'cors', 'lifecycle', 'tagging', 'website', 'logging', 'notification',
  'encryption', 'replication', 'object-lock', 'ownershipControls', 'publicAccessBlock', 'requestPayment',
  'accelerate', 'analytics', 'inventory', 'metrics', 'intelligent-tiering', 'legal-hold', 'retention',
  'torrent', 'restore', 'select', 'attributes', 'renameObject',
];

export function route(c: S3Context): Handler {
  const unsupported = UNSUPPORTED.find((name) => hasParam(c, name));
  if (unsupported) return () => { throw notImplemented(`the '${unsupported}' subresource`); };
  const m = c.method;
  if (!c.bucket) {
    if (m === 'GET') return listBuckets;
  } else if (!c.key) {
    if (m === 'GET' || m === 'HEAD') {
      if (hasParam(c, 'location')) return bucket.getBucketLocation;
      if (hasParam(c, 'versioning')) return bucket.getBucketVersioning;
      if (hasParam(c, 'versions')) return listObjectVersions;
      if (hasParam(c, 'uploads')) return multipart.listUploads;
      return m === 'HEAD' ? bucket.headBucket : listObjects;
    }
    if (m === 'PUT') return hasParam(c, 'versioning') ? bucket.putBucketVersioning : bucket.createBucket;
    if (m === 'DELETE') return bucket.deleteBucket;
    if (m === 'POST' && hasParam(c, 'delete')) return deleteObjects;
  } else {
    if (m === 'GET' || m === 'HEAD') return hasParam(c, 'uploadId') && m === 'GET' ? multipart.listParts : getObject;
    if (m === 'PUT') return hasParam(c, 'uploadId') ? multipart.uploadPart : putObject;
    if (m === 'DELETE') return hasParam(c, 'uploadId') ? multipart.abortUpload : deleteObject;
    if (m === 'POST' && hasParam(c, 'uploads')) return multipart.createUpload;
    if (m === 'POST' && hasParam(c, 'uploadId')) return multipart.completeUpload;
  }
  return () => { throw notImplemented(`${m} on this resource`); };
}

// Anonymous requests may only read, and only from public-read buckets.
export function anonymousAllowed(c: S3Context, publicRead: boolean): boolean {
  return publicRead && (c.method === 'GET' || c.method === 'HEAD') && !hasParam(c, 'uploadId') && !hasParam(c, 'uploads');
}

// The S3 operation a request names, from its method, path, query and headers: a small fixed set
// of names (AWS's own), so a metric label never grows with bucket or key names.
export type S3Op =
  | 'ListBuckets' | 'CreateBucket' | 'DeleteBucket' | 'HeadBucket' | 'ListObjects' | 'ListObjectsV2'
  | 'ListObjectVersions' | 'GetBucketLocation' | 'GetBucketVersioning' | 'PutBucketVersioning'
  | 'ListMultipartUploads' | 'DeleteObjects' | 'GetObject' | 'HeadObject' | 'PutObject' | 'CopyObject'
  | 'DeleteObject' | 'CreateMultipartUpload' | 'UploadPart' | 'UploadPartCopy' | 'CompleteMultipartUpload'
  | 'AbortMultipartUpload' | 'ListParts' | 'Unsupported' | 'Other';

const UNSUPPORTED = new Set([
  'acl', 'policy', 'policyStatus', 'cors', 'lifecycle', 'tagging', 'website', 'logging', 'notification',
  'encryption', 'replication', 'object-lock', 'ownershipControls', 'publicAccessBlock', 'requestPayment',
  'accelerate', 'analytics', 'inventory', 'metrics', 'intelligent-tiering', 'legal-hold', 'retention',
  'torrent', 'restore', 'select', 'attributes', 'renameObject',
]);

export function s3Operation(o: { method: string; url: string; host?: string; domains?: readonly string[]; copySource?: boolean }): S3Op {
  const url = o.url;
  const qi = url.indexOf('?');
  const path = qi < 0 ? url : url.slice(0, qi);
  const params = new Set<string>();
  for (const part of (qi < 0 ? '' : url.slice(qi + 1)).split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    params.add(eq < 0 ? part : part.slice(0, eq));
  }
  const host = (o.host ?? '').replace(/:\d+$/, '').toLowerCase();
  const vhost = (o.domains ?? []).some((d) => host.endsWith(`.${d.toLowerCase()}`));
  const parts = path.slice(1);
  let hasBucket: boolean;
  let hasKey: boolean;
  if (vhost) {
    hasBucket = true;
    hasKey = parts !== '';
  } else {
    const slash = parts.indexOf('/');
    hasBucket = parts !== '';
    hasKey = slash >= 0 && slash < parts.length - 1;
  }
  for (const p of params) if (UNSUPPORTED.has(p)) return 'Unsupported';
  const m = o.method.toUpperCase();
  if (!hasBucket) return m === 'GET' ? 'ListBuckets' : 'Other';
  if (!hasKey) {
    if (m === 'GET' || m === 'HEAD') {
      if (params.has('location')) return 'GetBucketLocation';
      if (params.has('versioning')) return 'GetBucketVersioning';
      if (params.has('versions')) return 'ListObjectVersions';
      if (params.has('uploads')) return 'ListMultipartUploads';
      if (m === 'HEAD') return 'HeadBucket';
      return params.has('list-type') ? 'ListObjectsV2' : 'ListObjects';
    }
    if (m === 'PUT') return params.has('versioning') ? 'PutBucketVersioning' : 'CreateBucket';
    if (m === 'DELETE') return 'DeleteBucket';
    if (m === 'POST' && params.has('delete')) return 'DeleteObjects';
    return 'Other';
  }
  if (m === 'GET') return params.has('uploadId') ? 'ListParts' : 'GetObject';
  if (m === 'HEAD') return 'HeadObject';
  if (m === 'PUT') {
    if (params.has('uploadId')) return o.copySource ? 'UploadPartCopy' : 'UploadPart';
    return o.copySource ? 'CopyObject' : 'PutObject';
  }
  if (m === 'DELETE') return params.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
  if (m === 'POST' && params.has('uploads')) return 'CreateMultipartUpload';
  if (m === 'POST' && params.has('uploadId')) return 'CompleteMultipartUpload';
  return 'Other';
}

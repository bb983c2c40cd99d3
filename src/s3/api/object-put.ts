import { type S3Context, body, declaredSize, header, requireKey, send, sendXml } from '../context.ts';
import { S3Error, notImplemented } from '../errors.ts';
import { iso, quoted } from '../xml.ts';
import { parseCopySource } from './copy-source.ts';
import { requestMetadata } from './object-headers.ts';

export async function putObject(c: S3Context): Promise<void> {
  const source = header(c, 'x-amz-copy-source');
  if (source !== undefined) return copyObject(c, source);
  const { bucket, key } = requireKey(c);
  c.segment.bucket(bucket);
  // Conditional writes (If-None-Match: * as a create-only lock, If-Match as compare-and-swap) are
  // not implemented; ignoring them would overwrite what the client asked to protect.
  if (header(c, 'if-none-match') !== undefined || header(c, 'if-match') !== undefined) {
    throw notImplemented('conditional PutObject (If-Match / If-None-Match)');
  }
  const md = requestMetadata(c);
  const b = body(c);
  const v = await c.segment.put(bucket, key, b, { ...md, size: declaredSize(c) });
  const headers: Record<string, string> = { etag: quoted(v.etag), 'x-amz-version-id': v.versionId };
  if (b.checksum) headers[`x-amz-checksum-${b.checksum.algorithm}`] = b.checksum.value;
  send(c, 200, headers);
}

async function copyObject(c: S3Context, sourceText: string): Promise<void> {
  const { bucket, key } = requireKey(c);
  const src = parseCopySource(sourceText);
  const directive = header(c, 'x-amz-metadata-directive') ?? 'COPY';
  if (directive !== 'COPY' && directive !== 'REPLACE') {
    throw new S3Error('InvalidArgument', 400, 'Unknown metadata directive.');
  }
  if (directive === 'COPY' && src.bucket === bucket && src.key === key && src.versionId === undefined) {
    throw new S3Error('InvalidRequest', 400,
      "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.");
  }
  const from = await c.segment.head(src.bucket, src.key, { versionId: src.versionId });
  const ifMatch = header(c, 'x-amz-copy-source-if-match');
  const ifNoneMatch = header(c, 'x-amz-copy-source-if-none-match');
  if ((ifMatch !== undefined && ifMatch.replaceAll('"', '') !== from.etag) || (ifNoneMatch !== undefined && ifNoneMatch.replaceAll('"', '') === from.etag)) {
    throw new S3Error('PreconditionFailed', 412, 'At least one of the pre-conditions you specified did not hold');
  }
  for await (const _ of body(c)) {
    // a copy has no payload; drained (and verified) so the connection can be reused
  }
  const replace = directive === 'REPLACE' ? requestMetadata(c) : undefined;
  const v = await c.segment.copy({ ...src, versionId: from.versionId }, { bucket, key }, replace && {
    contentType: replace.contentType ?? 'application/octet-stream', meta: replace.meta, headers: replace.headers,
  });
  sendXml(c, 'CopyObjectResult', { LastModified: iso(v.mtime), ETag: quoted(v.etag) }, {
    'x-amz-version-id': v.versionId, 'x-amz-copy-source-version-id': from.versionId,
  });
}

import { type S3Context, sendXml } from '../context.ts';
import { iso } from '../xml.ts';
import { owner } from './owner.ts';

export function listBuckets(c: S3Context): void {
  sendXml(c, 'ListAllMyBucketsResult', {
    Owner: owner(c),
    Buckets: { Bucket: c.segment.listBuckets().map((b) => ({ Name: b.name, CreationDate: iso(b.created) })) },
  });
}

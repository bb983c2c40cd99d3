import { createHash, randomUUID } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import type { ChunkRef } from '../core/chunk-manifest.ts';
import { StitchError } from '../core/errors.ts';
import { isInlineCid } from '../core/cid.ts';
import { checkKey } from '../core/names.ts';
import type { PartRecord, UploadRecord } from '../store/meta-store.ts';
import { toBody, type Body } from './body.ts';
import { ingest } from './ingest.ts';
import { DEFAULT_CONTENT_TYPE } from '../core/version-manifest.ts';
import type { ObjectVersion, PutOptions, Segment } from './segment.ts';

// S3's limits, so clients that split by them (aws-cli: 8 MiB parts) behave as they do on AWS.
export const MIN_PART_SIZE = 5 * 1024 * 1024;
export const MAX_PART_NUMBER = 10_000;

type UploadInit = Pick<PutOptions, 'contentType' | 'meta' | 'headers'>;

export interface PartInfo {
  part: number;
  etag: string;
  size: number;
  created: number;
}

// Multipart uploads: each part is chunked and stored as it arrives; completing concatenates the
// parts' chunk lists into one manifest, so no byte is read or written twice.
export class Uploads {
  private readonly segment: Segment;
  constructor(segment: Segment) {
    this.segment = segment;
  }

  create(bucket: string, key: string, init: UploadInit = {}): UploadRecord {
    this.segment.bucket(bucket);
    checkKey(key);
    const rec: UploadRecord = {
      uploadId: randomUUID().replaceAll('-', ''),
      bucket, key, created: Date.now(),
      init: dagCbor.encode({ contentType: init.contentType ?? DEFAULT_CONTENT_TYPE, meta: init.meta ?? {}, headers: init.headers ?? {} }),
    };
    this.segment.meta.createUpload(rec);
    return rec;
  }

  get(bucket: string, key: string, uploadId: string): UploadRecord {
    const rec = this.segment.meta.getUpload(uploadId);
    if (!rec || rec.bucket !== bucket || rec.key !== key) {
      throw new StitchError('NoSuchUpload', `no upload '${uploadId}' for ${bucket}/${key}`);
    }
    return rec;
  }

  async putPart(
    bucket: string, key: string, uploadId: string, part: number, body: Body,
    opts: { contentMd5?: Buffer; size?: number } = {},
  ): Promise<PartInfo> {
    this.get(bucket, key, uploadId);
    if (!Number.isInteger(part) || part < 1 || part > MAX_PART_NUMBER) {
      throw new StitchError('InvalidArgument', `part number must be an integer from 1 to ${MAX_PART_NUMBER}`);
    }
    const s = this.segment;
    const got = await ingest(toBody(body), s.store, s.scanner, s.guard, s.isLocal);
    try {
      if (opts.size !== undefined && got.size !== opts.size) {
        throw new StitchError('BadDigest', `part was ${got.size} bytes, expected ${opts.size}`);
      }
      if (opts.contentMd5 && !opts.contentMd5.equals(got.md5)) {
        throw new StitchError('BadDigest', 'the Content-MD5 you specified did not match what was received');
      }
      await s.store.flush();
      // The upload may have been aborted or completed while this part streamed in.
      this.get(bucket, key, uploadId);
      const rec: PartRecord = {
        uploadId, part, etag: got.md5.toString('hex'), size: got.size,
        chunks: dagCbor.encode(got.refs), created: Date.now(),
      };
      s.meta.addLocalChunks(got.chunks);
      s.meta.putPart(rec, got.chunks.map((c) => c.cid));
      return { part, etag: rec.etag, size: rec.size, created: rec.created };
    } finally {
      s.guard.release(got.chunks.map((c) => c.cid));
    }
  }

  listParts(bucket: string, key: string, uploadId: string): PartInfo[] {
    this.get(bucket, key, uploadId);
    return this.segment.meta.listParts(uploadId).map(({ part, etag, size, created }) => ({ part, etag, size, created }));
  }

  list(bucket: string, prefix = '', after?: string, limit = 1000): UploadRecord[] {
    this.segment.bucket(bucket);
    return this.segment.meta.listUploads(bucket, prefix, after, limit);
  }

  abort(bucket: string, key: string, uploadId: string): void {
    this.get(bucket, key, uploadId);
    this.segment.meta.deleteUpload(uploadId);
  }

  async complete(
    bucket: string, key: string, uploadId: string, parts: { part: number; etag: string }[],
  ): Promise<ObjectVersion> {
    const upload = this.get(bucket, key, uploadId);
    if (parts.length === 0) throw new StitchError('InvalidPart', 'no parts given');
    const uploaded = new Map(this.segment.meta.listParts(uploadId).map((p) => [p.part, p]));
    const chosen: PartRecord[] = [];
    for (let i = 0; i < parts.length; i++) {
      if (i > 0 && parts[i].part <= parts[i - 1].part) {
        throw new StitchError('InvalidPartOrder', 'the list of parts was not in ascending order');
      }
      const p = uploaded.get(parts[i].part);
      if (!p || p.etag !== parts[i].etag.replaceAll('"', '')) {
        throw new StitchError('InvalidPart', `part ${parts[i].part} was not uploaded or its ETag does not match`);
      }
      chosen.push(p);
    }
    chosen.forEach((p, i) => {
      if (i < chosen.length - 1 && p.size < MIN_PART_SIZE) {
        throw new StitchError('EntityTooSmall', `part ${p.part} is ${p.size} bytes; every part but the last must be at least ${MIN_PART_SIZE}`);
      }
    });
    const refs = chosen.flatMap((p) => dagCbor.decode(p.chunks) as ChunkRef[]);
    const md5s = Buffer.concat(chosen.map((p) => Buffer.from(p.etag, 'hex')));
    const init = dagCbor.decode(upload.init) as Required<UploadInit>;
    const stored = refs.filter(([cid]) => !isInlineCid(cid)).map(([cid, size]) => ({ cid: cid.toString(), size }));
    const cids = stored.map((c) => c.cid);
    const s = this.segment;
    for (const cid of cids) s.guard.hold(cid);
    try {
      const version = await s.commitContent(bucket, key, refs, stored, {
        size: chosen.reduce((n, p) => n + p.size, 0),
        etag: `${createHash('md5').update(md5s).digest('hex')}-${chosen.length}`,
        contentType: init.contentType, meta: init.meta, headers: init.headers,
      });
      s.meta.deleteUpload(uploadId);
      return version;
    } finally {
      s.guard.release(cids);
    }
  }
}

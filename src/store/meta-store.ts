// Everything about a segment except chunk bytes: buckets, the name index, versions, the change
// log, chunk references and multipart uploads. Calls are synchronous on purpose: each one is a
// committed transaction by the time it returns, so callers never interleave half-applied state.

export type Versioning = 'Enabled' | 'Suspended';

export interface BucketRecord {
  name: string;
  created: number;
  versioning: Versioning;
  publicRead: boolean;
}

export interface VersionRecord {
  vid: string;
  bucket: string;
  key: string;
  hlc: number;
  origin: string;
  deleted: boolean;
  size: number;
  etag: string;
  mtime: number;
  // The signed DAG-CBOR version manifest, verbatim: what is gossiped and what the CID names.
  manifest: Uint8Array;
}

export interface CommitItem {
  rec: VersionRecord;
  refs: string[];
  localChunks: LocalChunk[];
  seq?: number;
}

export interface ListQuery {
  prefix?: string;
  delimiter?: string;
  // Exclusive: listing starts after this key (S3 marker / start-after / continuation).
  after?: string;
  limit: number;
}

export interface VersionListQuery extends ListQuery {
  // With `after`: continue after this version of that key.
  afterVersion?: string;
}

export interface ListPage<T> {
  items: T[];
  commonPrefixes: string[];
  truncated: boolean;
  // The last key or common prefix returned: where the next page starts.
  next?: string;
  nextVersion?: string;
}

export interface ChangeEntry {
  origin: string;
  seq: number;
  vid: string;
}

export interface UploadRecord {
  uploadId: string;
  bucket: string;
  key: string;
  created: number;
  // Encoded options of the future version (content type, metadata), opaque here.
  init: Uint8Array;
}

export interface PartRecord {
  uploadId: string;
  part: number;
  etag: string;
  size: number;
  // Encoded chunk list of the part, opaque here; also keeps its chunks alive against GC.
  chunks: Uint8Array;
  created: number;
}

export interface LocalChunk {
  cid: string;
  size: number;
}

export interface MetaStore {
  getSetting(name: string): string | undefined;
  setSetting(name: string, value: string): void;
  deleteSetting(name: string): boolean;
  settingsWithPrefix(prefix: string): Array<{ name: string; value: string }>;

  // `event` is the bucket's signed change-log entry, committed in the same transaction.
  createBucket(rec: BucketRecord, event?: VersionRecord): boolean;
  getBucket(name: string): BucketRecord | undefined;
  listBuckets(): BucketRecord[];
  updateBucket(name: string, patch: Partial<Omit<BucketRecord, 'name'>>): void;
  // Deletes only when the bucket has no versions and no uploads; false otherwise.
  deleteBucketIfEmpty(name: string, event?: VersionRecord): boolean;

  // One transaction: the version, its chunk references, newly stored local chunks, the change
  // log entry and the head of its key when it now sorts highest. Returns the change-log sequence.
  commitVersion(rec: VersionRecord, refs: string[], localChunks: LocalChunk[], seq?: number): number;
  // Several versions in one transaction (group commit): one fsync for all of them. Items with a
  // `seq` come from another segment and keep their origin's number; duplicates return 0.
  commitVersions(batch: CommitItem[]): number[];
  getVersion(vid: string): VersionRecord | undefined;
  head(bucket: string, key: string): VersionRecord | undefined;
  // The version current at a given HLC time (may be a delete marker).
  versionAt(bucket: string, key: string, hlc: number): VersionRecord | undefined;
  listHeads(bucket: string, q: ListQuery): ListPage<VersionRecord>;
  listVersions(bucket: string, q: VersionListQuery): ListPage<VersionRecord>;
  // Removes one version and its references; the key's head falls back to the next highest.
  deleteVersion(vid: string): void;

  changes(origin: string, afterSeq: number, limit: number): ChangeEntry[];
  // Per origin, the highest sequence number up to which every change-log entry is held.
  sequenceVector(): Record<string, number>;
  bucketsReferencing(cid: string): string[];
  // True when a version created by `origin` references the chunk.
  referencedByOrigin(cid: string, origin: string): boolean;
  // Chunks a version references that this segment does not hold (remote data not fetched yet).
  missingChunks(vid: string): string[];
  // Versions of a bucket from other origins that reference chunks not held here.
  remoteVersionsMissingChunks(bucket: string, self: string): string[];
  maxHlc(): number;

  addLocalChunks(chunks: LocalChunk[]): void;
  hasLocalChunk(cid: string): boolean;
  removeLocalChunk(cid: string): void;
  localChunks(): Iterable<LocalChunk>;
  isReferenced(cid: string): boolean;
  referencedCids(): Iterable<string>;
  localChunkStats(): { chunks: number; bytes: number };
  versionStats(): { objects: number; versions: number; logicalBytes: number };

  createUpload(rec: UploadRecord): void;
  getUpload(uploadId: string): UploadRecord | undefined;
  listUploads(bucket: string, prefix: string, after: string | undefined, limit: number): UploadRecord[];
  // `refs` keep the part's chunks alive against GC until the upload is completed or aborted.
  putPart(rec: PartRecord, refs: string[]): void;
  listParts(uploadId: string): PartRecord[];
  // Removes the upload and its parts (after completion or abort).
  deleteUpload(uploadId: string): void;

  close(): void;
}

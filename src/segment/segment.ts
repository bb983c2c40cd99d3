import type { KeyObject } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CID } from 'multiformats/cid';
import { buildContent, allCids, type ChunkRef, type ContentRef } from '../core/chunk-manifest.ts';
import { DEFAULT_CHUNKER, scannerConfig, type ChunkerParams, type CutScanner } from '../core/chunker.ts';
import { StitchError } from '../core/errors.ts';
import { HybridClock, hlcFromMillis } from '../core/hlc.ts';
import { checkBucketName, checkKey } from '../core/names.ts';
import { isInlineCid, parseCid } from '../core/cid.ts';
import {
  DEFAULT_CONTENT_TYPE, decodeVersion, signVersion, verifyVersion, type PosixAttrs, type SignedVersion, type VersionManifest,
} from '../core/version-manifest.ts';
import { cutScannerFor } from '../native/cdc.ts';
import { FsChunkStore } from '../store/fs-chunk-store.ts';
import type { ChunkStore } from '../store/chunk-store.ts';
import type { BucketRecord, ListPage, LocalChunk, MetaStore, VersionRecord, Versioning } from '../store/meta-store.ts';
import { SqliteMetaStore } from '../store/sqlite-meta-store.ts';
import { ChunkGuard } from './chunk-guard.ts';
import { GroupCommit } from './group-commit.ts';
import { ChunkReader } from './chunk-reader.ts';
import type { ChunkSource } from './chunk-source.ts';
import { DataLock } from './data-lock.ts';
import { loadOrCreateIdentity, type Identity } from './identity.ts';
import { ingest } from './ingest.ts';
import { toBody, type Body } from './body.ts';
import { collectGarbage, type GcReport } from './gc.ts';
import { scrub, type ScrubReport } from './scrub.ts';
import { Uploads } from './uploads.ts';

export interface SegmentStats {
  name: string;
  buckets: number;
  objects: number;
  versions: number;
  logicalBytes: number;
  storedBytes: number;
  chunks: number;
  dedupRatio: number;
}

export interface SegmentOptions {
  dataDir: string;
  // Name of a new segment; an existing one keeps the name it was created with.
  name?: string;
  chunker?: ChunkerParams;
  // Read-only opens take no lock and never write (CLI reads beside a running server).
  readOnly?: boolean;
}

export interface ObjectSummary {
  bucket: string;
  key: string;
  versionId: string;
  size: number;
  etag: string;
  mtime: number;
  hlc: number;
  origin: string;
  deleted: boolean;
}

export interface ObjectVersion extends ObjectSummary {
  contentType: string;
  meta: Record<string, string>;
  headers: Record<string, string>;
  posix?: PosixAttrs;
  content: ContentRef;
  isLatest: boolean;
}

export interface PutOptions {
  contentType?: string;
  meta?: Record<string, string>;
  headers?: Record<string, string>;
  posix?: PosixAttrs;
  // Expected MD5 of the body (S3 Content-MD5): a mismatch aborts the put with BadDigest.
  contentMd5?: Buffer;
  // Expected length (Content-Length): a shorter or longer body aborts the put.
  size?: number;
  onProgress?: (bytes: number) => void;
}

export interface VersionSelector {
  versionId?: string;
  // Wall-clock milliseconds: the version that was current then.
  at?: number;
}

export type ByteRange = { start: number; end?: number } | { suffix: number };

export interface GetResult {
  version: ObjectVersion;
  start: number;
  end: number;
  body: AsyncIterable<Buffer>;
}

export interface ListOptions {
  prefix?: string;
  delimiter?: string;
  after?: string;
  afterVersion?: string;
  limit?: number;
}

// Above this a listing page is cut: S3's own max-keys, and a bound on one query's memory.
export const MAX_LIST_LIMIT = 1000;

function summary(r: VersionRecord): ObjectSummary {
  return {
    bucket: r.bucket, key: r.key, versionId: r.vid, size: r.size, etag: r.etag,
    mtime: r.mtime, hlc: r.hlc, origin: r.origin, deleted: r.deleted,
  };
}

// One site's store: the only door front-ends (S3, FUSE, CLI, web) and the gateway go through.
export class Segment extends EventEmitter {
  readonly name: string;
  readonly dataDir: string;
  readonly identity: Identity;
  readonly chunker: ChunkerParams;
  readonly store: ChunkStore;
  readonly meta: MetaStore;
  readonly reader: ChunkReader;
  readonly guard = new ChunkGuard();
  private readonly commits: GroupCommit;
  readonly readOnly: boolean;
  readonly scanner: CutScanner;
  readonly uploads: Uploads;
  readonly isLocal = (cid: string): boolean => this.meta.hasLocalChunk(cid);
  private readonly clock: HybridClock;
  private readonly lock: DataLock | undefined;

  private constructor(o: {
    name: string; dataDir: string; identity: Identity; chunker: ChunkerParams; store: ChunkStore;
    meta: MetaStore; readOnly: boolean; lock: DataLock | undefined;
  }) {
    super();
    this.name = o.name;
    this.dataDir = o.dataDir;
    this.identity = o.identity;
    this.chunker = o.chunker;
    this.store = o.store;
    this.meta = o.meta;
    this.readOnly = o.readOnly;
    this.lock = o.lock;
    this.scanner = cutScannerFor(scannerConfig(o.chunker));
    this.clock = new HybridClock(o.meta.maxHlc());
    this.reader = new ChunkReader(o.store, o.meta, !o.readOnly);
    this.uploads = new Uploads(this);
    this.commits = new GroupCommit(o.meta);
  }

  static async open(opts: SegmentOptions): Promise<Segment> {
    const dataDir = opts.dataDir;
    const readOnly = opts.readOnly ?? false;
    if (!readOnly) mkdirSync(dataDir, { recursive: true });
    else if (!existsSync(join(dataDir, 'meta.db'))) throw new StitchError('NoSuchSegment', `no segment in ${dataDir}`);
    const lock = readOnly ? undefined : DataLock.acquire(dataDir);
    try {
      const meta = new SqliteMetaStore(join(dataDir, 'meta.db'));
      const name = meta.getSetting('name') ?? opts.name ?? 'local';
      const storedChunker = meta.getSetting('chunker');
      // The chunker is fixed at creation: changing it would re-cut every object and defeat dedup.
      const chunker: ChunkerParams = storedChunker ? JSON.parse(storedChunker) : (opts.chunker ?? DEFAULT_CHUNKER);
      if (!readOnly) {
        if (!meta.getSetting('name')) meta.setSetting('name', name);
        if (!storedChunker) meta.setSetting('chunker', JSON.stringify(chunker));
      }
      const identity = loadOrCreateIdentity(dataDir);
      const store = await FsChunkStore.open(join(dataDir, 'chunks'), { readOnly });
      return new Segment({ name, dataDir, identity, chunker, store, meta, readOnly, lock });
    } catch (err) {
      lock?.release();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.store.close();
    this.meta.close();
    this.lock?.release();
  }

  set chunkSource(source: ChunkSource | undefined) {
    this.reader.source = source;
  }

  private writable(): void {
    if (this.readOnly) throw new StitchError('SegmentLocked', 'segment is open read-only');
  }

  // ---- buckets ----

  createBucket(name: string, opts: { publicRead?: boolean } = {}): BucketRecord {
    this.writable();
    checkBucketName(name);
    const rec: BucketRecord = { name, created: Date.now(), versioning: 'Enabled', publicRead: opts.publicRead ?? false };
    if (this.meta.getBucket(name)) throw new StitchError('BucketAlreadyExists', `bucket '${name}' already exists`);
    const event = this.sign(bucketEvent(name, false)).rec;
    if (!this.meta.createBucket(rec, event)) throw new StitchError('BucketAlreadyExists', `bucket '${name}' already exists`);
    this.emit('version', event, this.ownSeq());
    return rec;
  }

  bucket(name: string): BucketRecord {
    const rec = this.meta.getBucket(name);
    if (!rec) throw new StitchError('NoSuchBucket', `no bucket '${name}'`);
    return rec;
  }

  listBuckets(): BucketRecord[] {
    return this.meta.listBuckets();
  }

  updateBucket(name: string, patch: { versioning?: Versioning; publicRead?: boolean }): void {
    this.writable();
    this.bucket(name);
    this.meta.updateBucket(name, patch);
  }

  deleteBucket(name: string): void {
    this.writable();
    this.bucket(name);
    const event = this.sign(bucketEvent(name, true)).rec;
    if (!this.meta.deleteBucketIfEmpty(name, event)) {
      throw new StitchError('BucketNotEmpty', `bucket '${name}' is not empty (it still holds versions or uploads)`);
    }
    this.emit('version', event, this.ownSeq());
  }

  // ---- writes ----

  async put(bucket: string, key: string, body: Body, opts: PutOptions = {}): Promise<ObjectVersion> {
    this.writable();
    this.bucket(bucket);
    checkKey(key);
    const got = await ingest(toBody(body), this.store, this.scanner, this.guard, this.isLocal, opts.onProgress);
    try {
      if (opts.size !== undefined && got.size !== opts.size) {
        throw new StitchError('BadDigest', `body was ${got.size} bytes, expected ${opts.size}`);
      }
      if (opts.contentMd5 && !opts.contentMd5.equals(got.md5)) {
        throw new StitchError('BadDigest', 'the Content-MD5 you specified did not match what was received');
      }
      return await this.commitContent(bucket, key, got.refs, got.chunks, {
        size: got.size,
        etag: got.md5.toString('hex'),
        contentType: opts.contentType ?? DEFAULT_CONTENT_TYPE,
        meta: opts.meta ?? {},
        headers: opts.headers ?? {},
        posix: opts.posix,
      });
    } finally {
      this.guard.release(got.chunks.map((c) => c.cid));
    }
  }

  // Makes a new version of chunks already stored (and held in the guard by the caller): stores the
  // manifest tree if any, flushes the chunk store, then commits metadata in one transaction.
  async commitContent(
    bucket: string, key: string, refs: ChunkRef[], chunks: LocalChunk[],
    attrs: { size: number; etag: string; contentType: string; meta: Record<string, string>; headers: Record<string, string>; posix?: PosixAttrs },
  ): Promise<ObjectVersion> {
    const { content, blocks } = buildContent(refs);
    const blockChunks = blocks.map((b) => ({ cid: b.cid.toString(), size: b.bytes.length }));
    for (const b of blockChunks) this.guard.hold(b.cid);
    try {
      await Promise.all(blocks.filter((b) => !this.isLocal(b.cid.toString())).map((b) => this.store.put(b.cid, b.bytes)));
      await this.store.flush();
      const stored = [...chunks, ...blockChunks];
      return await this.commit({ bucket, key, ...attrs, content, deleted: false }, stored.map((c) => c.cid), stored);
    } finally {
      this.guard.release(blockChunks.map((b) => b.cid));
    }
  }

  // Stores one chunk of content assembled outside `put` (FUSE writes, chunk-level patches) and
  // holds it in the guard against GC; the caller commits it with commitContent, then releases it.
  async storeChunk(cid: CID, bytes: Uint8Array): Promise<void> {
    this.writable();
    const name = cid.toString();
    this.guard.hold(name);
    try {
      if (!this.isLocal(name)) await this.store.put(cid, bytes);
    } catch (err) {
      this.guard.release([name]);
      throw err;
    }
  }

  // Signs a new local version of `fields` (sync: no await between reading the head and ticking
  // the clock, so the parent link and HLC order agree).
  private sign(fields: Omit<VersionManifest, 'mtime' | 'parent' | 'hlc' | 'origin'>): { rec: VersionRecord; signed: SignedVersion } {
    const parent = fields.key === '' ? undefined : this.meta.head(fields.bucket, fields.key);
    const hlc = this.clock.tick();
    const manifest: VersionManifest = {
      ...fields,
      mtime: Date.now(),
      parent: parent ? parseCid(parent.vid) : null,
      hlc,
      origin: this.name,
    };
    if (manifest.posix === undefined) delete manifest.posix;
    const signed = signVersion(manifest, this.identity.privateKey);
    return { rec: recordOf(signed), signed };
  }

  // `refs` are every block the version needs (kept from GC); `stored` the ones now stored locally.
  private async commit(
    fields: Omit<VersionManifest, 'mtime' | 'parent' | 'hlc' | 'origin'>,
    refs: string[],
    stored: LocalChunk[],
  ): Promise<ObjectVersion> {
    const { rec, signed } = this.sign(fields);
    const seq = await this.commits.commit(rec, [...new Set(refs)], stored);
    this.emit('version', rec, seq);
    return this.toVersion(rec, signed);
  }

  // A version signed by another segment (gossip or catch-up), already checked against the
  // allowlist by the caller; verified again here because this is the store's own door. It joins
  // the name index at once; its chunks stay remote until read, pinned or replicated.
  async applyRemote(bytes: Uint8Array, seq: number, originKey: KeyObject): Promise<'applied' | 'duplicate'> {
    this.writable();
    const signed = decodeVersion(bytes);
    const m = signed.manifest;
    if (m.origin === this.name) return 'duplicate';
    if (!verifyVersion(signed, originKey)) throw new StitchError('InvalidArgument', `version ${signed.vid} has a bad signature for origin ${m.origin}`);
    if (!Number.isSafeInteger(seq) || seq < 1) throw new StitchError('InvalidArgument', `bad sequence number ${seq}`);
    checkBucketName(m.bucket);
    if (m.key !== '') checkKey(m.key);
    this.clock.observe(m.hlc);
    const rec = recordOf(signed);
    if (this.meta.getVersion(rec.vid)) return 'duplicate';
    if (m.key === '') return this.applyBucketEvent(rec, seq);
    // Versions may overtake their bucket's creation on the wire; the bucket exists at its origin.
    this.meta.createBucket({ name: m.bucket, created: m.mtime, versioning: 'Enabled', publicRead: false });
    const refs = 'chunks' in m.content
      ? m.content.chunks.filter(([cid]) => !isInlineCid(cid)).map(([cid]) => cid.toString())
      : [m.content.tree.toString()];
    const got = await this.commits.commit(rec, [...new Set(refs)], [], seq);
    if (got === 0) return 'duplicate';
    this.emit('remote-version', rec, seq);
    return 'applied';
  }

  private applyBucketEvent(rec: VersionRecord, seq: number): 'applied' | 'duplicate' {
    if (!rec.deleted && !this.meta.getBucket(rec.bucket)) {
      // Without the event: logging it here would give it the next local sequence number of its
      // origin rather than the origin's own, and make the commit below see a duplicate (so no
      // 'remote-version' event, and the bucket's topic never followed).
      this.meta.createBucket({ name: rec.bucket, created: rec.mtime, versioning: 'Enabled', publicRead: false });
    } else if (rec.deleted && this.meta.getBucket(rec.bucket)) {
      // A bucket that still holds versions here (written concurrently elsewhere) is kept; the
      // event is logged so every segment's change log still converges.
      this.meta.deleteBucketIfEmpty(rec.bucket);
    }
    const got = this.meta.commitVersion(rec, [], [], seq);
    if (got === 0) return 'duplicate';
    this.emit('remote-version', rec, seq);
    return 'applied';
  }

  sequenceVector(): Record<string, number> {
    return this.meta.sequenceVector();
  }

  // The latest sequence number of this segment's own change log (one writer, so no gaps).
  private ownSeq(): number {
    return this.meta.sequenceVector()[this.name] ?? 0;
  }

  // Change-log entries of one origin after `afterSeq`, with their signed manifests.
  changesSince(origin: string, afterSeq: number, limit: number): Array<{ origin: string; seq: number; bytes: Uint8Array; bucket: string }> {
    return this.meta.changes(origin, afterSeq, limit).flatMap((e) => {
      const v = this.meta.getVersion(e.vid);
      return v ? [{ origin: e.origin, seq: e.seq, bytes: v.manifest, bucket: v.bucket }] : [];
    });
  }

  async delete(bucket: string, key: string): Promise<ObjectVersion> {
    this.writable();
    this.bucket(bucket);
    checkKey(key);
    return this.commit({
      bucket, key, size: 0, etag: '', contentType: DEFAULT_CONTENT_TYPE, meta: {}, headers: {},
      content: { chunks: [] }, deleted: true,
    }, [], []);
  }

  // Removes one version for good (S3 DeleteObject with versionId). Its chunks become garbage for
  // GC once no other version references them.
  deleteVersion(bucket: string, key: string, versionId: string): ObjectSummary {
    this.writable();
    const rec = this.versionRecord(bucket, key, versionId);
    this.meta.deleteVersion(rec.vid);
    return summary(rec);
  }

  async copy(
    src: { bucket: string; key: string } & VersionSelector,
    dst: { bucket: string; key: string },
    replace?: { contentType?: string; meta?: Record<string, string>; headers?: Record<string, string>; posix?: PosixAttrs },
  ): Promise<ObjectVersion> {
    this.writable();
    this.bucket(dst.bucket);
    checkKey(dst.key);
    const from = await this.head(src.bucket, src.key, src);
    const ctx = { bucket: src.bucket, key: src.key, vid: from.versionId };
    const { chunks, blocks } = await allCids(from.content, (cid) => this.reader.read(cid, ctx));
    // Sharing chunks copies no data; the refs keep them alive as long as either version lives.
    const refs = [...chunks.filter(([cid]) => !isInlineCid(cid)), ...blocks.map((cid) => [cid])].map(([cid]) => cid.toString());
    for (const cid of refs) this.guard.hold(cid);
    try {
      return await this.commit({
        bucket: dst.bucket, key: dst.key, size: from.size, etag: from.etag,
        contentType: replace?.contentType ?? from.contentType,
        meta: replace?.meta ?? from.meta,
        headers: replace?.headers ?? from.headers,
        posix: replace?.posix ?? from.posix,
        content: from.content,
        deleted: false,
      }, refs, []);
    } finally {
      this.guard.release(refs);
    }
  }

  // ---- reads ----

  private versionRecord(bucket: string, key: string, versionId: string): VersionRecord {
    this.bucket(bucket);
    try {
      parseCid(versionId);
    } catch {
      throw new StitchError('InvalidVersionId', `invalid version id '${versionId}'`);
    }
    const rec = this.meta.getVersion(versionId);
    if (!rec || rec.bucket !== bucket || rec.key !== key) {
      throw new StitchError('NoSuchVersion', `no version '${versionId}' of ${bucket}/${key}`);
    }
    return rec;
  }

  private toVersion(rec: VersionRecord, signed: SignedVersion = decodeVersion(rec.manifest)): ObjectVersion {
    const m = signed.manifest;
    const head = this.meta.head(rec.bucket, rec.key);
    return {
      ...summary(rec),
      contentType: m.contentType,
      meta: m.meta,
      headers: m.headers,
      posix: m.posix,
      content: m.content,
      isLatest: head?.vid === rec.vid,
    };
  }

  // The selected version; a delete marker only when asked for by version id.
  async head(bucket: string, key: string, sel: VersionSelector = {}): Promise<ObjectVersion> {
    this.bucket(bucket);
    checkKey(key);
    let rec: VersionRecord | undefined;
    if (sel.versionId !== undefined) return this.toVersion(this.versionRecord(bucket, key, sel.versionId));
    if (sel.at !== undefined) rec = this.meta.versionAt(bucket, key, hlcFromMillis(sel.at));
    else rec = this.meta.head(bucket, key);
    if (!rec || rec.deleted) {
      const err = new StitchError('NoSuchKey', `no object ${bucket}/${key}${sel.at !== undefined ? ` at ${new Date(sel.at).toISOString()}` : ''}`);
      throw Object.assign(err, { deleteMarker: rec?.deleted ? rec.vid : undefined });
    }
    return this.toVersion(rec);
  }

  async get(bucket: string, key: string, opts: VersionSelector & { range?: ByteRange } = {}): Promise<GetResult> {
    const version = await this.head(bucket, key, opts);
    if (version.deleted) throw new StitchError('NoSuchKey', `${bucket}/${key} version ${version.versionId} is a delete marker`);
    const [start, end] = resolveRange(opts.range, version.size);
    const ctx = { bucket, key, vid: version.versionId };
    return { version, start, end, body: this.reader.range(version.content, start, end, ctx) };
  }

  list(bucket: string, opts: ListOptions = {}): ListPage<ObjectSummary> {
    this.bucket(bucket);
    const page = this.meta.listHeads(bucket, { ...opts, limit: clampLimit(opts.limit) });
    return { ...page, items: page.items.map(summary) };
  }

  versions(bucket: string, opts: ListOptions = {}): ListPage<ObjectSummary & { isLatest: boolean }> {
    this.bucket(bucket);
    const page = this.meta.listVersions(bucket, { ...opts, limit: clampLimit(opts.limit) });
    let lastKey: string | undefined;
    const items = page.items.map((r) => {
      // Rows come newest first within a key, so the first row of each key is its head.
      const isLatest = r.key !== lastKey && this.meta.head(bucket, r.key)?.vid === r.vid;
      lastKey = r.key;
      return { ...summary(r), isLatest };
    });
    return { ...page, items };
  }

  stats(): SegmentStats {
    const v = this.meta.versionStats();
    const c = this.meta.localChunkStats();
    return {
      name: this.name,
      buckets: this.meta.listBuckets().length,
      objects: v.objects,
      versions: v.versions,
      logicalBytes: v.logicalBytes,
      storedBytes: c.bytes,
      chunks: c.chunks,
      dedupRatio: c.bytes === 0 ? 1 : v.logicalBytes / c.bytes,
    };
  }

  scrub(opts: { repair?: boolean } = {}): Promise<ScrubReport> {
    if (opts.repair) this.writable();
    return scrub(this, opts);
  }

  gc(graceMs?: number): Promise<GcReport> {
    this.writable();
    return collectGarbage(this, graceMs);
  }

  // Loads any block of a version (tree manifests); used by tools that walk content.
  readBlock(cid: CID, ctx: { bucket: string; key: string; vid: string }): Promise<Buffer> {
    return this.reader.read(cid, ctx);
  }
}

function recordOf(signed: SignedVersion): VersionRecord {
  const m = signed.manifest;
  return {
    vid: signed.vid.toString(), bucket: m.bucket, key: m.key, hlc: m.hlc, origin: m.origin,
    deleted: m.deleted, size: m.size, etag: m.etag, mtime: m.mtime, manifest: signed.bytes,
  };
}

// Buckets are part of the namespace: their creation and deletion are signed versions with an
// empty key, so they gossip, catch up and order exactly like objects.
function bucketEvent(bucket: string, deleted: boolean): Omit<VersionManifest, 'mtime' | 'parent' | 'hlc' | 'origin'> {
  return { bucket, key: '', size: 0, etag: '', contentType: DEFAULT_CONTENT_TYPE, meta: {}, headers: {}, content: { chunks: [] }, deleted };
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_LIMIT;
  if (!Number.isInteger(limit) || limit < 0) throw new StitchError('InvalidArgument', `invalid listing limit ${limit}`);
  return Math.min(limit, MAX_LIST_LIMIT);
}

// [start, end) of a byte range against the object size, with S3's rules: a range that starts at
// or past the end is InvalidRange; an end past the size is clamped.
export function resolveRange(range: ByteRange | undefined, size: number): [number, number] {
  if (!range) return [0, size];
  if ('suffix' in range) {
    if (!(range.suffix > 0) || size === 0) throw new StitchError('InvalidRange', `unsatisfiable suffix range ${range.suffix} of ${size} bytes`);
    return [Math.max(0, size - range.suffix), size];
  }
  const end = range.end === undefined ? size : Math.min(range.end, size);
  if (!(range.start >= 0) || range.start >= size || end <= range.start) {
    throw new StitchError('InvalidRange', `range ${range.start}-${range.end ?? ''} not satisfiable for ${size} bytes`);
  }
  return [range.start, end];
}

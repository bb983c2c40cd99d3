// The uncommitted state of a file open for writing, shared by every writable handle of its inode.
//
// Two modes:
// - streaming: a file written front to back from empty (cp, tar x, git, dd) is cut into chunks as
//   the writes arrive, each chunk stored at once, with the MD5 of the whole content computed on
//   the way: the committed version has a true MD5 ETag and nothing is ever held whole in memory.
// - patch: any other write (into existing content, out of order, after a truncate) is kept as a
//   dirty extent over the base content; a commit re-cuts only the chunks around the extents
//   (src/segment/patch.ts) and splices them into the base chunk list. Past MAX_DIRTY_BYTES of
//   extents, the same patch runs as a checkpoint (new chunks stored and held, no version) so that
//   memory stays bounded.
// A version is committed by commit() (close, fsync); nothing is committed for a file only read.
import { createHash } from 'node:crypto';
import type { CID } from 'multiformats/cid';
import { allCids, type ChunkRef, type ContentRef } from '../core/chunk-manifest.ts';
import { cidForChunk, isInlineCid } from '../core/cid.ts';
import { DEFAULT_CONTENT_TYPE, type PosixAttrs } from '../core/version-manifest.ts';
import { StreamMd5 } from '../segment/md5-offload.ts';
import { patchChunks, StreamChunker, type Extent } from '../segment/patch.ts';
import type { ObjectVersion, Segment } from '../segment/segment.ts';
import { ContentMap, readRange, type ChunkCache } from './chunk-cache.ts';
import { fail } from './errors.ts';

export const MAX_DIRTY_BYTES = 64 * 1024 * 1024;
// Chunk stores in flight per streaming file (each is a write + fsync of up to 1 MiB).
const STORES_IN_FLIGHT = 8;
const EMPTY_MD5 = 'd41d8cd98f00b204e9800998ecf8427e';

export interface WriteContext {
  segment: Segment;
  cache: ChunkCache;
  // Where the file lives now (renames move it while it is open).
  target(): { bucket: string; key: string };
  // Runs a commit of this file's key, marking it as the mount's own change (no invalidation).
  own<T>(bucket: string, key: string, fn: () => Promise<T>): Promise<T>;
}

// The ETag of a version made of chunks without reading its bytes: S3's multipart form, the MD5 of
// the concatenated binary chunk CIDs and the chunk count. Clients treat a dashed ETag as "not an
// MD5 of the body", as they do for multipart uploads.
export function chunkListEtag(refs: ChunkRef[]): string {
  if (refs.length === 0) return EMPTY_MD5;
  const h = createHash('md5');
  for (const [cid] of refs) h.update(cid.bytes);
  return `${h.digest('hex')}-${refs.length}`;
}

// The mtime of a version: an explicit one kept in metadata (rclone's x-amz-meta-mtime, seconds),
// else its commit time.
export function mtimeOf(v: ObjectVersion): number {
  const m = v.meta.mtime;
  if (m !== undefined) {
    const secs = Number(m);
    if (Number.isFinite(secs)) return secs * 1000;
  }
  return v.mtime;
}

export function secondsString(ms: number): string {
  return (ms / 1000).toFixed(9).replace(/\.?0+$/, '');
}

const JOIN_MAX = 1024 * 1024;
// Joined extents get spare room, used by the next small write right after them: a run of small
// appends costs amortized O(1) copies. Bytes a view already covers are never written again, so
// views handed to reads stay valid.
const spare = new WeakMap<Buffer, Buffer>();

function appendTo(head: Buffer, tail: Buffer): Buffer {
  const backing = spare.get(head);
  const used = head.length + tail.length;
  if (backing && backing.byteOffset === head.byteOffset && backing.length >= used) {
    tail.copy(backing, head.length);
    const joined = backing.subarray(0, used);
    spare.set(joined, backing);
    return joined;
  }
  const grown = Buffer.allocUnsafe(Math.min(JOIN_MAX, Math.max(used * 2, 64 * 1024)));
  head.copy(grown, 0);
  tail.copy(grown, head.length);
  const joined = grown.subarray(0, used);
  spare.set(joined, grown);
  return joined;
}

// Sorted, non-overlapping extents; bytes in them are never modified once stored (reads keep views).
export class Extents {
  list: Extent[] = [];
  bytes = 0;

  private firstEndingAfter(offset: number): number {
    let lo = 0;
    let hi = this.list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.list[mid];
      if (e.offset + e.data.length > offset) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  insert(offset: number, data: Buffer): void {
    const end = offset + data.length;
    const i = this.firstEndingAfter(offset);
    let j = i;
    const repl: Extent[] = [];
    while (j < this.list.length && this.list[j].offset < end) {
      const e = this.list[j];
      this.bytes -= e.data.length;
      if (e.offset < offset) repl.push({ offset: e.offset, data: e.data.subarray(0, offset - e.offset) });
      if (e.offset + e.data.length > end) repl.push({ offset: end, data: e.data.subarray(end - e.offset) });
      j++;
    }
    const left = repl.filter((e) => e.offset < offset);
    const right = repl.filter((e) => e.offset >= end);
    // Small writes right after the previous one are joined, so a run of them stays one extent.
    const prev = left.length === 0 ? this.list[i - 1] : undefined;
    if (prev && prev.offset + prev.data.length === offset && prev.data.length + data.length <= JOIN_MAX && data.length < 64 * 1024) {
      this.bytes -= prev.data.length;
      const joined = { offset: prev.offset, data: appendTo(prev.data, data) };
      this.list.splice(i - 1, j - i + 1, joined, ...right);
      this.bytes += joined.data.length + right.reduce((n, e) => n + e.data.length, 0);
      return;
    }
    const add = [...left, { offset, data }, ...right];
    this.list.splice(i, j - i, ...add);
    for (const e of add) this.bytes += e.data.length;
  }

  truncate(size: number): void {
    const i = this.firstEndingAfter(size);
    for (let k = i; k < this.list.length; k++) this.bytes -= this.list[k].data.length;
    const cut = this.list.slice(i).filter((e) => e.offset < size).map((e) => ({ offset: e.offset, data: e.data.subarray(0, size - e.offset) }));
    this.list.length = i;
    for (const e of cut) {
      this.list.push(e);
      this.bytes += e.data.length;
    }
  }

  overlapping(start: number, end: number): Extent[] {
    const out: Extent[] = [];
    for (let k = this.firstEndingAfter(start); k < this.list.length && this.list[k].offset < end; k++) out.push(this.list[k]);
    return out;
  }
}

interface Stream {
  chunker: StreamChunker;
  // Undefined once the MD5 has been taken (a mid-stream commit): later versions use the dashed form.
  md5: StreamMd5 | undefined;
  refs: ChunkRef[];
  ends: number[];
  map: ContentMap | undefined;
}

export interface BaseVersion {
  version: ObjectVersion | undefined;
  // Content and size of what the writes apply to (empty for a new or O_TRUNC'd file).
  content: ContentRef;
  size: number;
}

export class WriteState {
  readonly ctx: WriteContext;
  // Writable handles sharing this state.
  handles = 0;
  size: number;
  // Never committed: a file created through the mount and not closed or fsync'd yet.
  isNew: boolean;
  // Something to commit (content or attributes).
  changed: boolean;
  // Changed since the open or the last commit by something other than an O_TRUNC open (a write,
  // ftruncate, fchmod...): the next close commits it. See the note at StitchFs.flush.
  flushDue = false;
  // The file was unlinked while open: its data goes nowhere.
  unlinked = false;
  posix: PosixAttrs;
  meta: Record<string, string>;
  contentType: string;
  headers: Record<string, string>;
  // An explicit mtime (utimens) to commit; cleared by later writes.
  mtimeMs: number | undefined;
  lastChange = Date.now();
  private baseMtimeMs: number;
  // The committed version this state started from or last committed.
  versionId: string | undefined;
  etag: string | undefined;

  private base: ContentRef;
  private baseSize: number;
  // Base bytes at or past `keep` were truncated away (they read as zeros until written).
  private keep: number;
  private baseMap: ContentMap;
  private flatBase: ChunkRef[] | undefined;
  private contentChanged = false;
  private readonly dirty = new Extents();
  private stream: Stream | undefined;
  // Chunks this state stored since its last commit (held in the guard until then).
  private readonly stored = new Map<string, { holds: number; size: number }>();
  // Bytes of chunks whose store has not finished (reads are served from here meanwhile).
  private readonly storing = new Map<string, Buffer>();
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(ctx: WriteContext, base: BaseVersion, attrs: { posix: PosixAttrs; isNew: boolean; truncated: boolean; mtimeMs: number }) {
    this.ctx = ctx;
    const v = base.version;
    this.versionId = v?.versionId;
    this.etag = v?.etag;
    this.base = base.content;
    this.baseSize = this.keep = this.size = base.size;
    this.baseMap = this.mapOf(base.content);
    this.isNew = attrs.isNew;
    this.changed = attrs.isNew || attrs.truncated;
    this.contentChanged = attrs.truncated;
    this.posix = attrs.posix;
    this.meta = { ...(v?.meta ?? {}) };
    this.contentType = v?.contentType ?? DEFAULT_CONTENT_TYPE;
    this.headers = { ...(v?.headers ?? {}) };
    this.mtimeMs = undefined;
    this.baseMtimeMs = attrs.mtimeMs;
  }

  // The mtime getattr shows: an explicit one, the last change, or the committed one.
  get mtime(): number {
    return this.mtimeMs ?? (this.contentChanged || this.isNew ? this.lastChange : this.baseMtimeMs);
  }

  // The file's current version was replaced by an equal one under another name (a rename).
  rebased(v: ObjectVersion): void {
    this.versionId = v.versionId;
    this.etag = v.etag;
  }

  private mapOf(content: ContentRef): ContentMap {
    const { segment } = this.ctx;
    return new ContentMap(content, (cid) => segment.readBlock(cid, this.readCtx()));
  }

  private readCtx() {
    const t = this.ctx.target();
    return { bucket: t.bucket, key: t.key, vid: this.versionId ?? '' };
  }

  private chunk = (cid: CID): Promise<Buffer> => {
    const pending = this.storing.get(cid.toString());
    if (pending) return Promise.resolve(pending);
    return this.ctx.cache.get(cid, (c) => this.ctx.segment.readBlock(c, this.readCtx()));
  };

  // Mutations (write, truncate, commit) run one at a time, in arrival order.
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => {});
    return run;
  }

  private check(): void {
    if (this.failure) fail('EIO', `an earlier write failed: ${(this.failure as Error).message ?? this.failure}`);
  }

  private async storeChunk(bytes: Buffer): Promise<ChunkRef> {
    const cid = cidForChunk(bytes);
    if (isInlineCid(cid)) return [cid, bytes.length];
    const key = cid.toString();
    this.storing.set(key, bytes);
    const p = this.ctx.segment.storeChunk(cid, bytes).then(
      () => {
        this.held(key, bytes.length);
        this.storing.delete(key);
        this.ctx.cache.put(key, bytes);
      },
      (err: unknown) => {
        this.storing.delete(key);
        this.failure ??= err;
      },
    );
    const tracked = p.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
    if (this.inflight.size >= STORES_IN_FLIGHT) await Promise.race(this.inflight);
    return [cid, bytes.length];
  }

  private async drain(): Promise<void> {
    await Promise.all(this.inflight);
    this.check();
  }

  // `offset` 'end': an O_APPEND write, at the end as it is when the write's turn comes.
  write(at: number | 'end', buf: Buffer): Promise<number> {
    return this.exclusive(async () => {
      this.check();
      const offset = at === 'end' ? this.size : at;
      // Nothing of the base left and nothing written yet: stream from the first byte.
      if (!this.stream && offset === 0 && this.size === 0 && this.keep === 0 && this.dirty.list.length === 0) {
        this.stream = { chunker: new StreamChunker(this.ctx.segment.scanner), md5: new StreamMd5(), refs: [], ends: [], map: undefined };
      }
      const s = this.stream;
      if (s && offset === this.size) {
        if (s.md5) await s.md5.update(buf);
        for (const chunk of s.chunker.push(buf)) {
          s.refs.push(await this.storeChunk(chunk));
          s.ends.push((s.ends[s.ends.length - 1] ?? 0) + chunk.length);
          s.map = undefined;
        }
        this.size += buf.length;
      } else {
        if (s) await this.endStream();
        this.dirty.insert(offset, buf);
        this.size = Math.max(this.size, offset + buf.length);
        if (this.dirty.bytes > MAX_DIRTY_BYTES) await this.checkpoint();
      }
      this.changed = this.contentChanged = this.flushDue = true;
      this.mtimeMs = undefined;
      this.lastChange = Date.now();
      return buf.length;
    });
  }

  // `explicit` false: the truncation of an O_TRUNC open, which alone does not make a close commit.
  truncate(size: number, explicit = true): Promise<void> {
    return this.exclusive(async () => {
      this.check();
      if (explicit) this.flushDue = true;
      if (size === this.size) {
        this.changed = true;
        this.lastChange = Date.now();
        return;
      }
      if (this.stream) await this.endStream();
      this.dirty.truncate(size);
      this.keep = Math.min(this.keep, size);
      this.size = size;
      this.changed = this.contentChanged = true;
      this.mtimeMs = undefined;
      this.lastChange = Date.now();
    });
  }

  // Leaves streaming mode: what was streamed (tail included) becomes the base of patches.
  private async endStream(): Promise<void> {
    const s = this.stream!;
    this.stream = undefined;
    s.md5?.drop();
    const refs = [...s.refs];
    if (s.chunker.tailBytes > 0) refs.push(await this.storeChunk(Buffer.from(s.chunker.tail())));
    await this.drain();
    this.setBase({ chunks: refs }, refs);
  }

  private setBase(content: ContentRef, flat: ChunkRef[] | undefined): void {
    this.base = content;
    this.baseMap = this.mapOf(content);
    this.flatBase = flat;
    this.baseSize = this.keep = this.size;
    this.dirty.list = [];
    this.dirty.bytes = 0;
  }

  private async flatten(): Promise<ChunkRef[]> {
    if (!this.flatBase) {
      if ('chunks' in this.base) this.flatBase = this.base.chunks;
      else this.flatBase = (await allCids(this.base, (cid) => this.ctx.segment.readBlock(cid, this.readCtx()))).chunks;
    }
    return this.flatBase;
  }

  private async patched(): Promise<ChunkRef[]> {
    const { segment } = this.ctx;
    const r = await patchChunks({
      old: await this.flatten(), keep: this.keep, size: this.size, dirty: this.dirty.list,
      scanner: segment.scanner, maxChunk: segment.chunker.max,
      io: {
        read: this.chunk,
        write: async (cid, bytes) => {
          await segment.storeChunk(cid, bytes);
          this.held(cid.toString(), bytes.length);
        },
      },
    });
    return r.refs;
  }

  private async checkpoint(): Promise<void> {
    const refs = await this.patched();
    this.setBase({ chunks: refs }, refs);
  }

  // Bytes [offset, offset + length) as this state sees them (its own uncommitted writes included).
  async read(offset: number, length: number): Promise<Buffer> {
    const end = Math.min(this.size, offset + length);
    if (offset >= end) return Buffer.alloc(0);
    const s = this.stream;
    if (s) {
      // Taken synchronously: later writes may extend the tail but never change these bytes.
      const done = s.ends[s.ends.length - 1] ?? 0;
      const tail = s.chunker.tail();
      s.map ??= new ContentMap({ chunks: [...s.refs] }, this.chunk);
      const map = s.map;
      const out = Buffer.alloc(end - offset);
      if (offset < done) (await readRange(map, offset, Math.min(end, done), this.chunk)).copy(out, 0);
      if (end > done) tail.copy(out, Math.max(done - offset, 0), Math.max(offset - done, 0), end - done);
      return out;
    }
    const map = this.baseMap;
    const keep = this.keep;
    const extents = this.dirty.overlapping(offset, end);
    const out = Buffer.alloc(end - offset);
    const baseEnd = Math.min(end, keep);
    if (offset < baseEnd) (await readRange(map, offset, baseEnd, this.chunk)).copy(out, 0);
    for (const e of extents) {
      const from = Math.max(e.offset, offset);
      const to = Math.min(e.offset + e.data.length, end);
      if (to > from) e.data.copy(out, from - offset, from - e.offset, to - e.offset);
    }
    return out;
  }

  setAttrs(a: { posix?: PosixAttrs; mtimeMs?: number }): void {
    if (a.posix) this.posix = a.posix;
    if (a.mtimeMs !== undefined) this.mtimeMs = a.mtimeMs;
    this.changed = this.flushDue = true;
  }

  // Settles when the writes, truncates and commits queued so far have run.
  idle(): Promise<unknown> {
    return this.chain;
  }

  // Commits a version of the file if anything changed; resolves once it is durable. A failure
  // leaves the previous version as it was (and this state's writes in place, to retry).
  commit(): Promise<ObjectVersion | undefined> {
    return this.exclusive(async () => {
      if (!this.changed || this.unlinked) return undefined;
      this.check();
      const { segment } = this.ctx;
      let refs: ChunkRef[];
      let etag: string;
      const s = this.stream;
      if (s && this.contentChanged) {
        await this.drain();
        refs = [...s.refs];
        if (s.chunker.tailBytes > 0) {
          refs.push(await this.storeChunk(Buffer.from(s.chunker.tail())));
          await this.drain();
        }
        etag = s.md5 ? (await s.md5.digest()).toString('hex') : chunkListEtag(refs);
        s.md5 = undefined;
      } else if (this.contentChanged) {
        refs = await this.patched();
        etag = chunkListEtag(refs);
      } else if (this.versionId) {
        // Attributes only: the same content under new metadata, no chunk touched.
        const { bucket, key } = this.ctx.target();
        const from = this.versionId;
        const v = await this.ctx.own(bucket, key, () => segment.copy({ bucket, key, versionId: from }, { bucket, key }, {
          meta: this.metaToCommit(), posix: this.posix,
        }));
        this.committed(v);
        return v;
      } else {
        refs = await this.flatten();
        etag = chunkListEtag(refs);
      }
      const { bucket, key } = this.ctx.target();
      const chunks = [...this.stored].map(([cid, { size }]) => ({ cid, size }));
      const v = await this.ctx.own(bucket, key, () => segment.commitContent(bucket, key, refs, chunks, {
        size: this.size, etag, contentType: this.contentType, meta: this.metaToCommit(), headers: this.headers, posix: this.posix,
      }));
      if (!s) this.setBase(v.content, refs);
      this.committed(v);
      return v;
    });
  }

  private metaToCommit(): Record<string, string> {
    const meta = { ...this.meta };
    // rclone's convention (x-amz-meta-mtime, seconds): an explicit mtime survives S3 round trips.
    if (this.mtimeMs !== undefined) meta.mtime = secondsString(this.mtimeMs);
    else if (this.contentChanged) delete meta.mtime;
    this.meta = meta;
    return meta;
  }

  private committed(v: ObjectVersion): void {
    this.versionId = v.versionId;
    this.etag = v.etag;
    this.baseMtimeMs = mtimeOf(v);
    this.mtimeMs = undefined;
    this.isNew = false;
    this.changed = false;
    this.flushDue = false;
    this.contentChanged = false;
    this.releaseHeld();
  }

  private releaseHeld(): void {
    const cids: string[] = [];
    for (const [cid, { holds }] of this.stored) for (let i = 0; i < holds; i++) cids.push(cid);
    this.stored.clear();
    this.ctx.segment.guard.release(cids);
  }

  // Drops everything uncommitted (last handle gone, or unmount); waits for stores in flight.
  async dispose(): Promise<void> {
    await this.chain;
    await Promise.allSettled(this.inflight);
    this.stream?.md5?.drop();
    this.stream = undefined;
    this.releaseHeld();
  }

  // Held once per store: a chunk stored twice is released twice.
  private held(cid: string, size: number): void {
    const h = this.stored.get(cid);
    if (h) h.holds++;
    else this.stored.set(cid, { holds: 1, size });
  }
}

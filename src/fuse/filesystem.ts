// The FUSE filesystem over a Segment: keys as paths, key prefixes as directories, versions as file
// contents. The naming rules (what an S3 key that is no valid path becomes) and the consistency
// model are in README.md next to this file.
import { promises as fsp } from 'node:fs';
import { constants } from 'node:fs';
import type { CID } from 'multiformats/cid';
import { isStitchError } from '../core/errors.ts';
import { MAX_KEY_BYTES } from '../core/names.ts';
import type { PosixAttrs } from '../core/version-manifest.ts';
import {
  FuseError, RENAME_EXCHANGE, RENAME_NOREPLACE,
  type Attr, type AttrReply, type CreateReply, type DirEntry, type Entry, type FuseOperations, type NegativeEntry,
  type OpenReply, type RequestContext, type SetAttr, type Statfs,
} from '../native/fuse.ts';
import type { ObjectSummary, ObjectVersion, Segment } from '../segment/segment.ts';
import type { VersionRecord } from '../store/meta-store.ts';
import { ChunkCache, ContentMap, readRange } from './chunk-cache.ts';
import { fail, toFuseError } from './errors.ts';
import { baseName, childPath, InodeTable, isDirKind, parentPath, ROOT_INO, type Kind, type Node } from './inodes.ts';
import { mtimeOf, secondsString, WriteState, type WriteContext } from './write-state.ts';

const S_IFMT = constants.S_IFMT;
const S_IFDIR = constants.S_IFDIR;
const S_IFREG = constants.S_IFREG;
const S_IFLNK = constants.S_IFLNK;
const { O_RDONLY, O_TRUNC, O_EXCL, O_APPEND } = constants;
const O_ACCMODE = 3;
const NAME_MAX = 255;

export interface StitchFsOptions {
  // Mount one bucket as the root; without it the root lists every bucket as a directory.
  bucket?: string;
  readOnly?: boolean;
  // Owner of objects that carry no POSIX attributes (written over S3); default the mounting process.
  uid?: number;
  gid?: number;
  // Seconds the kernel may cache names, attributes and "no such name"; changes made underneath
  // (S3, other segments) are pushed to the kernel as they commit, so these can be long.
  entryTimeout?: number;
  attrTimeout?: number;
  negativeTimeout?: number;
  // Verified chunks kept in memory for reads (bytes).
  cacheBytes?: number;
  // Read-only opens may read through the kernel page cache (keep_cache across opens of the same
  // version, MAP_SHARED mmap). Off by default: see README.md, "One inode, many versions".
  pageCache?: boolean;
  log?: (msg: string) => void;
}

interface FileHandle {
  node: Node;
  writer: boolean;
  // A read-only file reading through the kernel page cache (else direct I/O).
  cached?: boolean;
  // O_APPEND: every write goes to the end as this mount knows it (not the kernel's idea of it).
  append?: boolean;
  // Reads (and, for writers, writes) go through the inode's write state...
  ws?: WriteState;
  // ...or to the version pinned at open.
  version?: ObjectVersion;
  map?: ContentMap;
  // Read-ahead: where a sequential read would continue, and how far ahead to load.
  nextOffset?: number;
  window?: number;
}

const READ_AHEAD_MIN = 512 * 1024;
const READ_AHEAD_MAX = 8 * 1024 * 1024;

interface DirCursor {
  // Where the listing continues (exclusive), undefined from the start.
  after: string | undefined;
  pending: number; // index into the handle's pending names
  done: boolean;
}

interface DirHandle {
  node: Node;
  // Uncommitted new files of this directory (names, byte order), merged into the listing.
  pending: string[];
  // Cursors after each entry of the last batch, by the offset the kernel will ask for next.
  positions: Map<number, DirCursor>;
}

type Resolved =
  | { kind: 'bucket' }
  | { kind: 'dir'; marker: ObjectVersion | undefined }
  | { kind: 'file' | 'link'; version: ObjectVersion }
  | { kind: 'pending'; node: Node };

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

function kindOfVersion(v: ObjectVersion): 'file' | 'link' {
  return v.posix && (v.posix.mode & S_IFMT) === S_IFLNK && v.posix.target !== undefined ? 'link' : 'file';
}

function checkName(name: string): void {
  if (Buffer.byteLength(name) > NAME_MAX) fail('ENAMETOOLONG');
}

function keyOk(key: string): boolean {
  return Buffer.byteLength(key) <= MAX_KEY_BYTES;
}

export class StitchFs implements FuseOperations {
  readonly segment: Segment;
  readonly table: InodeTable;
  readonly cache: ChunkCache;
  private readonly o: Required<Omit<StitchFsOptions, 'bucket' | 'log'>> & Pick<StitchFsOptions, 'bucket' | 'log'>;
  private readonly started = Date.now();
  private readonly files = new Map<number, FileHandle>();
  private readonly pending = new Set<Node>();
  private readonly dirs = new Map<number, DirHandle>();
  private nextFh = 1;
  // Keys the mount is committing right now: their version events are its own, not news.
  private readonly ownKeys = new Map<string, number>();
  private notifier: { entry(parent: number, name: string): Promise<void>; inode(ino: number): Promise<void> } | undefined;
  private readonly invalQueue = new Map<string, () => Promise<void>>();
  private invalRunning = false;
  private readonly listeners: Array<[string, (rec: VersionRecord) => void]> = [];

  constructor(segment: Segment, opts: StitchFsOptions = {}) {
    this.segment = segment;
    this.o = {
      readOnly: opts.readOnly ?? segment.readOnly,
      uid: opts.uid ?? process.getuid?.() ?? 0,
      gid: opts.gid ?? process.getgid?.() ?? 0,
      entryTimeout: opts.entryTimeout ?? 10,
      attrTimeout: opts.attrTimeout ?? 10,
      negativeTimeout: opts.negativeTimeout ?? 10,
      cacheBytes: opts.cacheBytes ?? 64 * 1024 * 1024,
      pageCache: opts.pageCache ?? false,
      bucket: opts.bucket,
      log: opts.log,
    };
    if (opts.bucket !== undefined) segment.bucket(opts.bucket);
    this.table = new InodeTable(opts.bucket);
    this.cache = new ChunkCache(this.o.cacheBytes);
    const onVersion = (rec: VersionRecord) => this.changed(rec);
    segment.on('version', onVersion);
    segment.on('remote-version', onVersion);
    this.listeners.push(['version', onVersion], ['remote-version', onVersion]);
  }

  // Where cache invalidations go (the mount, once it is up).
  attach(notifier: { notifyInvalEntry(parent: number, name: string): Promise<void>; notifyInvalInode(ino: number, off?: number, len?: number): Promise<void> }): void {
    this.notifier = {
      entry: (parent, name) => notifier.notifyInvalEntry(parent, name),
      inode: (ino) => notifier.notifyInvalInode(ino, 0, 0),
    };
  }

  // Commits every file with uncommitted writes (before an unmount).
  async flushAll(): Promise<void> {
    const states = new Set<WriteState>();
    for (const n of this.table.all()) if (n.ws) states.add(n.ws);
    const results = await Promise.allSettled([...states].map((ws) => ws.commit()));
    for (const r of results) if (r.status === 'rejected') this.o.log?.(`stitch mount: commit on unmount failed: ${(r.reason as Error).message}`);
  }

  // Stops listening to the segment and drops uncommitted state (after the unmount).
  async close(): Promise<void> {
    for (const [ev, fn] of this.listeners) this.segment.off(ev, fn);
    this.notifier = undefined;
    const states = new Set<WriteState>();
    for (const n of this.table.all()) if (n.ws) states.add(n.ws);
    await Promise.allSettled([...states].map((ws) => ws.dispose()));
  }

  // ---- own changes and invalidation ----

  private async own<T>(bucket: string, key: string, fn: () => Promise<T>): Promise<T> {
    const k = `${bucket}\0${key}`;
    this.ownKeys.set(k, (this.ownKeys.get(k) ?? 0) + 1);
    try {
      return await fn();
    } finally {
      const n = this.ownKeys.get(k)! - 1;
      if (n === 0) this.ownKeys.delete(k);
      else this.ownKeys.set(k, n);
    }
  }

  private invalidate(id: string, fn: () => Promise<void>): void {
    if (!this.notifier) return;
    this.invalQueue.set(id, fn);
    if (this.invalRunning) return;
    this.invalRunning = true;
    // One at a time: a notification can block in the kernel (on a directory lock held by a request
    // in flight) and ties up a libuv pool thread meanwhile, which reads also need.
    void (async () => {
      while (this.invalQueue.size > 0) {
        const [key, run] = this.invalQueue.entries().next().value!;
        this.invalQueue.delete(key);
        await run().catch((err: unknown) => this.o.log?.(`stitch mount: invalidation ${key}: ${(err as Error).message}`));
      }
      this.invalRunning = false;
    })();
  }

  private invalEntry(parent: number, name: string): void {
    const n = this.notifier;
    if (n) this.invalidate(`e${parent}/${name}`, () => n.entry(parent, name));
  }

  private invalInode(ino: number): void {
    const n = this.notifier;
    if (n) this.invalidate(`i${ino}`, () => n.inode(ino));
  }

  // A version committed underneath the mount (S3, another segment, a CLI on the same segment).
  private changed(rec: VersionRecord): void {
    if (this.ownKeys.has(`${rec.bucket}\0${rec.key}`)) return;
    const root = this.table.root;
    if (rec.key === '') {
      if (root.kind === 'root') this.invalEntry(ROOT_INO, rec.bucket);
      return;
    }
    let parent = root.kind === 'root' ? this.table.find(rec.bucket, '', true) : root.bucket === rec.bucket ? root : undefined;
    if (!parent) return;
    const marker = rec.key.endsWith('/');
    const path = marker ? rec.key.slice(0, -1) : rec.key;
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const p = parts.slice(0, i + 1).join('/');
      const last = i === parts.length - 1;
      const dirNode = this.table.find(rec.bucket, p, true);
      // A directory the kernel knows is still there; a name it may have cached (or cached as
      // missing) must be looked up again.
      if (!last && dirNode) {
        parent = dirNode;
        continue;
      }
      if (parts[i] !== '') this.invalEntry(parent.ino, parts[i]);
      if (!dirNode) break;
      parent = dirNode;
    }
    if (!marker) {
      const node = this.table.find(rec.bucket, path, false);
      if (node && !node.ws) {
        node.cacheVid = undefined;
        this.invalInode(node.ino);
      }
    }
  }

  // ---- names ----

  private node(ino: number): Node {
    const n = this.table.get(ino);
    if (!n) fail('ENOENT', `no inode ${ino}`);
    return n;
  }

  private dirNode(ino: number): Node {
    const n = this.node(ino);
    if (!isDirKind(n.kind)) fail('ENOTDIR');
    return n;
  }

  private writable(): void {
    if (this.o.readOnly) fail('EROFS');
  }

  private async headOrUndefined(bucket: string, key: string): Promise<ObjectVersion | undefined> {
    try {
      return await this.segment.head(bucket, key);
    } catch (err) {
      if (isStitchError(err, 'NoSuchKey')) return undefined;
      throw err;
    }
  }

  // Whether any key lies under `prefix`; the first one.
  private firstUnder(bucket: string, prefix: string): ObjectSummary | undefined {
    return this.segment.list(bucket, { prefix, limit: 1 }).items[0];
  }

  private pendingNode(bucket: string, path: string): Node | undefined {
    const n = this.table.find(bucket, path, false);
    return n?.ws?.isNew && !n.ws.unlinked ? n : undefined;
  }

  // Files created on the mount and not committed yet (a handful: they commit at close). Entries
  // that have committed or gone are dropped as they are met.
  private pendingFiles(): Node[] {
    const out: Node[] = [];
    for (const n of this.pending) {
      if (n.ws?.isNew && !n.ws.unlinked && !n.stale) out.push(n);
      else this.pending.delete(n);
    }
    return out;
  }

  private hasPendingUnder(bucket: string, path: string): boolean {
    const prefix = path === '' ? '' : `${path}/`;
    return this.pendingFiles().some((n) => n.bucket === bucket && n.path.startsWith(prefix));
  }

  // What `name` in directory `dir` is. A directory wins over a file of the same name.
  private async resolve(dir: Node, name: string): Promise<Resolved | undefined> {
    checkName(name);
    if (dir.kind === 'root') {
      return this.segment.listBuckets().some((b) => b.name === name) ? { kind: 'bucket' } : undefined;
    }
    const path = childPath(dir.path, name);
    if (!keyOk(`${path}/`)) {
      if (!keyOk(path)) return undefined;
    } else {
      const first = this.firstUnder(dir.bucket, `${path}/`);
      if (first) {
        const marker = first.key === `${path}/` ? await this.headOrUndefined(dir.bucket, first.key) : undefined;
        return { kind: 'dir', marker };
      }
      if (this.hasPendingUnder(dir.bucket, path)) return { kind: 'dir', marker: undefined };
    }
    const pending = this.pendingNode(dir.bucket, path);
    if (pending) return { kind: 'pending', node: pending };
    const v = await this.headOrUndefined(dir.bucket, path);
    if (v) return { kind: kindOfVersion(v), version: v };
    return undefined;
  }

  // ---- attributes ----

  private dirAttr(node: Node, marker?: ObjectVersion): Attr {
    const p = marker?.posix;
    const t = marker ? mtimeOf(marker) : this.started;
    return {
      ino: node.ino, mode: S_IFDIR | (p ? p.mode & 0o7777 : 0o755), nlink: 2,
      uid: p?.uid ?? this.o.uid, gid: p?.gid ?? this.o.gid, size: 4096,
      atimeMs: t, mtimeMs: t, ctimeMs: marker?.mtime ?? t,
    };
  }

  private versionAttr(node: Node, v: ObjectVersion): Attr {
    const p = v.posix;
    const link = kindOfVersion(v) === 'link';
    const t = mtimeOf(v);
    return {
      ino: node.ino,
      mode: link ? S_IFLNK | 0o777 : S_IFREG | (p ? p.mode & 0o7777 : 0o644),
      nlink: 1, uid: p?.uid ?? this.o.uid, gid: p?.gid ?? this.o.gid,
      size: link ? Buffer.byteLength(p!.target!) : v.size,
      atimeMs: t, mtimeMs: t, ctimeMs: v.mtime,
    };
  }

  private wsAttr(node: Node, ws: WriteState): Attr {
    const t = ws.mtime;
    return {
      ino: node.ino, mode: S_IFREG | (ws.posix.mode & 0o7777), nlink: ws.unlinked ? 0 : 1,
      uid: ws.posix.uid, gid: ws.posix.gid, size: ws.size, atimeMs: t, mtimeMs: t, ctimeMs: Math.max(t, ws.lastChange),
    };
  }

  private entry(node: Node, attr: Attr): Entry {
    this.table.lookedUp(node);
    return { ino: node.ino, attr, attrTimeout: this.attrTimeout(node), entryTimeout: this.o.entryTimeout };
  }

  // While a file is written, or read at more than one version, each open file sees its own size
  // and times: the kernel (one inode, one i_size) must ask again every time, through the file.
  private contended(node: Node): boolean {
    return node.ws !== undefined || node.directOpen > 0;
  }

  private attrTimeout(node: Node): number {
    return this.contended(node) ? 0 : this.o.attrTimeout;
  }

  private entryOf(dir: Node, name: string, r: Resolved): Entry {
    if (r.kind === 'bucket') {
      const node = this.table.ensure(name, '', 'bucket');
      return this.entry(node, this.bucketAttr(node));
    }
    const path = childPath(dir.path, name);
    if (r.kind === 'dir') {
      const node = this.table.ensure(dir.bucket, path, 'dir');
      return this.entry(node, this.dirAttr(node, r.marker));
    }
    if (r.kind === 'pending') return this.entry(r.node, this.wsAttr(r.node, r.node.ws!));
    const node = this.table.ensure(dir.bucket, path, r.kind);
    if (node.cachedOpen > 0 && node.cached) return this.entry(node, this.versionAttr(node, node.cached));
    if (node.ws) return this.entry(node, this.wsAttr(node, node.ws));
    return this.entry(node, this.versionAttr(node, r.version));
  }

  private bucketAttr(node: Node): Attr {
    if (node.kind === 'root') return this.dirAttr(node);
    const b = this.segment.listBuckets().find((x) => x.name === node.bucket);
    const a = this.dirAttr(node);
    if (b) a.mtimeMs = a.atimeMs = a.ctimeMs = b.created;
    return a;
  }

  private async attrOf(node: Node, fh?: number): Promise<Attr> {
    if (node.kind === 'root' || node.kind === 'bucket') {
      if (node.kind === 'bucket' && !this.segment.listBuckets().some((b) => b.name === node.bucket)) fail('ENOENT');
      return this.bucketAttr(node);
    }
    if (node.kind === 'dir') {
      const prefix = `${node.path}/`;
      const first = this.firstUnder(node.bucket, prefix);
      if (!first && !this.hasPendingUnder(node.bucket, node.path)) fail('ENOENT');
      const marker = first?.key === prefix ? await this.headOrUndefined(node.bucket, prefix) : undefined;
      return this.dirAttr(node, marker);
    }
    // Asked through an open file: what that file sees (its pinned version, or its writes).
    const h = fh === undefined ? undefined : this.files.get(fh);
    if (h?.node === node && h.ws) return this.wsAttr(node, h.ws);
    if (h?.node === node && h.version) return this.versionAttr(node, h.version);
    // Otherwise the version in the page cache while files read through it, so that the kernel
    // never cuts their reads short at another version's size; then the writes, then the latest.
    if (node.cachedOpen > 0 && node.cached) return this.versionAttr(node, node.cached);
    if (node.ws) return this.wsAttr(node, node.ws);
    if (node.stale) fail('ENOENT');
    const v = await this.headOrUndefined(node.bucket, node.path);
    if (!v || kindOfVersion(v) !== node.kind) fail('ENOENT');
    return this.versionAttr(node, v);
  }

  // ---- FuseOperations ----

  async lookup(parent: number, name: string): Promise<Entry | NegativeEntry> {
    try {
      const dir = this.dirNode(parent);
      const r = await this.resolve(dir, name);
      if (!r) return { ino: 0, entryTimeout: this.o.negativeTimeout };
      return this.entryOf(dir, name, r);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  forget(ino: number, nlookup: number): void {
    this.table.forget(ino, nlookup);
  }

  async getattr(ino: number, fh: number | undefined): Promise<AttrReply> {
    try {
      const node = this.node(ino);
      return { attr: await this.attrOf(node, fh), timeout: this.attrTimeout(node) };
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async setattr(ino: number, ch: SetAttr, fh: number | undefined): Promise<AttrReply> {
    try {
      const node = this.node(ino);
      const attrs = ch.mode !== undefined || ch.uid !== undefined || ch.gid !== undefined || ch.mtimeMs !== undefined || ch.size !== undefined;
      if (!attrs) return { attr: await this.attrOf(node, fh), timeout: this.attrTimeout(node) };
      this.writable();
      if (node.kind === 'root' || node.kind === 'bucket') {
        if (ch.size !== undefined) fail('EISDIR');
        // The top directories carry no attributes of their own: accepted and ignored (tar and
        // cp -a set them on the directory they extract into).
        return { attr: await this.attrOf(node), timeout: this.attrTimeout(node) };
      }
      if (node.kind === 'dir') {
        if (ch.size !== undefined) fail('EISDIR');
        await this.setDirAttrs(node, ch);
        return { attr: await this.attrOf(node), timeout: this.attrTimeout(node) };
      }
      const h = fh === undefined ? undefined : this.files.get(fh);
      let ws = node.ws;
      if (ws) {
        // The file is open for writing: the change joins its writes and is committed with them
        // at close or fsync (the kernel gives a handle only for ftruncate; fchmod, fchown and
        // futimens arrive as path operations, and tar or cp -p use them on the open file).
        if (ch.size !== undefined) await ws.truncate(ch.size);
        const change = this.posixChange(ws.posix, ch, 'file');
        const p = ws.posix;
        if (change.mtimeMs !== undefined || change.posix.mode !== p.mode || change.posix.uid !== p.uid || change.posix.gid !== p.gid) {
          ws.setAttrs(change);
        }
        // Its last writer is closing already: this change is committed here.
        if (ws.handles === 0 && !h?.writer) await ws.commit();
        return { attr: this.wsAttr(node, ws), timeout: this.attrTimeout(node) };
      }
      if (ch.size !== undefined) {
        if (node.kind === 'link') fail('EINVAL');
        ws = await this.startWrite(node, false);
        try {
          await ws.truncate(ch.size);
          ws.setAttrs(this.posixChange(ws.posix, ch, 'file'));
          await ws.commit();
          node.cacheVid = undefined;
          return { attr: this.wsAttr(node, ws), timeout: this.attrTimeout(node) };
        } finally {
          if (node.ws === ws) node.ws = undefined;
          await ws.dispose();
        }
      }
      const v = await this.headOrUndefined(node.bucket, node.path);
      if (!v) fail('ENOENT');
      const posix = v.posix ?? { mode: S_IFREG | 0o644, uid: this.o.uid, gid: this.o.gid };
      const change = this.posixChange(posix, ch, node.kind);
      const same = change.posix.mode === posix.mode && change.posix.uid === posix.uid && change.posix.gid === posix.gid;
      if (same && change.mtimeMs === undefined) return { attr: this.versionAttr(node, v), timeout: this.attrTimeout(node) };
      const meta = { ...v.meta };
      if (change.mtimeMs !== undefined) meta.mtime = secondsString(change.mtimeMs);
      const nv = await this.own(node.bucket, node.path, () => this.segment.copy(
        { bucket: node.bucket, key: node.path, versionId: v.versionId }, { bucket: node.bucket, key: node.path },
        { meta, posix: same && !v.posix ? undefined : change.posix },
      ));
      return { attr: this.versionAttr(node, nv), timeout: this.attrTimeout(node) };
    } catch (err) {
      throw toFuseError(err);
    }
  }

  private posixChange(p: PosixAttrs, ch: SetAttr, kind: Kind): { posix: PosixAttrs; mtimeMs?: number } {
    const posix = { ...p };
    if (ch.mode !== undefined && kind !== 'link') posix.mode = (p.mode & ~0o7777) | (ch.mode & 0o7777);
    if (ch.uid !== undefined) posix.uid = ch.uid;
    if (ch.gid !== undefined) posix.gid = ch.gid;
    return { posix, mtimeMs: ch.mtimeMs };
  }

  private async setDirAttrs(node: Node, ch: SetAttr): Promise<void> {
    const key = `${node.path}/`;
    const marker = await this.headOrUndefined(node.bucket, key);
    const posix = marker?.posix ?? { mode: S_IFDIR | 0o755, uid: this.o.uid, gid: this.o.gid };
    const change = this.posixChange(posix, ch, 'dir');
    const same = change.posix.mode === posix.mode && change.posix.uid === posix.uid && change.posix.gid === posix.gid;
    if (same && change.mtimeMs === undefined) return;
    const meta = { ...(marker?.meta ?? {}) };
    if (change.mtimeMs !== undefined) meta.mtime = secondsString(change.mtimeMs);
    await this.own(node.bucket, key, () => this.segment.put(node.bucket, key, Buffer.alloc(0), { meta, posix: change.posix }));
  }

  async readlink(ino: number): Promise<string> {
    try {
      const node = this.node(ino);
      if (node.kind !== 'link') fail('EINVAL');
      const v = await this.headOrUndefined(node.bucket, node.path);
      if (!v) fail('ENOENT');
      if (v.posix?.target === undefined) fail('EINVAL');
      return v.posix.target;
    } catch (err) {
      throw toFuseError(err);
    }
  }

  // A new name in `dir`: checks shared by create, mkdir, symlink.
  private async newName(parent: number, name: string): Promise<{ dir: Node; path: string; existing: Resolved | undefined }> {
    this.writable();
    const dir = this.dirNode(parent);
    checkName(name);
    if (dir.kind === 'root') return { dir, path: name, existing: await this.resolve(dir, name) };
    const path = childPath(dir.path, name);
    if (!keyOk(`${path}/`)) fail('ENAMETOOLONG');
    return { dir, path, existing: await this.resolve(dir, name) };
  }

  async mkdir(parent: number, name: string, mode: number, ctx: RequestContext): Promise<Entry> {
    try {
      const { dir, path, existing } = await this.newName(parent, name);
      if (existing) fail('EEXIST');
      if (dir.kind === 'root') {
        await this.own(name, '', async () => this.segment.createBucket(name));
        return this.entry(this.table.ensure(name, '', 'bucket'), this.bucketAttr(this.table.ensure(name, '', 'bucket')));
      }
      const posix = { mode: S_IFDIR | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid };
      const key = `${path}/`;
      const v = await this.own(dir.bucket, key, () => this.segment.put(dir.bucket, key, Buffer.alloc(0), { posix }));
      const node = this.table.ensure(dir.bucket, path, 'dir');
      return this.entry(node, this.dirAttr(node, v));
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async symlink(target: string, parent: number, name: string, ctx: RequestContext): Promise<Entry> {
    try {
      const { dir, path, existing } = await this.newName(parent, name);
      if (dir.kind === 'root') fail('EACCES');
      if (existing) fail('EEXIST');
      const posix = { mode: S_IFLNK | 0o777, uid: ctx.uid, gid: ctx.gid, target };
      const v = await this.own(dir.bucket, path, () => this.segment.put(dir.bucket, path, Buffer.alloc(0), { posix }));
      const node = this.table.ensure(dir.bucket, path, 'link');
      return this.entry(node, this.versionAttr(node, v));
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async link(): Promise<Entry> {
    throw new FuseError('EOPNOTSUPP', 'hard links are not supported');
  }

  // An emptied directory that existed only through its keys keeps existing (as POSIX expects
  // after the last file in it is removed): it gets a marker.
  private async keepDir(dir: Node): Promise<void> {
    if (dir.kind !== 'dir' || dir.stale) return;
    const prefix = `${dir.path}/`;
    if (this.firstUnder(dir.bucket, prefix) || this.hasPendingUnder(dir.bucket, dir.path)) return;
    await this.own(dir.bucket, prefix, () => this.segment.put(dir.bucket, prefix, Buffer.alloc(0)));
  }

  async unlink(parent: number, name: string): Promise<void> {
    try {
      this.writable();
      const dir = this.dirNode(parent);
      if (dir.kind === 'root') fail('EISDIR');
      const r = await this.resolve(dir, name);
      if (!r) fail('ENOENT');
      if (r.kind === 'dir' || r.kind === 'bucket') fail('EISDIR');
      const path = childPath(dir.path, name);
      if (r.kind !== 'pending') await this.own(dir.bucket, path, () => this.segment.delete(dir.bucket, path));
      const node = r.kind === 'pending' ? r.node : this.table.find(dir.bucket, path, false);
      if (node) {
        if (node.ws) node.ws.unlinked = true;
        this.table.retire(node);
      }
      await this.keepDir(dir);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async rmdir(parent: number, name: string): Promise<void> {
    try {
      this.writable();
      const dir = this.dirNode(parent);
      const r = await this.resolve(dir, name);
      if (!r) fail('ENOENT');
      if (r.kind === 'bucket') {
        await this.own(name, '', async () => this.segment.deleteBucket(name));
        const node = this.table.find(name, '', true);
        if (node) this.table.retire(node);
        return;
      }
      if (r.kind !== 'dir') fail('ENOTDIR');
      const path = childPath(dir.path, name);
      const prefix = `${path}/`;
      const page = this.segment.list(dir.bucket, { prefix, limit: 2 });
      if (page.items.some((i) => i.key !== prefix) || this.hasPendingUnder(dir.bucket, path)) fail('ENOTEMPTY');
      if (r.marker) await this.own(dir.bucket, prefix, () => this.segment.delete(dir.bucket, prefix));
      const node = this.table.find(dir.bucket, path, true);
      if (node) this.table.retire(node);
      await this.keepDir(dir);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async rename(parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    try {
      this.writable();
      if (flags & RENAME_EXCHANGE) fail('EINVAL', 'RENAME_EXCHANGE is not supported');
      const from = this.dirNode(parent);
      const to = this.dirNode(newParent);
      // Buckets are not renamed, and nothing but buckets lives at the top of an all-buckets mount.
      if (from.kind === 'root' || to.kind === 'root') fail('EXDEV');
      checkName(newName);
      const s = await this.resolve(from, name);
      if (!s) fail('ENOENT');
      const srcPath = childPath(from.path, name);
      const dstPath = childPath(to.path, newName);
      if (from.bucket === to.bucket && srcPath === dstPath) return;
      const d = await this.resolve(to, newName);
      const srcIsDir = s.kind === 'dir';
      if (d) {
        if (flags & RENAME_NOREPLACE) fail('EEXIST');
        const dstIsDir = d.kind === 'dir';
        if (srcIsDir && !dstIsDir) fail('ENOTDIR');
        if (!srcIsDir && dstIsDir) fail('EISDIR');
        if (dstIsDir) {
          const page = this.segment.list(to.bucket, { prefix: `${dstPath}/`, limit: 2 });
          if (page.items.some((i) => i.key !== `${dstPath}/`) || this.hasPendingUnder(to.bucket, dstPath)) fail('ENOTEMPTY');
        }
      }
      if (!keyOk(srcIsDir ? `${dstPath}/` : dstPath)) fail('ENAMETOOLONG');
      if (srcIsDir) await this.renameDir(from.bucket, srcPath, to.bucket, dstPath, d?.kind === 'dir' ? d.marker : undefined);
      else await this.renameFile(from.bucket, srcPath, to.bucket, dstPath, d);
      if (from !== to) await this.keepDir(from);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  // One object: the destination switches to the source's version in one commit (readers of the
  // destination see the old file or the new one), then the source name is deleted.
  private async renameFile(sb: string, src: string, db: string, dst: string, victim: Resolved | undefined): Promise<void> {
    const node = this.table.find(sb, src, false);
    if (node?.ws?.changed && !node.ws.unlinked) await node.ws.commit();
    const v = await this.headOrUndefined(sb, src);
    if (!v) fail('ENOENT');
    const nv = await this.own(db, dst, () => this.segment.copy({ bucket: sb, key: src, versionId: v.versionId }, { bucket: db, key: dst }));
    await this.own(sb, src, () => this.segment.delete(sb, src));
    if (victim?.kind === 'pending' && victim.node.ws) victim.node.ws.unlinked = true;
    if (node) {
      this.table.move(node, db, dst);
      if (node.ws) node.ws.rebased(nv);
    } else {
      const old = this.table.find(db, dst, false);
      if (old) this.table.retire(old);
    }
  }

  // A directory: every key under the prefix is copied (chunks shared, no data copied), then the
  // sources are deleted. Not atomic across keys: see README.md.
  private async renameDir(sb: string, src: string, db: string, dst: string, dstMarker: ObjectVersion | undefined): Promise<void> {
    const nodes = this.table.under(sb, src);
    for (const n of nodes) if (n.ws?.changed && !n.ws.unlinked) await n.ws.commit();
    const srcPrefix = `${src}/`;
    const dstPrefix = `${dst}/`;
    const moved: Array<{ key: string; vid: string; to: string; nv: ObjectVersion }> = [];
    try {
      let after: string | undefined;
      for (;;) {
        const page = this.segment.list(sb, { prefix: srcPrefix, after, limit: 1000 });
        for (const item of page.items) {
          const to = dstPrefix + item.key.slice(srcPrefix.length);
          if (!keyOk(to)) fail('ENAMETOOLONG');
          const nv = await this.own(db, to, () => this.segment.copy({ bucket: sb, key: item.key, versionId: item.versionId }, { bucket: db, key: to }));
          moved.push({ key: item.key, vid: item.versionId, to, nv });
        }
        if (!page.truncated) break;
        after = page.next;
      }
    } catch (err) {
      // Undo the copies made so far: the source is still whole.
      for (const m of moved.reverse()) await this.own(db, m.to, () => this.segment.delete(db, m.to)).catch(() => {});
      throw err;
    }
    // A replaced empty directory's marker goes unless the source brought its own.
    if (dstMarker && !moved.some((m) => m.to === dstPrefix)) await this.own(db, dstPrefix, () => this.segment.delete(db, dstPrefix));
    for (const m of moved) {
      // A key written again meanwhile is left where it is rather than lost.
      const now = await this.headOrUndefined(sb, m.key);
      if (now?.versionId === m.vid) await this.own(sb, m.key, () => this.segment.delete(sb, m.key));
    }
    const byKey = new Map(moved.map((m) => [m.to, m.nv]));
    const dirNode = this.table.find(sb, src, true);
    for (const n of nodes) {
      const path = dst + n.path.slice(src.length);
      this.table.move(n, db, path);
      const nv = byKey.get(path);
      if (n.ws && nv) n.ws.rebased(nv);
    }
    if (dirNode) this.table.move(dirNode, db, dst);
  }

  // ---- files ----

  private writeContext(node: Node): WriteContext {
    return {
      segment: this.segment,
      cache: this.cache,
      target: () => ({ bucket: node.bucket, key: node.path }),
      own: (bucket, key, fn) => this.own(bucket, key, fn),
    };
  }

  private async startWrite(node: Node, truncate: boolean): Promise<WriteState> {
    const v = await this.headOrUndefined(node.bucket, node.path);
    if (!v || kindOfVersion(v) !== 'file') fail('ENOENT');
    const posix = v.posix ?? { mode: S_IFREG | 0o644, uid: this.o.uid, gid: this.o.gid };
    const ws = new WriteState(this.writeContext(node), {
      version: v, content: truncate ? { chunks: [] } : v.content, size: truncate ? 0 : v.size,
    }, { posix, isNew: false, truncated: truncate && v.size > 0, mtimeMs: mtimeOf(v) });
    node.ws = ws;
    return ws;
  }

  private newFh(h: FileHandle): number {
    const fh = this.nextFh++;
    this.files.set(fh, h);
    h.node.opens++;
    return fh;
  }

  private async openNode(node: Node, flags: number): Promise<OpenReply> {
    if (isDirKind(node.kind)) fail('EISDIR');
    if (node.kind === 'link') fail('ELOOP');
    const writer = (flags & O_ACCMODE) !== O_RDONLY;
    if (writer) {
      this.writable();
      let ws = node.ws;
      if (!ws) ws = await this.startWrite(node, (flags & O_TRUNC) !== 0);
      else if (flags & O_TRUNC) await ws.truncate(0, false);
      ws.handles++;
      // Writes bypass the page cache; what it holds is of an older version from now on.
      node.cacheVid = undefined;
      return { fh: this.newFh({ node, writer: true, ws, append: (flags & O_APPEND) !== 0 }), directIo: true };
    }
    if (node.ws?.isNew) return { fh: this.newFh({ node, writer: false, ws: node.ws }), directIo: true };
    // A commit under way (the last close of a writer, queued just before this open) comes first:
    // a program that closed a file and then has another open it must see what it wrote.
    if (node.ws) await node.ws.idle();
    const v = await this.headOrUndefined(node.bucket, node.path);
    if (!v || kindOfVersion(v) !== 'file') fail('ENOENT');
    const vid = v.versionId;
    // The page cache is one per inode: it may serve this file only if no one writes the file
    // and every file reading through it reads this same version. Otherwise this file reads
    // directly, so that each open file sees its own version whole.
    const cached = this.o.pageCache && !node.ws && (node.cachedOpen === 0 || node.cacheVid === vid);
    const ctx = { bucket: node.bucket, key: node.path, vid };
    const map = new ContentMap(v.content, (cid) => this.segment.readBlock(cid, ctx));
    if (!cached) {
      node.directOpen++;
      return { fh: this.newFh({ node, writer: false, version: v, map }), directIo: true };
    }
    const keepCache = node.cacheVid === vid;
    node.cacheVid = vid;
    node.cached = v;
    node.cachedOpen++;
    return { fh: this.newFh({ node, writer: false, version: v, map, cached: true }), keepCache };
  }

  async open(ino: number, flags: number): Promise<OpenReply> {
    try {
      return await this.openNode(this.node(ino), flags);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async create(parent: number, name: string, mode: number, flags: number, ctx: RequestContext): Promise<CreateReply> {
    try {
      const { dir, path, existing } = await this.newName(parent, name);
      if (dir.kind === 'root') fail('EACCES');
      if (existing) {
        if (existing.kind === 'dir') fail('EISDIR');
        if (flags & O_EXCL) fail('EEXIST');
        const e = this.entryOf(dir, name, existing);
        const node = this.node(e.ino);
        try {
          return { ...e, ...(await this.openNode(node, flags)) };
        } catch (err) {
          this.table.forget(node.ino, 1);
          throw err;
        }
      }
      const node = this.table.ensure(dir.bucket, path, 'file');
      const posix = { mode: S_IFREG | (mode & 0o7777), uid: ctx.uid, gid: ctx.gid };
      const ws = new WriteState(this.writeContext(node), { version: undefined, content: { chunks: [] }, size: 0 },
        { posix, isNew: true, truncated: false, mtimeMs: Date.now() });
      node.ws = ws;
      ws.handles = 1;
      node.cacheVid = undefined;
      this.pending.add(node);
      const e = this.entry(node, this.wsAttr(node, ws));
      return { ...e, fh: this.newFh({ node, writer: true, ws, append: (flags & O_APPEND) !== 0 }), directIo: true };
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async read(_ino: number, fh: number, size: number, offset: number): Promise<Uint8Array> {
    try {
      const h = this.files.get(fh);
      if (!h) fail('EBADF');
      if (h.ws) return await h.ws.read(offset, size);
      const v = h.version!;
      const end = Math.min(v.size, offset + size);
      if (offset >= end) return Buffer.alloc(0);
      const ctx = { bucket: h.node.bucket, key: h.node.path, vid: v.versionId };
      const chunk = (cid: CID) => this.cache.get(cid, (c) => this.segment.readBlock(c, ctx));
      // Sequential readers: the chunks of the next few MiB are loaded (read and verified) while
      // this range is served; the window doubles with each read that follows the last one.
      if (offset === h.nextOffset) h.window = Math.min(READ_AHEAD_MAX, Math.max(READ_AHEAD_MIN, (h.window ?? 0) * 2));
      else h.window = 0;
      h.nextOffset = end;
      if (h.window && end < v.size) {
        void h.map!.locate(end, Math.min(v.size, end + h.window)).then((next) => {
          for (const l of next) void chunk(l.cid).catch(() => {});
        }, () => {});
      }
      return await readRange(h.map!, offset, end, chunk);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async write(_ino: number, fh: number, buf: Buffer, offset: number): Promise<number> {
    try {
      const h = this.files.get(fh);
      if (!h || !h.writer || !h.ws) fail('EBADF');
      return await h.ws.write(h.append ? 'end' : offset, buf);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  // close(2): what was written (or ftruncate'd, fchmod'ed...) is committed as a new version
  // before close returns, so its errors reach the program and another process opening the file
  // next sees it. The truncation of an O_TRUNC open alone is not: dd and shells open the output
  // with O_TRUNC, dup it and close the original before writing, and that close must not publish
  // an empty version between the old content and the new. The last close (release) commits it;
  // an open queued behind that release waits for the commit (openNode).
  async flush(_ino: number, fh: number): Promise<void> {
    try {
      const h = this.files.get(fh);
      if (h?.writer && h.ws && (h.ws.flushDue || h.ws.isNew)) await h.ws.commit();
    } catch (err) {
      throw toFuseError(err);
    }
  }

  // Returns once the file's state is a durable version.
  async fsync(_ino: number, fh: number): Promise<void> {
    try {
      const h = this.files.get(fh);
      if (h?.writer && h.ws) await h.ws.commit();
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async release(_ino: number, fh: number): Promise<void> {
    const h = this.files.get(fh);
    if (!h) return;
    this.files.delete(fh);
    const node = h.node;
    try {
      if (h.writer && h.ws) {
        const ws = h.ws;
        try {
          await ws.commit();
        } catch (err) {
          this.o.log?.(`stitch mount: commit of ${node.bucket}/${node.path} on release failed: ${(err as Error).message}`);
        }
        if (--ws.handles === 0) {
          // Changes that came in meanwhile (a chmod on the path) are committed too.
          while (ws.changed && !ws.unlinked) await ws.commit();
          if (node.ws === ws) node.ws = undefined;
          await ws.dispose();
        }
      } else if (h.version) {
        if (h.cached) node.cachedOpen--;
        else node.directOpen--;
        if (node.cachedOpen === 0) node.cached = undefined;
      }
    } finally {
      node.opens--;
      this.table.maybeDrop(node);
    }
  }

  async fallocate(_ino: number, fh: number, offset: number, length: number, mode: number): Promise<void> {
    try {
      if (mode !== 0) fail('EOPNOTSUPP');
      const h = this.files.get(fh);
      if (!h?.writer || !h.ws) fail('EBADF');
      if (offset + length > h.ws.size) await h.ws.truncate(offset + length);
    } catch (err) {
      throw toFuseError(err);
    }
  }

  // ---- directories ----

  async opendir(ino: number): Promise<OpenReply> {
    try {
      const node = this.dirNode(ino);
      const pending: string[] = [];
      if (node.kind !== 'root') {
        for (const n of this.pendingFiles()) {
          if (n.bucket === node.bucket && parentPath(n.path) === node.path) pending.push(baseName(n.path));
        }
        pending.sort(byteOrder);
      }
      const fh = this.nextFh++;
      this.dirs.set(fh, { node, pending, positions: new Map() });
      return { fh };
    } catch (err) {
      throw toFuseError(err);
    }
  }

  async releasedir(_ino: number, fh: number): Promise<void> {
    this.dirs.delete(fh);
  }

  async readdir(_ino: number, fh: number, offset: number, size: number): Promise<DirEntry[]> {
    try {
      const d = this.dirs.get(fh);
      if (!d) fail('EBADF');
      const node = d.node;
      const out: DirEntry[] = [];
      let cursor: DirCursor;
      let next = offset;
      if (offset === 0) {
        cursor = { after: undefined, pending: 0, done: false };
        out.push({ name: '.', ino: node.ino, mode: S_IFDIR, nextOffset: 1 });
        out.push({ name: '..', ino: this.parentIno(node), mode: S_IFDIR, nextOffset: 2 });
        next = 2;
      } else if (offset === 1) {
        cursor = { after: undefined, pending: 0, done: false };
        out.push({ name: '..', ino: this.parentIno(node), mode: S_IFDIR, nextOffset: 2 });
        next = 2;
      } else {
        const known = d.positions.get(offset);
        if (known) cursor = known;
        else {
          // A seek back to an offset of an earlier batch: walk again from the start.
          cursor = { after: undefined, pending: 0, done: false };
          for (let at = 2; at < offset && !cursor.done;) {
            const batch = this.listBatch(d, cursor, offset - at);
            if (batch.entries.length === 0) break;
            at += batch.entries.length;
            cursor = batch.cursor;
          }
        }
      }
      d.positions = new Map();
      if (cursor.done) return out;
      // About what fits in the kernel's buffer (an entry is 24 bytes plus the name, 8-aligned).
      const want = Math.max(16, Math.min(1000, Math.floor(size / 32)));
      const batch = this.listBatch(d, cursor, want);
      for (const e of batch.entries) {
        next++;
        d.positions.set(next, e.cursor);
        out.push({ name: e.name, ino: e.ino, mode: e.mode, nextOffset: next });
      }
      return out;
    } catch (err) {
      throw toFuseError(err);
    }
  }

  private parentIno(node: Node): number {
    if (node.ino === ROOT_INO) return ROOT_INO;
    if (node.kind === 'bucket') return ROOT_INO;
    const p = parentPath(node.path);
    if (p === '' && this.table.root.kind === 'root') return this.table.find(node.bucket, '', true)?.ino ?? ROOT_INO;
    if (p === '') return ROOT_INO;
    return this.table.inoFor(node.bucket, p, true);
  }

  // Up to `want` entries from `cursor` on, each with the cursor that continues after it. Keys
  // come one page at a time from the segment's ordered listing, never the whole directory.
  private listBatch(d: DirHandle, cursor: DirCursor, want: number): { entries: Array<{ name: string; ino: number; mode: number; cursor: DirCursor }>; cursor: DirCursor } {
    const node = d.node;
    const entries: Array<{ name: string; ino: number; mode: number; cursor: DirCursor }> = [];
    if (node.kind === 'root') {
      const buckets = this.segment.listBuckets().map((b) => b.name).sort(byteOrder);
      let i = cursor.after === undefined ? 0 : buckets.findIndex((b) => byteOrder(b, cursor.after!) > 0);
      if (i < 0) i = buckets.length;
      for (; i < buckets.length && entries.length < want; i++) {
        const name = buckets[i];
        entries.push({ name, ino: this.table.inoFor(name, '', true), mode: S_IFDIR, cursor: { after: name, pending: 0, done: i === buckets.length - 1 } });
      }
      return { entries, cursor: entries.length ? entries[entries.length - 1].cursor : { ...cursor, done: true } };
    }
    const prefix = node.path === '' ? '' : `${node.path}/`;
    let after = cursor.after;
    let pendingIdx = cursor.pending;
    const pendingAt = (i: number) => d.pending[i];
    while (entries.length < want) {
      const page = this.segment.list(node.bucket, { prefix, delimiter: '/', after, limit: Math.min(1000, want - entries.length + 8) });
      // Files and directories in key order (a directory sorts as its name plus '/').
      const rows: Array<{ key: string; dir: boolean; item?: ObjectSummary }> = [
        ...page.items.map((item) => ({ key: item.key, dir: false, item })),
        ...page.commonPrefixes.map((key) => ({ key, dir: true })),
      ].sort((a, b) => byteOrder(a.key, b.key));
      const dirs = new Set(page.commonPrefixes);
      const lastKey = rows.length ? rows[rows.length - 1].key : undefined;
      let stopped = false;
      for (const row of rows) {
        const name = row.dir ? row.key.slice(prefix.length, -1) : row.key.slice(prefix.length);
        // Uncommitted new files that sort before this key come first.
        while (pendingIdx < d.pending.length && byteOrder(prefix + pendingAt(pendingIdx), row.key) < 0 && entries.length < want) {
          const pname = pendingAt(pendingIdx++);
          entries.push({ name: pname, ino: this.table.inoFor(node.bucket, childPath(node.path, pname), false), mode: S_IFREG, cursor: { after, pending: pendingIdx, done: false } });
        }
        if (entries.length >= want) {
          stopped = true;
          break;
        }
        after = row.key;
        if (pendingIdx < d.pending.length && prefix + pendingAt(pendingIdx) === row.key) pendingIdx++;
        if (!this.visible(name)) continue;
        if (!row.dir) {
          // A file shadowed by a directory of the same name is not listed (the directory wins).
          const asDir = `${row.key}/`;
          const known = !page.truncated || (page.next !== undefined && byteOrder(page.next, asDir) >= 0);
          if (known ? dirs.has(asDir) : this.firstUnder(node.bucket, asDir) !== undefined) continue;
        }
        const path = childPath(node.path, name);
        const mode = row.dir ? S_IFDIR : row.item!.size > 0 ? S_IFREG : 0;
        entries.push({ name, ino: this.table.inoFor(node.bucket, path, row.dir), mode, cursor: { after, pending: pendingIdx, done: false } });
      }
      if (stopped) break;
      if (!page.truncated) {
        while (pendingIdx < d.pending.length && entries.length < want) {
          const pname = pendingAt(pendingIdx++);
          entries.push({ name: pname, ino: this.table.inoFor(node.bucket, childPath(node.path, pname), false), mode: S_IFREG, cursor: { after, pending: pendingIdx, done: false } });
        }
        if (pendingIdx >= d.pending.length) {
          const done = { after, pending: pendingIdx, done: true };
          if (entries.length) entries[entries.length - 1].cursor = done;
          return { entries, cursor: done };
        }
        break;
      }
      if (lastKey === undefined) break;
      after = page.next ?? lastKey;
    }
    const last = entries.length ? entries[entries.length - 1].cursor : { after, pending: pendingIdx, done: false };
    return { entries, cursor: last };
  }

  // Names a key segment can have that are no valid file name: empty (from 'a//b', '/x'), or
  // longer than NAME_MAX. Such keys are not shown (README.md).
  private visible(name: string): boolean {
    return name !== '' && Buffer.byteLength(name) <= NAME_MAX;
  }

  async statfs(): Promise<Statfs> {
    try {
      const st = await fsp.statfs(this.segment.dataDir);
      return {
        bsize: st.bsize, frsize: st.bsize, blocks: st.blocks, bfree: st.bfree, bavail: st.bavail,
        files: st.files, ffree: st.ffree, namemax: NAME_MAX,
      };
    } catch (err) {
      throw toFuseError(err);
    }
  }
}

// An in-memory filesystem over FuseOperations, for tests of the binding: inodes, directories,
// regular files, symlinks, hard links, lookup counts. Plus hooks the tests use to see and steer
// what the kernel sends (write sizes, reads in flight, delays, injected failures).
import { setTimeout as sleep } from 'node:timers/promises';
import { constants } from 'node:fs';
import {
  FuseError, RENAME_EXCHANGE, RENAME_NOREPLACE,
  type Attr, type AttrReply, type CreateReply, type DirEntry, type Entry, type FuseOperations,
  type OpenReply, type RequestContext, type SetAttr, type Statfs,
} from '../../src/native/fuse.ts';

const S = { IFMT: constants.S_IFMT, IFDIR: constants.S_IFDIR, IFREG: constants.S_IFREG, IFLNK: constants.S_IFLNK };
const EXCL = constants.O_EXCL;

interface Node {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  data?: Buffer; // regular files; capacity may exceed size
  children?: Map<string, number>; // directories
  parent?: number; // directories, for '..'
  target?: string; // symlinks
  nlookup: number;
  opens: number;
}

export class MemFs implements FuseOperations {
  readonly nodes = new Map<number, Node>();
  // Steering and observation, for tests.
  readDelayMs = 0;
  beforeRead: (() => Promise<void>) | undefined;
  keepCache = false;
  entryTimeout = 1;
  maxWriteSize = 0;
  maxReadSize = 0;
  writes = 0;
  readsInFlight = 0;
  maxReadsInFlight = 0;
  #nextIno = 2;
  #nextFh = 1;
  #dirHandles = new Map<number, DirEntry[]>();

  constructor() {
    this.nodes.set(1, this.#node(1, S.IFDIR | 0o755, 0, 0));
    this.nodes.get(1)!.parent = 1;
    this.nodes.get(1)!.nlink = 2;
  }

  #node(ino: number, mode: number, uid: number, gid: number): Node {
    const now = Date.now();
    const n: Node = { ino, mode, uid, gid, nlink: 1, size: 0, atimeMs: now, mtimeMs: now, ctimeMs: now, nlookup: 0, opens: 0 };
    if ((mode & S.IFMT) === S.IFDIR) n.children = new Map();
    if ((mode & S.IFMT) === S.IFREG) n.data = Buffer.alloc(0);
    return n;
  }

  #get(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseError('ENOENT');
    return n;
  }

  #dir(ino: number): Node {
    const n = this.#get(ino);
    if (!n.children) throw new FuseError('ENOTDIR');
    return n;
  }

  #attr(n: Node): Attr {
    return { ino: n.ino, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, size: n.size,
      atimeMs: n.atimeMs, mtimeMs: n.mtimeMs, ctimeMs: n.ctimeMs };
  }

  #entry(n: Node): Entry {
    n.nlookup++;
    return { ino: n.ino, attr: this.#attr(n), attrTimeout: 1, entryTimeout: this.entryTimeout };
  }

  #add(parent: number, name: string, mode: number, ctx: RequestContext | undefined): Node {
    const dir = this.#dir(parent);
    if (dir.children!.has(name)) throw new FuseError('EEXIST');
    const n = this.#node(this.#nextIno++, mode, ctx?.uid ?? 0, ctx?.gid ?? 0);
    this.nodes.set(n.ino, n);
    dir.children!.set(name, n.ino);
    if (n.children) {
      n.parent = parent;
      n.nlink = 2;
      dir.nlink++;
    }
    dir.mtimeMs = dir.ctimeMs = Date.now();
    return n;
  }

  #maybeFree(n: Node): void {
    if (n.nlink === 0 && n.nlookup <= 0 && n.opens === 0) this.nodes.delete(n.ino);
  }

  #detach(dir: Node, name: string): Node {
    const n = this.#get(dir.children!.get(name)!);
    dir.children!.delete(name);
    if (n.children) {
      dir.nlink--;
      n.nlink = 0;
    } else {
      n.nlink--;
    }
    n.ctimeMs = dir.mtimeMs = dir.ctimeMs = Date.now();
    this.#maybeFree(n);
    return n;
  }

  #resize(n: Node, size: number): void {
    const data = n.data!;
    if (size > data.length) {
      const grown = Buffer.alloc(Math.max(size, Math.min(data.length * 2, size + (64 << 20))));
      data.copy(grown, 0, 0, n.size);
      n.data = grown;
    } else if (size < n.size) {
      data.fill(0, size, n.size);
    }
    n.size = size;
  }

  // Create a file behind the kernel's back (its page cache knows nothing of it).
  addFile(name: string, content: Buffer, parent = 1): number {
    const n = this.#add(parent, name, S.IFREG | 0o644, undefined);
    n.data = Buffer.from(content);
    n.size = content.length;
    return n.ino;
  }

  // Replace a file's bytes behind the kernel's back, keeping its size and times.
  overwrite(ino: number, content: Buffer): void {
    const n = this.#get(ino);
    content.copy(n.data!, 0);
  }

  // Remove a name behind the kernel's back (its dentry cache still has it).
  removeName(name: string, parent = 1): void {
    this.#detach(this.#dir(parent), name);
  }

  inoOf(name: string, parent = 1): number | undefined {
    return this.#dir(parent).children!.get(name);
  }

  async lookup(parent: number, name: string): Promise<Entry> {
    if (name.startsWith('throw-')) throw new Error(`memfs: injected failure for ${name}`);
    if (name.startsWith('unknown-code-')) throw Object.assign(new Error('odd'), { code: 'ENOTANERRNO' });
    if (name.startsWith('eacces-')) throw Object.assign(new Error('denied'), { code: 'EACCES' });
    if (name.startsWith('malformed-')) return { ino: 99, attr: 'not an attr' } as unknown as Entry;
    const ino = this.#dir(parent).children!.get(name);
    if (ino === undefined) throw new FuseError('ENOENT');
    return this.#entry(this.#get(ino));
  }

  forget(ino: number, nlookup: number): void {
    const n = this.nodes.get(ino);
    if (!n || ino === 1) return;
    n.nlookup -= nlookup;
    this.#maybeFree(n);
  }

  async getattr(ino: number): Promise<AttrReply> {
    return { attr: this.#attr(this.#get(ino)), timeout: 1 };
  }

  async setattr(ino: number, ch: SetAttr): Promise<AttrReply> {
    const n = this.#get(ino);
    if (ch.mode !== undefined) n.mode = (n.mode & S.IFMT) | (ch.mode & 0o7777);
    if (ch.uid !== undefined) n.uid = ch.uid;
    if (ch.gid !== undefined) n.gid = ch.gid;
    if (ch.size !== undefined) {
      if (!n.data) throw new FuseError('EISDIR');
      this.#resize(n, ch.size);
      n.mtimeMs = Date.now();
    }
    if (ch.atimeMs !== undefined) n.atimeMs = ch.atimeMs;
    if (ch.mtimeMs !== undefined) n.mtimeMs = ch.mtimeMs;
    n.ctimeMs = ch.ctimeMs ?? Date.now();
    return { attr: this.#attr(n), timeout: 1 };
  }

  async readlink(ino: number): Promise<string> {
    const n = this.#get(ino);
    if (n.target === undefined) throw new FuseError('EINVAL');
    return n.target;
  }

  async mknod(parent: number, name: string, mode: number, _rdev: number, ctx: RequestContext): Promise<Entry> {
    if ((mode & S.IFMT) !== S.IFREG) throw new FuseError('EPERM');
    return this.#entry(this.#add(parent, name, mode, ctx));
  }

  async mkdir(parent: number, name: string, mode: number, ctx: RequestContext): Promise<Entry> {
    return this.#entry(this.#add(parent, name, S.IFDIR | (mode & 0o7777), ctx));
  }

  async unlink(parent: number, name: string): Promise<void> {
    const dir = this.#dir(parent);
    const ino = dir.children!.get(name);
    if (ino === undefined) throw new FuseError('ENOENT');
    if (this.#get(ino).children) throw new FuseError('EISDIR');
    this.#detach(dir, name);
  }

  async rmdir(parent: number, name: string): Promise<void> {
    const dir = this.#dir(parent);
    const ino = dir.children!.get(name);
    if (ino === undefined) throw new FuseError('ENOENT');
    const n = this.#get(ino);
    if (!n.children) throw new FuseError('ENOTDIR');
    if (n.children.size > 0) throw new FuseError('ENOTEMPTY');
    this.#detach(dir, name);
  }

  async symlink(target: string, parent: number, name: string, ctx: RequestContext): Promise<Entry> {
    const n = this.#add(parent, name, S.IFLNK | 0o777, ctx);
    n.target = target;
    n.size = Buffer.byteLength(target);
    return this.#entry(n);
  }

  async rename(parent: number, name: string, newParent: number, newName: string, flags: number): Promise<void> {
    const from = this.#dir(parent);
    const to = this.#dir(newParent);
    const ino = from.children!.get(name);
    if (ino === undefined) throw new FuseError('ENOENT');
    const victim = to.children!.get(newName);
    if (flags & RENAME_EXCHANGE) {
      if (victim === undefined) throw new FuseError('ENOENT');
      from.children!.set(name, victim);
      to.children!.set(newName, ino);
      for (const [n, dir] of [[this.#get(ino), to], [this.#get(victim), from]] as const) {
        if (n.children && n.parent !== dir.ino) {
          this.#get(n.parent!).nlink--;
          dir.nlink++;
          n.parent = dir.ino;
        }
      }
      return;
    }
    if (victim === ino) return;
    const n = this.#get(ino);
    if (victim !== undefined) {
      if (flags & RENAME_NOREPLACE) throw new FuseError('EEXIST');
      const v = this.#get(victim);
      if (v.children && !n.children) throw new FuseError('EISDIR');
      if (!v.children && n.children) throw new FuseError('ENOTDIR');
      if (v.children && v.children.size > 0) throw new FuseError('ENOTEMPTY');
      this.#detach(to, newName);
    }
    from.children!.delete(name);
    to.children!.set(newName, ino);
    if (n.children && parent !== newParent) {
      from.nlink--;
      to.nlink++;
      n.parent = newParent;
    }
    n.ctimeMs = from.mtimeMs = to.mtimeMs = Date.now();
  }

  async link(ino: number, newParent: number, newName: string): Promise<Entry> {
    const n = this.#get(ino);
    if (n.children) throw new FuseError('EPERM');
    const dir = this.#dir(newParent);
    if (dir.children!.has(newName)) throw new FuseError('EEXIST');
    dir.children!.set(newName, ino);
    n.nlink++;
    n.ctimeMs = Date.now();
    return this.#entry(n);
  }

  async open(ino: number): Promise<OpenReply> {
    const n = this.#get(ino);
    n.opens++;
    return { fh: this.#nextFh++, keepCache: this.keepCache };
  }

  async read(ino: number, _fh: number, size: number, offset: number): Promise<Buffer> {
    this.readsInFlight++;
    this.maxReadsInFlight = Math.max(this.maxReadsInFlight, this.readsInFlight);
    this.maxReadSize = Math.max(this.maxReadSize, size);
    try {
      if (this.readDelayMs > 0) await sleep(this.readDelayMs);
      if (this.beforeRead) await this.beforeRead();
      const n = this.#get(ino);
      if (!n.data) throw new FuseError('EISDIR');
      const end = Math.min(n.size, offset + size);
      return offset >= end ? Buffer.alloc(0) : n.data.subarray(offset, end);
    } finally {
      this.readsInFlight--;
    }
  }

  async write(ino: number, _fh: number, buf: Buffer, offset: number): Promise<number> {
    this.writes++;
    this.maxWriteSize = Math.max(this.maxWriteSize, buf.length);
    const n = this.#get(ino);
    if (!n.data) throw new FuseError('EISDIR');
    if (offset + buf.length > n.size) this.#resize(n, offset + buf.length);
    buf.copy(n.data!, offset);
    n.mtimeMs = n.ctimeMs = Date.now();
    return buf.length;
  }

  async flush(): Promise<void> {}

  async release(ino: number): Promise<void> {
    const n = this.nodes.get(ino);
    if (!n) return;
    n.opens--;
    this.#maybeFree(n);
  }

  async fsync(): Promise<void> {}

  async opendir(ino: number): Promise<OpenReply> {
    const dir = this.#dir(ino);
    // A snapshot per open: offsets stay meaningful while the directory changes underneath.
    const names: [string, number][] = [['.', ino], ['..', dir.parent ?? 1], ...dir.children!];
    const entries = names.map(([name, child], i) => ({
      name, ino: child, mode: this.nodes.get(child)?.mode ?? S.IFREG, nextOffset: i + 1,
    }));
    const fh = this.#nextFh++;
    this.#dirHandles.set(fh, entries);
    return { fh };
  }

  async readdir(_ino: number, fh: number, offset: number): Promise<DirEntry[]> {
    const entries = this.#dirHandles.get(fh);
    if (!entries) throw new FuseError('EBADF');
    return entries.slice(offset, offset + 256);
  }

  async releasedir(_ino: number, fh: number): Promise<void> {
    this.#dirHandles.delete(fh);
  }

  async statfs(): Promise<Statfs> {
    return { bsize: 4096, blocks: 1 << 24, bfree: 1 << 23, files: 1 << 20, ffree: (1 << 20) - this.nodes.size };
  }

  async create(parent: number, name: string, mode: number, flags: number, ctx: RequestContext): Promise<CreateReply> {
    const existing = this.#dir(parent).children!.get(name);
    let n: Node;
    if (existing !== undefined) {
      if (flags & EXCL) throw new FuseError('EEXIST');
      n = this.#get(existing);
    } else {
      n = this.#add(parent, name, S.IFREG | (mode & 0o7777), ctx);
    }
    n.opens++;
    return { ...this.#entry(n), fh: this.#nextFh++, keepCache: this.keepCache };
  }

  async fallocate(ino: number, _fh: number, offset: number, length: number, mode: number): Promise<void> {
    if (mode !== 0) throw new FuseError('EOPNOTSUPP');
    const n = this.#get(ino);
    if (offset + length > n.size) this.#resize(n, offset + length);
  }
}

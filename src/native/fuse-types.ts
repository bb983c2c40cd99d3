// Types of the FUSE binding (src/native/fuse.ts), in plain TS terms. Inode numbers, file handles
// and offsets are numbers: the filesystem chooses inode numbers and handles, so it keeps them
// below 2^53; times are milliseconds since the epoch (fractional, ~µs precision).
import { constants } from 'node:os';

export interface Attr {
  ino: number;
  mode: number; // type and permission bits, as in stat(2)
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  rdev?: number;
  blocks?: number; // 512-byte units; default ceil(size / 512)
  blksize?: number; // default 4096
}

// attrTimeout/entryTimeout: seconds the kernel may cache the attributes / the name (default 1).
export interface Entry {
  ino: number;
  attr: Attr;
  generation?: number;
  attrTimeout?: number;
  entryTimeout?: number;
}

// Lookup answer that caches "no such name" for entryTimeout seconds (ENOENT caches nothing).
export interface NegativeEntry {
  ino: 0;
  entryTimeout: number;
}

export interface AttrReply {
  attr: Attr;
  timeout?: number;
}

export interface OpenReply {
  fh?: number;
  directIo?: boolean; // bypass the page cache for this open file
  keepCache?: boolean; // keep cached pages from earlier opens
  nonSeekable?: boolean;
  cacheDir?: boolean; // opendir: let the kernel cache the listing
}

export type CreateReply = Entry & OpenReply;

export interface DirEntry {
  name: string;
  ino: number;
  mode: number; // only the type bits (S_IFMT) are used
  nextOffset: number; // the offset to pass back to continue right after this entry
}

// Only the fields the caller asked to change are present. *_NOW requests arrive as the current time.
export interface SetAttr {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  ctimeMs?: number;
}

export interface Statfs {
  bsize?: number;
  frsize?: number;
  blocks: number;
  bfree: number;
  bavail?: number;
  files: number;
  ffree: number;
  namemax?: number;
}

// The process that caused the request.
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
}

export interface ConnInfo {
  protoMajor: number;
  protoMinor: number;
  capable: number;
  want: number;
  maxWrite: number;
  writebackCache: boolean;
}

export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

// Every method is optional; what is missing is not registered with libfuse, which then answers
// ENOSYS (or, for open/opendir/release/releasedir/statfs, its own harmless default).
// Throw a FuseError, or any error with an errno `.code` ('ENOENT'), to answer that errno;
// anything else answers EIO. Handlers run concurrently: many requests are in flight at once.
export interface FuseOperations {
  init?(conn: ConnInfo): void;
  destroy?(): void;
  lookup?(parent: number, name: string, ctx: RequestContext): Promise<Entry | NegativeEntry>;
  forget?(ino: number, nlookup: number): void;
  getattr?(ino: number, fh: number | undefined, ctx: RequestContext): Promise<AttrReply>;
  setattr?(ino: number, changes: SetAttr, fh: number | undefined, ctx: RequestContext): Promise<AttrReply>;
  readlink?(ino: number, ctx: RequestContext): Promise<string>;
  mknod?(parent: number, name: string, mode: number, rdev: number, ctx: RequestContext): Promise<Entry>;
  mkdir?(parent: number, name: string, mode: number, ctx: RequestContext): Promise<Entry>;
  unlink?(parent: number, name: string, ctx: RequestContext): Promise<void>;
  rmdir?(parent: number, name: string, ctx: RequestContext): Promise<void>;
  symlink?(target: string, parent: number, name: string, ctx: RequestContext): Promise<Entry>;
  // flags: RENAME_NOREPLACE | RENAME_EXCHANGE
  rename?(parent: number, name: string, newParent: number, newName: string, flags: number, ctx: RequestContext): Promise<void>;
  link?(ino: number, newParent: number, newName: string, ctx: RequestContext): Promise<Entry>;
  open?(ino: number, flags: number, ctx: RequestContext): Promise<OpenReply>;
  read?(ino: number, fh: number, size: number, offset: number, ctx: RequestContext): Promise<Uint8Array>;
  // Returns the number of bytes written. `buf` is owned by the handler (no copy needed to keep it).
  write?(ino: number, fh: number, buf: Buffer, offset: number, flags: number, ctx: RequestContext): Promise<number>;
  flush?(ino: number, fh: number, ctx: RequestContext): Promise<void>;
  release?(ino: number, fh: number, flags: number, ctx: RequestContext): Promise<void>;
  fsync?(ino: number, fh: number, datasync: boolean, ctx: RequestContext): Promise<void>;
  opendir?(ino: number, flags: number, ctx: RequestContext): Promise<OpenReply>;
  // Entries from `offset` on (0 = start); return as many as convenient, the binding packs what
  // fits in `size` bytes and the kernel asks again from the last packed entry's nextOffset.
  readdir?(ino: number, fh: number, offset: number, size: number, ctx: RequestContext): Promise<DirEntry[]>;
  releasedir?(ino: number, fh: number, ctx: RequestContext): Promise<void>;
  fsyncdir?(ino: number, fh: number, datasync: boolean, ctx: RequestContext): Promise<void>;
  statfs?(ino: number, ctx: RequestContext): Promise<Statfs>;
  access?(ino: number, mask: number, ctx: RequestContext): Promise<void>;
  create?(parent: number, name: string, mode: number, flags: number, ctx: RequestContext): Promise<CreateReply>;
  fallocate?(ino: number, fh: number, offset: number, length: number, mode: number, ctx: RequestContext): Promise<void>;
}

export interface MountOptions {
  fsname?: string; // shown as the mount source (default 'stitchfs')
  subtype?: string; // type shows as fuse.<subtype> (default 'stitchfs')
  allowOther?: boolean; // default false: only the mounting user may enter
  defaultPermissions?: boolean; // kernel checks mode bits (default false: the filesystem decides)
  readOnly?: boolean;
  writebackCache?: boolean; // default false: every write reaches the filesystem before returning
  maxWrite?: number; // bytes, default and maximum 1 MiB
  maxThreads?: number; // FUSE loop threads, default 8 (they only hand requests over)
  debug?: boolean; // libfuse request trace on stderr
  handleSignals?: boolean; // on SIGINT/SIGTERM unmount, then let the signal end the process
  clearStale?: boolean; // lazily unmount a dead FUSE mount left on the mountpoint (default true)
  onError?: (err: unknown, op: string) => void; // unexpected errors answered as EIO (default: console.error)
}

export interface UnmountOptions {
  // When the mount is busy: true aborts the connection (users get ENOTCONN) and detaches it;
  // false detaches lazily and resolves only when the last user has gone. Default true.
  force?: boolean;
}

const errnoByCode = constants.errno as Record<string, number>;
const codeByErrno = new Map(Object.entries(errnoByCode).map(([code, n]) => [n, code]));

export class FuseError extends Error {
  readonly errno: number;
  readonly code: string;

  constructor(code: string | number, message?: string) {
    const errno = typeof code === 'number' ? code : (errnoByCode[code] ?? errnoByCode.EIO);
    const name = typeof code === 'string' && code in errnoByCode ? code : (codeByErrno.get(errno) ?? 'EIO');
    super(message ?? name);
    this.name = 'FuseError';
    this.errno = errno;
    this.code = name;
  }
}

// The errno a thrown value answers, or undefined if it names none (then the binding answers EIO).
export function errnoOf(err: unknown): number | undefined {
  if (err instanceof FuseError) return err.errno;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code in errnoByCode) return errnoByCode[code];
  return undefined;
}

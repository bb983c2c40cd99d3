// Typed wrapper over native/fuse, the N-API binding to libfuse3's low-level API.
//
// The kernel's requests arrive here as calls of one dispatcher on the JS thread; each handler's
// promise answers its request whenever it settles, so any number of requests are in flight and
// neither side ever waits for the other. Types and errors live in fuse-types.ts.
//
// Never touch a mount served by this process with synchronous fs calls: the JS thread would block
// in the kernel waiting for itself. Use fs.promises or child processes.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { errnoOf, FuseError } from './fuse-types.ts';
import type { ConnInfo, FuseOperations, MountOptions, UnmountOptions } from './fuse-types.ts';

export * from './fuse-types.ts';

declare const brand: unique symbol;
type Req = { readonly [brand]: 'req' };
type Handle = { readonly [brand]: 'session' };
type Dispatch = (op: number, req: Req | undefined, uid: number, gid: number, pid: number, umask: number,
  ...x: unknown[]) => void;

interface Addon {
  mount(mountpoint: string, options: object, dispatch: Dispatch): Handle;
  unmount(handle: Handle, force: boolean): boolean;
  abort(handle: Handle): number;
  notifyInvalInode(handle: Handle, ino: number, offset: number, length: number): Promise<void>;
  notifyInvalEntry(handle: Handle, parent: number, name: string): Promise<void>;
  // replyErr(req, errno) and one reply per answer type (replyEntry, replyAttr, ...).
  [reply: `reply${string}`]: (req: Req, value: unknown) => boolean;
}

const ADDON_PATH = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../native/fuse/build/Release/fuse.node');
let addon: Addon | undefined;

function load(): Addon {
  if (!addon) {
    try {
      addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    } catch (err) {
      throw new Error(`FUSE addon not available at ${ADDON_PATH}: build it with \`node scripts/setup.mjs\` ` +
        `(needs libfuse3-dev and a C compiler). Cause: ${(err as Error).message}`, { cause: err });
    }
  }
  return addon;
}

// Op codes and argument order shared with native/fuse/src (addon.h, dispatch.c op_args).
const EV_INIT = 0, EV_DESTROY = 1, EV_FORGET = 3, EV_MOUNTED = 40, EV_EXIT = 41, EV_UNMOUNTED = 42;
// op -> [handler, argument count before ctx, reply export ('' = plain success)]
const REQUESTS: Record<number, [keyof FuseOperations, number, string]> = {
  2: ['lookup', 2, 'replyEntry'],
  4: ['getattr', 2, 'replyAttr'],
  5: ['setattr', 3, 'replyAttr'],
  6: ['readlink', 1, 'replyReadlink'],
  7: ['mknod', 4, 'replyEntry'],
  8: ['mkdir', 3, 'replyEntry'],
  9: ['unlink', 2, ''],
  10: ['rmdir', 2, ''],
  11: ['symlink', 3, 'replyEntry'],
  12: ['rename', 5, ''],
  13: ['link', 3, 'replyEntry'],
  14: ['open', 2, 'replyOpen'],
  15: ['read', 4, 'replyBuf'],
  16: ['write', 5, 'replyWrite'],
  17: ['flush', 2, ''],
  18: ['release', 3, ''],
  19: ['fsync', 3, ''],
  20: ['opendir', 2, 'replyOpen'],
  21: ['readdir', 4, 'replyDirents'],
  22: ['releasedir', 2, ''],
  23: ['fsyncdir', 3, ''],
  24: ['statfs', 1, 'replyStatfs'],
  25: ['access', 2, ''],
  26: ['create', 4, 'replyCreate'],
  27: ['fallocate', 5, ''],
};
const { EIO, ENOSYS, EINVAL } = constants.errno;
const FUSE_CAP_WRITEBACK_CACHE = 1 << 16;

function opMask(ops: FuseOperations): number {
  let mask = 0;
  for (const [op, [name]] of Object.entries(REQUESTS)) if (typeof ops[name] === 'function') mask |= 1 << Number(op);
  if (typeof ops.forget === 'function') mask |= 1 << EV_FORGET;
  return mask;
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null)?.then === 'function';
}

// Whether a dead FUSE mount ("Transport endpoint is not connected") sits on `mountpoint`; if so,
// detach it lazily so that it can be mounted again.
export async function clearStaleMount(mountpoint: string): Promise<boolean> {
  try {
    await fs.stat(mountpoint);
    return false;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOTCONN' && code !== 'ECONNABORTED') return false;
  }
  const run = promisify(execFile);
  try {
    await run('umount', ['-l', mountpoint]);
  } catch {
    await run('fusermount3', ['-u', '-z', mountpoint]);
  }
  return true;
}

const live = new Set<FuseMount>();
const signalMounts = new Set<FuseMount>();

// process.exit() with a mount still up would leave it stale: abort it synchronously instead.
function abortAll(): void {
  for (const m of live) m.abortSync();
}

let stopping = false;

async function onSignal(signal: NodeJS.Signals): Promise<void> {
  if (stopping) {
    abortAll(); // a second signal while unmounting means "now"
    return;
  }
  stopping = true;
  await Promise.allSettled([...signalMounts].map((m) => m.unmount()));
  stopping = false;
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  // Nobody else listens: re-raise so the default action ends the process as the signal meant.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function track(m: FuseMount, signals: boolean): void {
  if (live.size === 0) process.on('exit', abortAll);
  live.add(m);
  if (signals) {
    if (signalMounts.size === 0) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }
    signalMounts.add(m);
  }
}

function untrack(m: FuseMount): void {
  live.delete(m);
  if (live.size === 0) process.off('exit', abortAll);
  if (signalMounts.delete(m) && signalMounts.size === 0) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export class FuseMount {
  readonly mountpoint: string;
  // Settles when the session has ended for any reason (unmount(), `umount` from outside, abort).
  readonly closed: Promise<void>;
  #addon: Addon;
  #handle: Handle | undefined;
  #conn: ConnInfo | undefined;
  #ended = false;
  #endClosed: () => void = () => {};
  #unmounting: Promise<void> | undefined;
  #unmountFailed: ((err: Error) => void) | undefined;

  private constructor(addon: Addon, mountpoint: string) {
    this.#addon = addon;
    this.mountpoint = mountpoint;
    this.closed = new Promise((resolve) => (this.#endClosed = resolve));
  }

  get conn(): ConnInfo | undefined {
    return this.#conn;
  }

  get mounted(): boolean {
    return this.#conn !== undefined && !this.#ended;
  }

  // Resolves once the kernel has completed INIT, i.e. the filesystem is usable.
  static async mount(mountpoint: string, ops: FuseOperations, options: MountOptions = {}): Promise<FuseMount> {
    const addon = load();
    let target = path.resolve(mountpoint);
    if (options.clearStale !== false) await clearStaleMount(target);
    const st = await fs.stat(target);
    if (!st.isDirectory()) throw new FuseError('ENOTDIR', `mountpoint ${target} is not a directory`);
    // libfuse unmounts by this exact string, so it must be canonical.
    target = path.join(await fs.realpath(path.dirname(target)), path.basename(target));
    const m = new FuseMount(addon, target);
    await m.#start(ops, options);
    return m;
  }

  #start(ops: FuseOperations, options: MountOptions): Promise<void> {
    const onError = options.onError ?? ((err: unknown, op: string) => console.error(`fuse ${op}:`, err));
    return new Promise<void>((resolve, reject) => {
      const b = this.#addon;
      const fail = (req: Req, op: string, err: unknown): void => {
        let errno = errnoOf(err);
        if (errno === undefined || errno <= 0 || errno >= 1000) {
          onError(err, op);
          errno = EIO;
        }
        b.replyErr(req, errno);
      };
      const answer = (req: Req, op: string, reply: string, value: unknown): void => {
        try {
          if (reply === '') b.replyErr(req, 0);
          else b[reply as `reply${string}`](req, value);
        } catch (err) {
          fail(req, op, err); // malformed answer: the request still gets one (EIO)
        }
      };
      const dispatch: Dispatch = (op, req, uid, gid, pid, umask, ...x) => {
        const row = REQUESTS[op];
        if (row && req) {
          const [name, argc, reply] = row;
          const fn = ops[name] as ((...args: unknown[]) => unknown) | undefined;
          if (typeof fn !== 'function') {
            b.replyErr(req, ENOSYS);
            return;
          }
          let result: unknown;
          try {
            x.length = argc;
            x.push({ uid, gid, pid, umask });
            result = fn.apply(ops, x);
          } catch (err) {
            fail(req, name, err);
            return;
          }
          if (isThenable(result)) {
            result.then((v) => answer(req, name, reply, v), (err: unknown) => fail(req, name, err));
          } else {
            answer(req, name, reply, result);
          }
          return;
        }
        try {
          this.#event(op, x, ops, resolve, reject);
        } catch (err) {
          onError(err, `event ${op}`);
        }
      };
      const { fsname, subtype, allowOther, defaultPermissions, readOnly, writebackCache, maxWrite, maxThreads, debug } = options;
      this.#handle = b.mount(this.mountpoint, {
        fsname, subtype, allowOther, defaultPermissions, readOnly, writebackCache, maxWrite, maxThreads, debug,
        opMask: opMask(ops),
      }, dispatch);
      track(this, options.handleSignals === true);
    });
  }

  #event(op: number, x: unknown[], ops: FuseOperations, resolve: () => void, reject: (err: Error) => void): void {
    switch (op) {
      case EV_INIT: {
        const [protoMajor, protoMinor, capable, want, maxWrite] = x as number[];
        this.#conn = { protoMajor, protoMinor, capable, want, maxWrite, writebackCache: (want & FUSE_CAP_WRITEBACK_CACHE) !== 0 };
        resolve();
        ops.init?.(this.#conn);
        break;
      }
      case EV_DESTROY:
        ops.destroy?.();
        break;
      case EV_FORGET: {
        if (!ops.forget) break;
        if (Array.isArray(x[0])) {
          const list = x[0] as number[];
          for (let i = 0; i < list.length; i += 2) ops.forget(list[i], list[i + 1]);
        } else {
          ops.forget(x[0] as number, x[1] as number);
        }
        break;
      }
      case EV_MOUNTED:
        break;
      case EV_EXIT: {
        this.#ended = true;
        untrack(this);
        if (!this.#conn) reject(new Error(`cannot mount ${this.mountpoint}: ${x[1] ?? 'session ended before INIT'}`));
        this.#endClosed();
        break;
      }
      case EV_UNMOUNTED: {
        const errno = x[0] as number;
        // EINVAL: no longer mounted there, so the session is ending anyway.
        if (errno !== 0 && errno !== EINVAL && !this.#ended) this.#unmountFailed?.(new FuseError(errno, `unmount ${this.mountpoint}: ${new FuseError(errno).code}`));
        break;
      }
    }
  }

  // Ends the session and removes the mount; resolves once the FUSE threads are gone. Requests
  // still being handled in JS are answered EIO; their late answers are ignored.
  unmount(options: UnmountOptions = {}): Promise<void> {
    if (this.#ended || !this.#handle) return this.closed;
    if (!this.#unmounting) {
      const failed = new Promise<never>((_, reject) => (this.#unmountFailed = reject));
      this.#unmounting = Promise.race([this.closed, failed]).finally(() => {
        this.#unmounting = undefined;
        this.#unmountFailed = undefined;
      });
      if (!this.#addon.unmount(this.#handle, options.force !== false)) return this.closed;
    }
    return this.#unmounting;
  }

  // For process exit only: aborts the connection and detaches the mount without waiting.
  abortSync(): void {
    if (!this.#ended && this.#handle) this.#addon.abort(this.#handle);
  }

  // Drop cached data of `ino` from `offset` for `length` bytes (0 = to the end); offset < 0 drops
  // only cached attributes. Resolves when the kernel has done it.
  notifyInvalInode(ino: number, offset = 0, length = 0): Promise<void> {
    if (this.#ended || !this.#handle) return Promise.resolve();
    return this.#addon.notifyInvalInode(this.#handle, ino, offset, length);
  }

  // Drop the kernel's cached name `name` in directory `parent`.
  notifyInvalEntry(parent: number, name: string): Promise<void> {
    if (this.#ended || !this.#handle) return Promise.resolve();
    return this.#addon.notifyInvalEntry(this.#handle, parent, name);
  }
}

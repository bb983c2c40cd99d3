// A segment mounted as a filesystem: StitchFs on the libfuse3 binding, wired to the segment's
// version events, with an unmount that commits open files first.
import { readFile, writeFile } from 'node:fs/promises';
import { FuseMount } from '../native/fuse.ts';
import type { Segment } from '../segment/segment.ts';
import { StitchFs, type StitchFsOptions } from './filesystem.ts';
import { instrumented } from './instrument.ts';

export interface StitchMountOptions extends StitchFsOptions {
  allowOther?: boolean;
  debug?: boolean;
  // The kernel checks permission bits against uid/gid/mode (default true).
  defaultPermissions?: boolean;
  onError?: (err: unknown, op: string) => void;
  // Kernel read-ahead for the mount (KiB). FUSE mounts start at 128 KiB, which splits sequential
  // reads into 128 KiB requests; 1024 matches the 1 MiB max_read. Needs root; else left alone.
  readaheadKiB?: number;
}

// /sys/class/bdi/<major:minor>/read_ahead_kb of the mount, found through /proc/self/mountinfo.
async function raiseReadahead(mountpoint: string, kib: number): Promise<void> {
  try {
    const line = (await readFile('/proc/self/mountinfo', 'utf8')).split('\n').find((l) => l.split(' ')[4] === mountpoint);
    const dev = line?.split(' ')[2];
    if (dev) await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, String(kib));
  } catch {
    // not root, or no sysfs: the kernel default stays
  }
}

export class StitchMount {
  readonly fs: StitchFs;
  readonly fuse: FuseMount;
  // Settles when the mount has gone (unmount(), `umount` from outside, abort) and state is dropped.
  readonly closed: Promise<void>;
  private unmounting: Promise<void> | undefined;

  private constructor(fs: StitchFs, fuse: FuseMount) {
    this.fs = fs;
    this.fuse = fuse;
    this.closed = fuse.closed.then(() => fs.close());
  }

  get mountpoint(): string {
    return this.fuse.mountpoint;
  }

  static async mount(segment: Segment, mountpoint: string, opts: StitchMountOptions = {}): Promise<StitchMount> {
    const fs = new StitchFs(segment, opts);
    let fuse: FuseMount;
    try {
      fuse = await FuseMount.mount(mountpoint, instrumented(fs), {
        fsname: `stitchfs:${segment.name}${opts.bucket ? `/${opts.bucket}` : ''}`,
        subtype: 'stitchfs',
        allowOther: opts.allowOther,
        defaultPermissions: opts.defaultPermissions ?? true,
        readOnly: opts.readOnly,
        debug: opts.debug,
        onError: opts.onError,
      });
    } catch (err) {
      await fs.close();
      throw err;
    }
    fs.attach(fuse);
    await raiseReadahead(fuse.mountpoint, opts.readaheadKiB ?? 1024);
    return new StitchMount(fs, fuse);
  }

  // Commits every file with uncommitted writes, then unmounts. With `force` (the default) a busy
  // mount is aborted (programs still using it get ENOTCONN); without, it is detached lazily.
  unmount(opts: { force?: boolean } = {}): Promise<void> {
    this.unmounting ??= (async () => {
      await this.fs.flushAll();
      await this.fuse.unmount({ force: opts.force ?? true });
      await this.closed;
    })();
    return this.unmounting;
  }
}

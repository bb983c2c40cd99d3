import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Command } from 'commander';
import { StitchMount } from '../../fuse/mount.ts';
import { Segment } from '../../segment/segment.ts';
import type { GlobalOptions } from '../open.ts';

export interface MountCliOptions {
  bucket?: string;
  readOnly?: boolean;
  allowOther?: boolean;
  debug?: boolean;
  pageCache?: boolean;
}

// Mounts `segment` (opened by the caller) at `mountpoint`: `stitch mount` and `stitch serve --mount`.
export async function startMount(segment: Segment, mountpoint: string, o: MountCliOptions): Promise<StitchMount> {
  const m = await StitchMount.mount(segment, mountpoint, {
    bucket: o.bucket, readOnly: o.readOnly, allowOther: o.allowOther, debug: o.debug, pageCache: o.pageCache,
    log: (msg) => console.error(msg),
  });
  console.error(`stitch: ${o.bucket ? `bucket '${o.bucket}'` : 'every bucket'} of segment '${segment.name}' mounted on ${m.mountpoint}`);
  return m;
}

export function registerMount(program: Command, g: () => GlobalOptions): void {
  program.command('mount')
    .argument('<mountpoint>', 'an existing directory')
    .option('--bucket <name>', 'mount one bucket as the root (default: every bucket as a top-level directory)')
    .option('--read-only', 'refuse every change')
    .option('--allow-other', 'let other users in too (permission bits still apply)')
    .option('--page-cache', 'read through the kernel page cache (faster re-reads, shared mmap; see src/fuse/README.md)')
    .option('--debug', 'trace FUSE requests on stderr')
    .description('mount the segment as a filesystem until unmounted (stitch umount) or interrupted')
    .action(async (mountpoint: string, o: MountCliOptions) => {
      const segment = await Segment.open({ dataDir: g().data, readOnly: o.readOnly });
      let m: StitchMount | undefined;
      try {
        m = await startMount(segment, mountpoint, o);
        // One line on stdout for scripts and tests that wait for readiness.
        console.log(JSON.stringify({ ready: true, mount: m.mountpoint, segment: segment.name, bucket: o.bucket ?? null }));
        let onSignal: (() => void) | undefined;
        const signalled = new Promise<void>((resolve) => {
          onSignal = resolve;
          process.once('SIGINT', resolve);
          process.once('SIGTERM', resolve);
        });
        await Promise.race([signalled, m.closed]);
        process.off('SIGINT', onSignal!);
        process.off('SIGTERM', onSignal!);
        // Open files are committed, then the mount goes (a busy one is aborted).
        await m.unmount();
        console.error(`stitch: unmounted ${m.mountpoint}`);
      } finally {
        await m?.unmount().catch(() => {});
        await segment.close();
      }
    });

  program.command('umount')
    .alias('unmount')
    .argument('<mountpoint>', 'where a stitch mount is')
    .option('--lazy', 'detach now even if busy; the mount goes when its last user does')
    .description('unmount a stitch mount (its process commits open files and exits)')
    .action(async (mountpoint: string, o: { lazy?: boolean }) => {
      const run = promisify(execFile);
      try {
        await run('fusermount3', ['-u', ...(o.lazy ? ['-z'] : []), mountpoint]);
      } catch (err) {
        // fusermount3 is for user mounts; root may have mounted it the plain way.
        try {
          await run('umount', [...(o.lazy ? ['-l'] : []), mountpoint]);
        } catch {
          const msg = ((err as { stderr?: string }).stderr ?? (err as Error).message).trim();
          throw new Error(`cannot unmount ${mountpoint}: ${msg}`);
        }
      }
    });
}

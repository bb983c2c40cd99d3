// A temp segment mounted by the test process, for the stitchfs mount tests. Drive the mount from
// child processes (sh) or async fs only: a synchronous fs call on it would block the JS thread
// that has to answer it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ChunkerParams } from '../../src/core/chunker.ts';
import { StitchMount, type StitchMountOptions } from '../../src/fuse/mount.ts';
import { Segment } from '../../src/segment/segment.ts';
import { forceUnmount, sh } from './mount-tools.ts';

export interface MountedSegment {
  seg: Segment;
  dir: string;
  mnt: string;
  mount: StitchMount;
  errors: Array<[string, unknown]>;
  // Unmounts (also a dead mount), closes the segment, removes everything.
  cleanup(): Promise<void>;
  // Mounts again on the same segment (after an unmount).
  remount(opts?: StitchMountOptions): Promise<StitchMount>;
}

export async function mountSegment(
  opts: StitchMountOptions & { buckets?: string[]; chunker?: ChunkerParams; base?: string } = {},
): Promise<MountedSegment> {
  const { buckets = ['bkt'], chunker, base, ...mountOpts } = opts;
  const dir = await mkdtemp(path.join(base ?? os.tmpdir(), 'stitch-fusefs-'));
  const mnt = path.join(dir, 'mnt');
  await mkdir(mnt);
  const seg = await Segment.open({ dataDir: path.join(dir, 'data'), chunker });
  for (const b of buckets) seg.createBucket(b);
  const errors: Array<[string, unknown]> = [];
  const o: StitchMountOptions = { onError: (err, op) => errors.push([op, err]), ...mountOpts };
  const ms: MountedSegment = {
    seg, dir, mnt, errors,
    mount: await StitchMount.mount(seg, mnt, o),
    async cleanup() {
      await ms.mount.unmount().catch(() => {});
      await forceUnmount(mnt);
      await seg.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
    async remount(more?: StitchMountOptions) {
      await ms.mount.unmount().catch(() => {});
      ms.mount = await StitchMount.mount(seg, mnt, { ...o, ...more });
      return ms.mount;
    },
  };
  return ms;
}

// Runs a shell script (in a child process) and fails the test on a non-zero exit.
export async function run(script: string, timeoutMs = 120_000): Promise<string> {
  const r = await sh(script, { timeoutMs });
  if (r.code !== 0) throw new Error(`exit ${r.code ?? r.signal}: ${script}\n${r.stderr}${r.stdout.slice(-2000)}`);
  return r.stdout;
}

// The system python (a pyenv shim on PATH costs 250 ms a start).
export const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

// 'OK', or the errno name (errno.errorcode) python saw running `pyExpr` in `cwd`.
export async function errnoOf(pyExpr: string, cwd: string): Promise<string> {
  const r = await sh(`cd '${cwd}' && ${PY} -c "
import errno, os, sys
try:
    ${pyExpr}
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])"`);
  return r.stdout.trim() || r.stderr.trim();
}

// `stitch mount`, `stitch umount` and `stitch serve --mount` as real processes: a SIGKILL during
// writes (stale mount cleared on remount, nothing fsync'ed lost), clean unmounts on SIGTERM and
// umount, and S3 and the mount served by one process.
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startStitch, stitch, type StitchChild } from '../helpers/fuse-cli.ts';
import { PY, run } from '../helpers/fuse-mount.ts';
import { forceUnmount, mountedAt, sh } from '../helpers/mount-tools.ts';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY, s3client } from '../helpers/s3-server.ts';

let tmp: string;
let data: string;
let mnt: string;
const children = new Set<StitchChild>();

async function mountChild(): Promise<StitchChild> {
  const c = await startStitch(data, ['mount', mnt, '--bucket', 'bkt']);
  children.add(c);
  return c;
}

async function until(pred: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(50);
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'stitch-fusecli-'));
  data = path.join(tmp, 'data');
  mnt = path.join(tmp, 'mnt');
  await mkdir(mnt);
  expect((await stitch(data, 'mb', 'bkt')).code).toBe(0);
});
afterEach(async () => {
  for (const c of children) if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
  children.clear();
  await forceUnmount(mnt);
});
afterAll(async () => {
  await forceUnmount(mnt);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// Block i of the streamed file: 1 MiB of the byte (i * 7 + 1) % 256, so any prefix is checkable.
const WRITER = (progress: string) => `
import os, sys
base = '${mnt}'
synced = bytes(range(256)) * 12288
fd = os.open(base + '/synced.bin', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.write(fd, synced)
os.fsync(fd)
os.close(fd)
fd = os.open(base + '/stream.bin', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
i = 0
while True:
    os.write(fd, bytes([(i * 7 + 1) % 256]) * 1048576)
    i += 1
    if i % 3 == 0:
        os.fsync(fd)
        with open('${progress}', 'w') as p:
            p.write(str(i))
`;

describe('stitch mount as a process', () => {
  it('loses nothing fsync\'ed to a SIGKILL during writes, and mounts again over the stale mount', async () => {
    const c = await mountChild();
    expect(c.ready.mount).toBe(mnt);
    const progress = path.join(tmp, 'progress');
    const writer = sh(`${PY} -c "${WRITER(progress)}"`, { timeoutMs: 60_000 });
    // Let it fsync a few times, then kill the mount in the middle of the writes.
    await until(async () => Number(await readFile(progress, 'utf8').catch(() => '0')) >= 6);
    c.child.kill('SIGKILL');
    expect((await c.exited).signal).toBe('SIGKILL');
    const fsynced = Number(await readFile(progress, 'utf8'));
    expect((await writer).code).not.toBe(0); // its mount went away under it
    await expect(stat(mnt)).rejects.toMatchObject({ code: 'ENOTCONN' });

    const again = await mountChild();
    expect(await mountedAt(mnt)).toBe(true);
    const check = await run(`${PY} -c "
data = open('${mnt}/synced.bin', 'rb').read()
assert data == bytes(range(256)) * 12288, 'synced.bin differs'
s = open('${mnt}/stream.bin', 'rb').read()
assert len(s) % 1048576 == 0, len(s)
for i in range(len(s) // 1048576):
    assert s[i * 1048576:(i + 1) * 1048576] == bytes([(i * 7 + 1) % 256]) * 1048576, i
print(len(s) // 1048576)"`);
    // Everything up to the last fsync that returned, maybe more; never a torn or foreign block.
    expect(Number(check.trim())).toBeGreaterThanOrEqual(fsynced);

    // stitch umount: the mount process commits, unmounts and exits cleanly.
    expect((await stitch(data, 'umount', mnt)).code).toBe(0);
    expect(await again.exited).toEqual({ code: 0, signal: null });
    expect(await mountedAt(mnt)).toBe(false);
    const fsck = await stitch(data, 'fsck');
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  });

  it('commits files still open and unmounts on SIGTERM', async () => {
    const c = await mountChild();
    const flag = path.join(tmp, 'written');
    const holder = spawn(PY, ['-c', `
import os, time
fd = os.open('${mnt}/open.txt', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'written, never closed')
open('${flag}', 'w').close()
time.sleep(30)`], { stdio: 'ignore' });
    const holderExit = new Promise((resolve) => holder.once('exit', resolve));
    await until(async () => (await stat(flag).catch(() => undefined)) !== undefined);
    c.child.kill('SIGTERM');
    expect(await c.exited).toEqual({ code: 0, signal: null });
    expect(await mountedAt(mnt)).toBe(false);
    expect((await stitch(data, 'get', 'bkt/open.txt', '-')).stdout).toBe('written, never closed');
    holder.kill('SIGKILL');
    await holderExit;
  });

  it('refuses to mount a segment another process holds, with a clear error', async () => {
    const c = await mountChild();
    const other = path.join(tmp, 'mnt2');
    await mkdir(other, { recursive: true });
    const r = await stitch(data, 'mount', other);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/lock|in use|held/i);
    c.child.kill('SIGINT');
    expect((await c.exited).code).toBe(0);
    expect(await mountedAt(mnt)).toBe(false);
  });
});

describe('stitch serve --mount', () => {
  it('serves S3 and the mount from one process over one segment', async () => {
    const s = await startStitch(data, ['serve', '--s3', '127.0.0.1:0', '--p2p', '/ip4/127.0.0.1/tcp/0', '--no-console', '--mount', mnt, '--mount-bucket', 'bkt'], {
      STITCH_ACCESS_KEY_ID: ACCESS_KEY_ID, STITCH_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    });
    children.add(s);
    expect(s.ready.mount).toBe(mnt);
    const s3 = s3client(s.ready.s3 as string);
    try {
      await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'via-s3.txt', Body: 'put over S3' }));
      expect(await run(`cat ${mnt}/via-s3.txt`)).toBe('put over S3');
      await run(`printf 'written on the mount' > ${mnt}/via-mount.txt`);
      const got = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: 'via-mount.txt' }));
      expect(await got.Body!.transformToString()).toBe('written on the mount');
    } finally {
      s3.destroy();
    }
    s.child.kill('SIGTERM');
    expect((await s.exited).code).toBe(0);
    expect(await mountedAt(mnt)).toBe(false);
  });
});

// The libfuse3 binding (native/fuse + src/native/fuse.ts) under real kernel traffic: an in-memory
// filesystem mounted by this process, driven by real tools in child processes so that the kernel
// does the I/O while this JS thread answers it. Never use synchronous fs calls on these mounts.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, rmdir, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FuseMount } from '../../src/native/fuse.ts';
import { MemFs } from '../helpers/mount-memfs.ts';
import { forceUnmount, mountedAt, ROOT, sh, startChild } from '../helpers/mount-tools.ts';

const MiB = 1 << 20;

async function until(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error('condition not reached in time');
    await sleep(10);
  }
}

function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

let tmp: string;
// Mounts a test may leave behind if it fails half-way; afterEach takes them down.
const extraMounts = new Set<{ mount?: FuseMount; dir: string }>();

async function freshDir(name: string): Promise<string> {
  const dir = path.join(tmp, name);
  await forceUnmount(dir);
  await mkdir(dir, { recursive: true });
  return dir;
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'stitch-fuse-'));
});

afterEach(async () => {
  for (const m of extraMounts) {
    await m.mount?.unmount().catch(() => {});
    await forceUnmount(m.dir);
  }
  extraMounts.clear();
});

afterAll(async () => {
  if (tmp) {
    for (const line of (await sh(`grep -F ' ${tmp}/' /proc/self/mountinfo | cut -d' ' -f5`)).stdout.split('\n')) {
      if (line) await forceUnmount(line);
    }
    await rm(tmp, { recursive: true, force: true });
  }
});

describe('FUSE binding over an in-memory filesystem', () => {
  let mnt: string;
  let memfs: MemFs;
  let mount: FuseMount;
  const errors: [string, unknown][] = [];

  beforeAll(async () => {
    mnt = await freshDir('mnt');
    memfs = new MemFs();
    mount = await FuseMount.mount(mnt, memfs, { onError: (err, op) => errors.push([op, err]) });
  });

  afterAll(async () => {
    await mount?.unmount().catch(() => {});
    if (mnt) await forceUnmount(mnt);
  });

  it('mounts as fuse.stitchfs with 1 MiB writes negotiated and no writeback cache', async () => {
    expect(mount.conn?.maxWrite).toBe(MiB);
    expect(mount.conn?.writebackCache).toBe(false);
    const info = (await sh(`grep -F ' ${mnt} ' /proc/self/mountinfo`)).stdout;
    expect(info).toContain('fuse.stitchfs');
    expect(info).toContain('max_read=1048576');
  });

  it('writes 64 MiB with dd in 1 MiB requests and reads back the same sha256', async () => {
    const src = path.join(tmp, 'src.bin');
    expect((await sh(`dd if=/dev/urandom of=${src} bs=1M count=64 status=none`)).code).toBe(0);
    const want = (await sh(`sha256sum < ${src}`)).stdout.split(' ')[0];

    memfs.maxWriteSize = 0;
    let t0 = performance.now();
    const w = await sh(`dd if=${src} of=${mnt}/big.bin bs=1M status=none`);
    const writeMs = performance.now() - t0;
    expect(w.stderr).toBe('');
    expect(w.code).toBe(0);
    expect(memfs.maxWriteSize).toBe(MiB);

    // open() without keepCache drops the page cache, so this really reads through FUSE.
    t0 = performance.now();
    const r = await sh(`dd if=${mnt}/big.bin of=/dev/null bs=1M status=none`);
    const readMs = performance.now() - t0;
    expect(r.code).toBe(0);
    expect((await sh(`sha256sum < ${mnt}/big.bin`)).stdout.split(' ')[0]).toBe(want);
    expect((await stat(`${mnt}/big.bin`)).size).toBe(64 * MiB);
    console.log(`memfs dd: write ${(64 / (writeMs / 1000)).toFixed(0)} MiB/s, read ${(64 / (readMs / 1000)).toFixed(0)} MiB/s ` +
      `(largest write ${memfs.maxWriteSize} B, largest read ${memfs.maxReadSize} B)`);
    await rm(`${mnt}/big.bin`);
  });

  it('lists a directory of 10,000 entries', async () => {
    const made = await sh(`mkdir ${mnt}/many && cd ${mnt}/many && seq -f 'f%05g' 1 10000 | xargs touch`);
    expect(made.stderr).toBe('');
    expect((await sh(`ls ${mnt}/many | wc -l`)).stdout.trim()).toBe('10000');
    expect((await sh(`ls -f ${mnt}/many | sort -u | wc -l`)).stdout.trim()).toBe('10002'); // with . and ..
    expect((await sh(`ls ${mnt}/many | tail -1`)).stdout.trim()).toBe('f10000');
  });

  it('renames over an existing file, and passes RENAME_NOREPLACE / RENAME_EXCHANGE through', async () => {
    const r = await sh(`cd ${mnt} && printf one > a && printf two > b && mv a b && cat b && ls`);
    expect(r.stderr).toBe('');
    expect(r.stdout.startsWith('one')).toBe(true);
    expect(r.stdout.split('\n')).not.toContain('a');

    const renameat2 = (from: string, to: string, flags: number) => sh(`cd ${mnt} && python3 -c "
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, b'${from}', -100, b'${to}', ${flags})
print(os.strerror(ctypes.get_errno()) if r else 'ok')"`);
    if ((await sh('command -v python3')).code !== 0) return;
    await sh(`cd ${mnt} && printf x > x && printf y > y`);
    expect((await renameat2('x', 'y', 1)).stdout.trim()).toBe('File exists');
    expect((await renameat2('x', 'y', 2)).stdout.trim()).toBe('ok');
    expect((await sh(`cd ${mnt} && cat x y`)).stdout).toBe('yx');
  });

  it('supports symlinks, hard links, chmod, truncate and utimes', async () => {
    const r = await sh(`cd ${mnt} && printf hello > f && ln -s f sl && readlink sl && cat sl && echo && ln f f2 && stat -c %h f` +
      ` && chmod 600 f && truncate -s 10 f && touch -m -d '2020-01-02 03:04:05.123' f && stat -c '%a %s %y' f`);
    expect(r.stderr).toBe('');
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 3)).toEqual(['f', 'hello', '2']);
    expect(lines[3]).toMatch(/^600 10 2020-01-02 03:04:05\.123/);
    expect((await sh(`cd ${mnt} && mknod p p`)).code).not.toBe(0); // only regular files
  });

  it('answers ENOTEMPTY for rmdir of a non-empty directory and ENOENT for missing names', async () => {
    await sh(`mkdir -p ${mnt}/full/sub && touch ${mnt}/full/file`);
    await expect(rmdir(`${mnt}/full`)).rejects.toMatchObject({ code: 'ENOTEMPTY' });
    await expect(stat(`${mnt}/missing`)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(stat(`${mnt}/full/missing/deeper`)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await sh(`cat ${mnt}/missing`)).stderr).toContain('No such file or directory');
  });

  it('answers EIO when a handler throws, returns junk or an unknown code; maps errno codes', async () => {
    errors.length = 0;
    await expect(stat(`${mnt}/throw-1`)).rejects.toMatchObject({ code: 'EIO' });
    await expect(stat(`${mnt}/malformed-1`)).rejects.toMatchObject({ code: 'EIO' });
    await expect(stat(`${mnt}/unknown-code-1`)).rejects.toMatchObject({ code: 'EIO' });
    await expect(stat(`${mnt}/eacces-1`)).rejects.toMatchObject({ code: 'EACCES' });
    expect(errors.map(([op]) => op)).toEqual(['lookup', 'lookup', 'lookup']);
    // and the mount is still healthy
    expect((await sh(`cat ${mnt}/b`)).stdout).toBe('one');
  });

  it('keeps many reads in flight at once (16 cat processes, each read delayed)', async () => {
    const files = Array.from({ length: 16 }, (_, i) => ({ name: `c${i}`, data: randomBytes(256 * 1024) }));
    for (const f of files) memfs.addFile(f.name, f.data);
    memfs.readDelayMs = 800;
    memfs.maxReadsInFlight = 0;
    try {
      const t0 = Date.now();
      const outs = await Promise.all(files.map((f) => sh(`cat ${mnt}/${f.name} | sha256sum`)));
      const elapsed = Date.now() - t0;
      outs.forEach((o, i) => expect(o.stdout.split(' ')[0]).toBe(sha256(files[i].data)));
      expect(memfs.maxReadsInFlight).toBeGreaterThanOrEqual(16);
      expect(elapsed).toBeLessThan((16 * 800) / 2); // served one at a time it would take 12.8 s or more
    } finally {
      memfs.readDelayMs = 0;
    }
  });

  it('drops the kernel caches it is told to (notifyInvalInode, notifyInvalEntry)', async () => {
    memfs.keepCache = true;
    memfs.entryTimeout = 60;
    try {
      const ino = memfs.addFile('kc', Buffer.from('AAAA'));
      expect((await sh(`cat ${mnt}/kc`)).stdout).toBe('AAAA');
      memfs.overwrite(ino, Buffer.from('BBBB'));
      expect((await sh(`cat ${mnt}/kc`)).stdout).toBe('AAAA'); // served from the page cache
      await mount.notifyInvalInode(ino);
      expect((await sh(`cat ${mnt}/kc`)).stdout).toBe('BBBB');

      memfs.removeName('kc');
      expect((await sh(`cat ${mnt}/kc`)).stdout).toBe('BBBB'); // the dentry is still cached
      await mount.notifyInvalEntry(1, 'kc');
      await expect(stat(`${mnt}/kc`)).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      memfs.keepCache = false;
      memfs.entryTimeout = 1;
    }
  });
});

describe('FUSE session lifecycle', () => {
  it('unmounts promptly while requests are still pending in JS', async () => {
    const dir = await freshDir('pending');
    const fs = new MemFs();
    for (let i = 0; i < 4; i++) fs.addFile(`slow${i}`, Buffer.alloc(4096, 7));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    fs.beforeRead = () => gate;
    const entry: { mount?: FuseMount; dir: string } = { dir };
    extraMounts.add(entry);
    const mount = (entry.mount = await FuseMount.mount(dir, fs, { onError: () => {} }));

    const cats = Array.from({ length: 4 }, (_, i) => sh(`cat ${dir}/slow${i}`, { timeoutMs: 30_000 }));
    await until(() => fs.readsInFlight >= 4);
    const t0 = Date.now();
    await mount.unmount();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await mountedAt(dir)).toBe(false);
    for (const r of await Promise.all(cats)) expect(r.code).not.toBe(0);
    expect(mount.mounted).toBe(false);
    open(); // the handlers answer now: too late, and harmlessly so
    await until(() => fs.readsInFlight === 0);
    await sleep(50);
    expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('notices an unmount from outside', async () => {
    const dir = await freshDir('outside');
    const entry: { mount?: FuseMount; dir: string } = { dir };
    extraMounts.add(entry);
    const mount = (entry.mount = await FuseMount.mount(dir, new MemFs()));
    expect((await sh(`umount ${dir}`)).code).toBe(0);
    await mount.closed;
    expect(mount.mounted).toBe(false);
    await mount.unmount(); // a no-op now
  });

  it('clears the stale mount a SIGKILLed process leaves, and mounts again', async () => {
    const dir = await freshDir('stale');
    const c = startChild([path.join(ROOT, 'test/helpers/mount-child.ts'), dir]);
    await c.ready;
    expect((await sh(`cat ${dir}/hello`)).stdout).toBe('hello from the child\n');
    c.child.kill('SIGKILL');
    await c.exited;
    await expect(stat(dir)).rejects.toMatchObject({ code: 'ENOTCONN' });

    const fs = new MemFs();
    fs.addFile('again', Buffer.from('mounted again\n'));
    const entry: { mount?: FuseMount; dir: string } = { dir };
    extraMounts.add(entry);
    const mount = (entry.mount = await FuseMount.mount(dir, fs));
    expect((await sh(`ls ${dir} && cat ${dir}/again`)).stdout).toBe('again\nmounted again\n');
    await mount.unmount();
    expect(await mountedAt(dir)).toBe(false);
  });

  it('unmounts on SIGTERM when asked to, then lets the signal end the process', async () => {
    const dir = await freshDir('sigterm');
    const c = startChild([path.join(ROOT, 'test/helpers/mount-child.ts'), dir]);
    await c.ready;
    expect(await mountedAt(dir)).toBe(true);
    c.child.kill('SIGTERM');
    const r = await c.exited;
    expect(r.signal).toBe('SIGTERM');
    expect(await mountedAt(dir)).toBe(false);
    expect((await stat(dir)).isDirectory()).toBe(true);
  });

  it('fails clearly when the mountpoint does not exist', async () => {
    await expect(FuseMount.mount(path.join(tmp, 'nope', 'nowhere'), new MemFs())).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

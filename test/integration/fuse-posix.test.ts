// POSIX behaviour of the stitchfs mount (Debian ships no pjdfstest): every operation the mount
// implements and the errno of each refusal, driven by real programs (coreutils, python) in child
// processes while this process serves the mount.
import { createHash } from 'node:crypto';
import { chmod, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInlineCid } from '../../src/core/cid.ts';
import type { Segment } from '../../src/segment/segment.ts';
import { errnoOf, mountSegment, PY, run, type MountedSegment } from '../helpers/fuse-mount.ts';
import { sh } from '../helpers/mount-tools.ts';
import { prngBytes } from '../helpers/segment-util.ts';

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

async function keys(seg: Segment, bucket: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  let after: string | undefined;
  for (;;) {
    const page = seg.list(bucket, { prefix, after });
    out.push(...page.items.map((i) => i.key));
    if (!page.truncated) return out;
    after = page.next;
  }
}

describe('stitchfs mount: one bucket', () => {
  let m: MountedSegment;
  let mnt: string;
  let seg: Segment;
  const py = (expr: string) => errnoOf(expr, mnt);

  beforeAll(async () => {
    m = await mountSegment({ bucket: 'bkt' });
    mnt = m.mnt;
    seg = m.seg;
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('shows objects written over the segment as files and key prefixes as directories', async () => {
    await seg.put('bkt', 'hello.txt', 'hello world\n');
    await seg.put('bkt', 'docs/a/b/deep.txt', 'deep\n');
    await seg.put('bkt', 'docs/readme', prngBytes(1, 300_000));
    expect(await run(`cd ${mnt} && cat hello.txt docs/a/b/deep.txt`)).toBe('hello world\ndeep\n');
    expect(await run(`cd ${mnt} && ls && ls docs && ls docs/a/b`)).toBe('docs\nhello.txt\na\nreadme\ndeep.txt\n');
    expect(await run(`cd ${mnt} && stat -c '%F %s %a' hello.txt docs docs/readme`))
      .toBe('regular file 12 644\ndirectory 4096 755\nregular file 300000 644\n');
    expect(await run(`md5sum < ${mnt}/docs/readme`)).toContain(md5(prngBytes(1, 300_000)));
    expect(await py("os.stat('nope')")).toBe('ENOENT');
    expect(await py("os.stat('docs/nope/deeper')")).toBe('ENOENT');
    expect(await py("open('hello.txt/x')")).toBe('ENOTDIR');
    expect(m.errors).toEqual([]);
  });

  it('lists a large directory page by page from the segment listing', async () => {
    const n = 2500;
    await Promise.all(Array.from({ length: n }, (_, i) => seg.put('bkt', `many/f${String(i).padStart(5, '0')}`, `${i}`)));
    const limits: number[] = [];
    const list = seg.list.bind(seg);
    seg.list = (b, o) => {
      if (o?.delimiter) limits.push(o.limit ?? 1000);
      return list(b, o);
    };
    try {
      const out = await run(`ls -f ${mnt}/many`);
      const names = out.split('\n').filter(Boolean);
      expect(names.length).toBe(n + 2);
      expect(new Set(names).size).toBe(n + 2);
      expect((await run(`ls ${mnt}/many | head -2; ls ${mnt}/many | tail -1`))).toBe('f00000\nf00001\nf02499\n');
      // Many small pages, none bigger than the segment's page limit.
      expect(limits.length).toBeGreaterThan(5);
      expect(Math.max(...limits)).toBeLessThanOrEqual(1000);
    } finally {
      seg.list = list;
    }
    expect(await run(`find ${mnt}/many -type f | wc -l`)).toBe(`${n}\n`);
  });

  it('creates, writes, reads and closes files; a file written front to back has a true MD5 ETag', async () => {
    await run(`cd ${mnt} && echo one > new.txt && cat new.txt && dd if=/dev/urandom of=seq.bin bs=64k count=40 status=none`);
    const local = await run(`md5sum < ${mnt}/seq.bin`);
    const v = await seg.head('bkt', 'seq.bin');
    expect(v.size).toBe(40 * 65536);
    expect(v.etag).toBe(local.split(' ')[0]);
    expect(v.posix?.mode).toBe(0o100644);
    expect((await seg.head('bkt', 'new.txt')).etag).toBe(md5('one\n'));
    expect(await py("os.open('new.txt', os.O_CREAT | os.O_EXCL | os.O_WRONLY)")).toBe('EEXIST');
    // An empty file, created and closed.
    await run(`cd ${mnt} && touch empty && test -f empty && test ! -s empty`);
    expect((await seg.head('bkt', 'empty')).size).toBe(0);
  });

  it('reads its own uncommitted writes, and commits on close (not before)', async () => {
    const out = await run(`cd ${mnt} && ${PY} -c "
import os
fd = os.open('rw.bin', os.O_CREAT | os.O_RDWR, 0o640)
os.write(fd, b'abcdef')
os.pwrite(fd, b'XY', 2)
os.pwrite(fd, b'Z', 10)
print(os.pread(fd, 100, 0))
print(os.fstat(fd).st_size)
print(os.path.exists('rw.bin'), sorted(os.listdir('.')).count('rw.bin'))
import subprocess
print(subprocess.run(['stat', '-c', '%s', 'rw.bin'], capture_output=True, text=True).stdout.strip())
os.close(fd)
"`);
    expect(out).toBe("b'abXYef\\x00\\x00\\x00\\x00Z'\n11\nTrue 1\n11\n");
    const v = await seg.head('bkt', 'rw.bin');
    expect(v.size).toBe(11);
    expect(v.posix?.mode).toBe(0o100640);
    // Out-of-order writes: the ETag is the chunk-list form, not an MD5.
    expect(v.etag).toMatch(/^[0-9a-f]{32}-1$/);
  });

  it('writes into the middle, appends and truncates copy-on-write, chunk by chunk', async () => {
    const data = prngBytes(2, 3 * 1024 * 1024);
    await seg.put('bkt', 'cow.bin', data);
    const before = await seg.head('bkt', 'cow.bin');
    const stats0 = seg.stats();
    await run(`cd ${mnt} && printf 'Q' | dd of=cow.bin bs=1 seek=1500000 conv=notrunc status=none`);
    const want = Buffer.from(data);
    want[1_500_000] = 'Q'.charCodeAt(0);
    expect(await run(`md5sum < ${mnt}/cow.bin`)).toContain(md5(want));
    const after = await seg.head('bkt', 'cow.bin');
    expect(after.versionId).not.toBe(before.versionId);
    const stats1 = seg.stats();
    expect(stats1.chunks - stats0.chunks).toBeLessThanOrEqual(2);
    expect(stats1.storedBytes - stats0.storedBytes).toBeLessThanOrEqual(2 * 1024 * 1024);
    // Most chunk references are shared with the old version.
    const old = new Set((before.content as { chunks: [unknown, number][] }).chunks.map(([c]) => String(c)));
    const now = (after.content as { chunks: [unknown, number][] }).chunks.map(([c]) => String(c));
    expect(now.filter((c) => !old.has(c)).length).toBeLessThanOrEqual(2);

    await run(`cd ${mnt} && printf 'tail' >> cow.bin`);
    expect(await run(`tail -c 4 ${mnt}/cow.bin`)).toBe('tail');
    await run(`cd ${mnt} && truncate -s 1000 cow.bin`);
    expect(await run(`md5sum < ${mnt}/cow.bin`)).toContain(md5(want.subarray(0, 1000)));
    await run(`cd ${mnt} && truncate -s 5000 cow.bin`);
    expect(await run(`md5sum < ${mnt}/cow.bin`)).toContain(md5(Buffer.concat([want.subarray(0, 1000), Buffer.alloc(4000)])));
    // ftruncate on an open descriptor, then writes past the end.
    await run(`cd ${mnt} && ${PY} -c "
import os
fd = os.open('cow.bin', os.O_RDWR)
os.ftruncate(fd, 10)
os.pwrite(fd, b'end', 20)
os.close(fd)"`);
    expect(await run(`od -An -c ${mnt}/cow.bin | tr -s ' '`)).toContain('\\0 \\0 e n d');
    expect((await seg.head('bkt', 'cow.bin')).size).toBe(23);
    // O_TRUNC, then a rewrite from the start: streamed again, true MD5 again.
    await run(`cd ${mnt} && printf 'fresh' > cow.bin`);
    expect((await seg.head('bkt', 'cow.bin')).etag).toBe(md5('fresh'));
  });

  it('is close-to-open consistent for a truncation alone, and appends with O_APPEND at the real end', async () => {
    await run(`cd ${mnt} && printf 'something' > trunc.txt`);
    // The O_TRUNC open's close commits nothing by itself; the last close (release) does, and an
    // open right behind it waits for that commit.
    expect(await run(`cd ${mnt} && : > trunc.txt && wc -c < trunc.txt`)).toBe('0\n');
    expect((await seg.head('bkt', 'trunc.txt')).size).toBe(0);
    const out = await run(`cd ${mnt} && ${PY} -c "
import os
a = os.open('app.log', os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o644)
b = os.open('app.log', os.O_WRONLY | os.O_APPEND)
for i in range(5):
    os.write(a, b'a%d;' % i)
    os.write(b, b'b%d;' % i)
os.close(a); os.close(b)
print(open('app.log').read())"`);
    expect(out).toBe('a0;b0;a1;b1;a2;b2;a3;b3;a4;b4;\n');
  });

  it('commits nothing for a file that is only read or opened for writing without writes', async () => {
    await seg.put('bkt', 'ro.txt', 'read me');
    const n = seg.stats().versions;
    await run(`cd ${mnt} && cat ro.txt > /dev/null && ${PY} -c "
import os
fd = os.open('ro.txt', os.O_RDWR); os.pread(fd, 3, 0); os.fsync(fd); os.close(fd)"`);
    expect(seg.stats().versions).toBe(n);
  });

  it('fsync commits a durable version before it returns', async () => {
    // Another process reading after the fsync sees it; the rest comes with close.
    const out = await run(`cd ${mnt} && ${PY} -c "
import os, subprocess
fd = os.open('synced.txt', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'first')
os.fsync(fd)
print(subprocess.run(['cat', 'synced.txt'], capture_output=True, text=True).stdout)
os.write(fd, b' second')
os.close(fd)"`);
    expect(out).toBe('first\n');
    expect(await run(`cat ${mnt}/synced.txt`)).toBe('first second');
  });

  it('makes and removes directories with the right errors', async () => {
    expect(await py("os.mkdir('d1', 0o750)")).toBe('OK');
    expect(await run(`stat -c '%F %a' ${mnt}/d1`)).toBe('directory 750\n');
    expect((await seg.head('bkt', 'd1/')).posix?.mode).toBe(0o40750);
    expect(await py("os.mkdir('d1')")).toBe('EEXIST');
    expect(await py("os.mkdir('hello.txt')")).toBe('EEXIST');
    await run(`cd ${mnt} && mkdir -p d1/sub && touch d1/f`);
    expect(await py("os.rmdir('d1')")).toBe('ENOTEMPTY');
    expect(await py("os.rmdir('d1/f')")).toBe('ENOTDIR');
    expect(await py("os.unlink('d1/sub')")).toBe('EISDIR');
    expect(await py("os.rmdir('d1/nope')")).toBe('ENOENT');
    expect(await py("os.unlink('d1/nope')")).toBe('ENOENT');
    expect(await py("open('d1', 'w')")).toBe('EISDIR');
    await run(`cd ${mnt} && rm d1/f && rmdir d1/sub && rmdir d1`);
    expect(await keys(seg, 'bkt', 'd1')).toEqual([]);
    // The last file of a directory that only existed through its keys: the directory stays.
    await seg.put('bkt', 'implicit/only', 'x');
    await run(`cd ${mnt} && rm implicit/only && test -d implicit && rmdir implicit && test ! -e implicit`);
  });

  it('renames files atomically over existing targets, and refuses what POSIX refuses', async () => {
    await run(`cd ${mnt} && printf one > r1 && printf two > r2 && mv r1 r2 && cat r2 && test ! -e r1`);
    expect(await run(`cat ${mnt}/r2`)).toBe('one');
    expect(await keys(seg, 'bkt', 'r')).toEqual(expect.arrayContaining(['r2']));
    expect((await keys(seg, 'bkt', 'r1'))).toEqual([]);
    await run(`cd ${mnt} && mkdir -p rd/full && touch rd/full/x && mkdir rd/empty && printf f > rd/file`);
    expect(await py("os.rename('rd/file', 'rd/empty')")).toBe('EISDIR');
    expect(await py("os.rename('rd/empty', 'rd/file')")).toBe('ENOTDIR');
    expect(await py("os.rename('rd/empty', 'rd/full')")).toBe('ENOTEMPTY');
    expect(await py("os.rename('rd/missing', 'rd/x')")).toBe('ENOENT');
    const renameat2 = (a: string, b: string, flags: number) => py(`
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.renameat2(-100, b'${a}', -100, b'${b}', ${flags}) != 0: raise OSError(ctypes.get_errno(), 'renameat2')`);
    expect(await renameat2('r2', 'hello.txt', 1)).toBe('EEXIST'); // RENAME_NOREPLACE
    expect(await renameat2('r2', 'hello.txt', 2)).toBe('EINVAL'); // RENAME_EXCHANGE
    expect(await renameat2('r2', 'r3', 1)).toBe('OK');
    // A directory over an empty one.
    await run(`cd ${mnt} && mv -T rd/full rd/empty && test -f rd/empty/x && test ! -e rd/full`);
    expect(await keys(seg, 'bkt', 'rd/')).toEqual(['rd/', 'rd/empty/', 'rd/empty/x', 'rd/file']);
  });

  it('renames a directory by moving every key under it, sharing chunks', async () => {
    const big = prngBytes(3, 2 * 1024 * 1024);
    await seg.put('bkt', 'tree/a/big.bin', big);
    for (let i = 0; i < 30; i++) await seg.put('bkt', `tree/b/${i}`, `${i}`);
    await run(`cd ${mnt} && ls -R tree > /dev/null`);
    const stored = seg.stats().storedBytes;
    await run(`cd ${mnt} && mv tree moved`);
    expect(await keys(seg, 'bkt', 'tree/')).toEqual([]);
    expect((await keys(seg, 'bkt', 'moved/')).length).toBe(31);
    expect(seg.stats().storedBytes).toBe(stored); // no data copied
    expect(await run(`md5sum < ${mnt}/moved/a/big.bin`)).toContain(md5(big));
    expect(await run(`ls ${mnt}/moved/b | wc -l`)).toBe('30\n');
    expect(await py("os.stat('tree')")).toBe('ENOENT');
  });

  it('keeps writing to a file renamed while open (the commit goes to the new name)', async () => {
    const out = await run(`cd ${mnt} && ${PY} -c "
import os
fd = os.open('moving', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'abc')
os.rename('moving', 'moved-file')
os.write(fd, b'def')
os.close(fd)
print(open('moved-file').read(), os.path.exists('moving'))"`);
    expect(out).toBe('abcdef False\n');
    expect((await seg.head('bkt', 'moved-file')).size).toBe(6);
  });

  it('unlinks a file that is still open: its writes go nowhere, reads still work', async () => {
    const out = await run(`cd ${mnt} && ${PY} -c "
import os
fd = os.open('scratch', os.O_CREAT | os.O_RDWR, 0o600)
os.write(fd, b'temporary')
os.unlink('scratch')
os.write(fd, b'!')
print(os.pread(fd, 100, 0), os.path.exists('scratch'))
os.close(fd)"`);
    expect(out).toBe("b'temporary!' False\n");
    expect(await keys(seg, 'bkt', 'scratch')).toEqual([]);
  });

  it('keeps symlinks (posix.target) and refuses hard links', async () => {
    await run(`cd ${mnt} && ln -s hello.txt lnk && ln -s /no/where dangling`);
    expect(await run(`cd ${mnt} && readlink lnk && cat lnk && stat -c '%F' lnk`)).toBe('hello.txt\nhello world\nsymbolic link\n');
    expect((await seg.head('bkt', 'lnk')).posix).toMatchObject({ mode: 0o120777, target: 'hello.txt' });
    expect(await py("os.stat('dangling')")).toBe('ENOENT');
    expect(await py("os.readlink('dangling')")).toBe('OK');
    expect(await py("os.symlink('x', 'lnk')")).toBe('EEXIST');
    expect(await py("os.readlink('hello.txt')")).toBe('EINVAL');
    expect(await py("os.link('hello.txt', 'hard')")).toBe('ENOTSUP'); // = EOPNOTSUPP on Linux
    await run(`cd ${mnt} && rm lnk dangling`);
  });

  it('keeps chmod, chown and utimens as metadata, without touching chunks', async () => {
    await run(`cd ${mnt} && printf meta > m.txt`);
    const v0 = await seg.head('bkt', 'm.txt');
    await run(`cd ${mnt} && chmod 600 m.txt && chown 1234:5678 m.txt && touch -m -d @1614834367.5 m.txt`);
    expect(await run(`stat -c '%a %u %g %s %Y' ${mnt}/m.txt`)).toBe('600 1234 5678 4 1614834367\n');
    const v1 = await seg.head('bkt', 'm.txt');
    expect(v1.posix).toMatchObject({ mode: 0o100600, uid: 1234, gid: 5678 });
    expect(v1.meta.mtime).toMatch(/^\d+\.5$/);
    expect(v1.etag).toBe(v0.etag);
    expect(v1.content).toEqual(v0.content);
    // Directories keep them on their marker.
    await run(`cd ${mnt} && mkdir pd && chmod 700 pd && touch -m -d @1577836800 pd`);
    expect(await run(`stat -c '%Y' ${mnt}/pd`)).toBe('1577836800\n');
    expect(await run(`stat -c '%a' ${mnt}/pd`)).toBe('700\n');
    // Survive a remount (nothing cached).
    await m.remount();
    expect(await run(`stat -c '%a %u %g' ${mnt}/m.txt ${mnt}/pd`)).toBe('600 1234 5678\n700 0 0\n');
  });

  it('answers statfs from the data directory disk', async () => {
    const out = await run(`stat -f -c '%l %S %b' ${mnt}`);
    const [namemax, bsize, blocks] = out.trim().split(' ').map(Number);
    expect(namemax).toBe(255);
    expect(bsize).toBeGreaterThan(0);
    expect(blocks).toBeGreaterThan(0);
  });

  it('refuses names longer than 255 bytes with ENAMETOOLONG, and hides such keys', async () => {
    const long = 'n'.repeat(256);
    expect(await py(`open('${long}', 'w')`)).toBe('ENAMETOOLONG');
    expect(await py(`os.mkdir('${long}')`)).toBe('ENAMETOOLONG');
    expect(await py(`os.stat('${long}')`)).toBe('ENAMETOOLONG');
    expect(await py(`open('${'n'.repeat(255)}', 'w').close()`)).toBe('OK');
    await seg.put('bkt', `longname/${long}`, 'hidden');
    await seg.put('bkt', 'longname/short', 'shown');
    expect(await run(`ls ${mnt}/longname`)).toBe('short\n');
  });

  it('applies the naming rules for keys that are no valid paths', async () => {
    // A file and a directory of the same name: the directory wins, the file is hidden.
    await seg.put('bkt', 'both', 'the file');
    await seg.put('bkt', 'both/inner', 'inside');
    // Empty path segments: not shown.
    await seg.put('bkt', 'odd//x', 'double slash');
    await seg.put('bkt', '/leading', 'leading slash');
    expect(await run(`cd ${mnt} && stat -c %F both && cat both/inner && echo && ls -a odd`)).toBe('directory\ninside\n.\n..\n');
    const top = (await run(`ls -a ${mnt}`)).split('\n').filter(Boolean);
    expect(top.filter((n) => n === 'both')).toEqual(['both']);
    expect(top).not.toContain('');
    // Removing the directory's last entry reveals the file again.
    await run(`cd ${mnt} && rm both/inner && rmdir both`);
    expect(await run(`cat ${mnt}/both`)).toBe('the file');
  });

  it('a failed write leaves the previous version intact', async () => {
    await run(`cd ${mnt} && printf 'precious' > keep.txt`);
    const v = await seg.head('bkt', 'keep.txt');
    const storeChunk = seg.storeChunk.bind(seg);
    seg.storeChunk = async () => {
      throw new Error('injected: disk full');
    };
    try {
      const r = await errnoOf(`
    f = open('keep.txt', 'wb')
    f.write(bytes(300000))
    f.close()`, mnt);
      expect(r).toBe('EIO');
    } finally {
      seg.storeChunk = storeChunk;
    }
    expect((await seg.head('bkt', 'keep.txt')).versionId).toBe(v.versionId);
    expect(await run(`cat ${mnt}/keep.txt`)).toBe('precious');
  });

  it('stores small files inline and serves sparse regions as zeros', async () => {
    await run(`cd ${mnt} && printf x | dd of=sparse bs=1 seek=100000 status=none`);
    expect(await run(`cd ${mnt} && stat -c %s sparse && od -An -tx1 -j 99998 sparse | tr -s ' '`)).toBe('100001\n 00 00 78\n');
    // 100 KB mostly zeros: one chunk, stored; a 3-byte file: inline in its manifest, no chunk file.
    await run(`cd ${mnt} && printf abc > tiny`);
    const tiny = await seg.head('bkt', 'tiny');
    expect((tiny.content as { chunks: [never, number][] }).chunks.every(([c]) => isInlineCid(c))).toBe(true);
  });
});

describe('stitchfs mount: every bucket', () => {
  let m: MountedSegment;
  beforeAll(async () => {
    m = await mountSegment({ buckets: ['alpha', 'beta'] });
    await m.seg.put('alpha', 'a.txt', 'in alpha');
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('shows buckets as top-level directories; mkdir and rmdir make and remove buckets', async () => {
    expect(await run(`ls ${m.mnt}`)).toBe('alpha\nbeta\n');
    expect(await run(`cat ${m.mnt}/alpha/a.txt`)).toBe('in alpha');
    await run(`mkdir ${m.mnt}/gamma && echo hi > ${m.mnt}/gamma/f`);
    expect((await m.seg.head('gamma', 'f')).size).toBe(3);
    expect(await errnoOf("open('toplevel', 'w')", m.mnt)).toBe('EACCES');
    expect(await errnoOf("os.mkdir('Not_A_Bucket')", m.mnt)).toBe('EINVAL');
    expect(await errnoOf("os.rename('alpha', 'delta')", m.mnt)).toBe('EXDEV');
    expect(await errnoOf("os.rmdir('beta')", m.mnt)).toBe('OK');
    expect(await run(`ls ${m.mnt}`)).toBe('alpha\ngamma\n');
    // Across buckets a file moves by copy (chunks shared) and delete.
    await run(`mv ${m.mnt}/alpha/a.txt ${m.mnt}/gamma/`);
    expect(await run(`cat ${m.mnt}/gamma/a.txt`)).toBe('in alpha');
  });
});

describe('stitchfs mount: permissions', () => {
  let m: MountedSegment;
  beforeAll(async () => {
    m = await mountSegment({ bucket: 'bkt', allowOther: true });
    // The temp dir is private by default; another user must be able to reach the mountpoint.
    await chmod(m.dir, 0o755);
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('answers EACCES by the permission bits to another user', async () => {
    await run(`cd ${m.mnt} && mkdir private open && chmod 700 private && chmod 777 open && echo s > secret && chmod 600 secret`);
    const as = (cmd: string) => sh(`setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '${cmd}'`);
    expect((await as(`cat ${m.mnt}/secret`)).stderr).toContain('Permission denied');
    expect((await as(`touch ${m.mnt}/x`)).stderr).toContain('Permission denied');
    expect((await as(`ls ${m.mnt}/private`)).stderr).toContain('Permission denied');
    const ok = await as(`echo mine > ${m.mnt}/open/f && cat ${m.mnt}/open/f && stat -c %u ${m.mnt}/open/f`);
    expect(ok.stdout).toBe('mine\n65534\n');
    expect((await m.seg.head('bkt', 'open/f')).posix).toMatchObject({ uid: 65534, gid: 65534 });
    expect((await stat(path.join(m.dir, 'data'))).isDirectory()).toBe(true);
  });
});

// Real programs on the stitchfs mount: tar, git, fio with verification, concurrent readers of a
// file being rewritten, and the copy-on-write cost of a 1-byte write into a large file.
import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountSegment, PY, run, type MountedSegment } from '../helpers/fuse-mount.ts';
import { ROOT, sh } from '../helpers/mount-tools.ts';
import { MiB, prngBytes, prngSlice, prngStream } from '../helpers/segment-util.ts';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let m: MountedSegment;
let mnt: string;
let scratch: string;

beforeAll(async () => {
  m = await mountSegment({ bucket: 'bkt' });
  mnt = m.mnt;
  scratch = await mkdtemp(path.join(os.tmpdir(), 'stitch-fusework-'));
});
afterAll(async () => {
  await m?.cleanup();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('stitchfs mount under real workloads', () => {
  it('extracts a source tarball that diff -r finds identical, and archives it back', async () => {
    const src = path.join(ROOT, 'node_modules/@aws-sdk/client-s3');
    await run(`tar czf ${scratch}/src.tgz -C ${path.dirname(src)} ${path.basename(src)}`);
    const t0 = performance.now();
    await run(`mkdir ${mnt}/tarx && tar xzf ${scratch}/src.tgz -C ${mnt}/tarx`, 170_000);
    const ms = performance.now() - t0;
    const files = Number((await run(`find ${mnt}/tarx -type f | wc -l`)).trim());
    console.log(`tar x: ${files} files in ${(ms / 1000).toFixed(1)} s (${(files / (ms / 1000)).toFixed(0)} files/s)`);
    expect(files).toBeGreaterThan(100);
    expect(await run(`diff -r ${src} ${mnt}/tarx/client-s3 && echo same`)).toBe('same\n');
    // Modes and mtimes came through too.
    expect(await run(`cd ${path.dirname(src)} && find client-s3 -type f | sort | head -50 | xargs stat -c '%a %Y %s %n' | sort`))
      .toBe(await run(`cd ${mnt}/tarx && find client-s3 -type f | sort | head -50 | xargs stat -c '%a %Y %s %n' | sort`));
    await run(`tar cf - -C ${mnt}/tarx client-s3 | tar tf - | wc -l`);
  });

  it('clones a git repository onto the mount; git fsck finds it whole', async () => {
    const repo = path.join(scratch, 'repo');
    // A repository with history: a few commits over a copy of this project's sources.
    await run(`mkdir ${repo} && cd ${repo} && git init -q -b main && cp -r ${ROOT}/src . && git add -A &&
      git -c user.name=t -c user.email=t@t commit -qm one && echo change >> src/cli/main.ts && git -c user.name=t -c user.email=t@t commit -qam two &&
      git mv src/core src/kernel && git -c user.name=t -c user.email=t@t commit -qm three && git gc -q`);
    await run(`cd ${mnt} && git clone -q ${repo} clone && cd clone && git fsck --full --strict && git status --porcelain && git log --oneline | wc -l`, 170_000)
      .then((out) => expect(out.trim()).toBe('3'));
    // And a loose-object clone (no pack), then a commit made on the mount.
    await run(`cd ${mnt} && git clone -q --no-local ${repo} clone2 && cd clone2 && echo more > new.txt && git add new.txt &&
      git -c user.name=t -c user.email=t@t commit -qm four && git fsck --full && git status --porcelain`, 170_000)
      .then((out) => expect(out).toBe(''));
    expect(await run(`cd ${mnt}/clone && git diff HEAD~2 --stat | tail -1`)).toContain('changed');
  });

  it('passes fio random read/write with crc32c verification (64 MiB, 4k..1M blocks, psync)', async () => {
    const job = `fio --name=stitchjob --directory=${mnt} --filename=fio.dat --size=64m --rw=randrw --bsrange=4k-1m ` +
      `--ioengine=psync --verify=crc32c --verify_fatal=1 --do_verify=1 --randseed=7 --verify_state_save=0 --minimal`;
    const r = await sh(`${job} 2>&1`, { timeoutMs: 170_000 });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).not.toMatch(/verify failed|bad (magic|header)|crc32c/i);
    // Cold after a remount (no cache anywhere): fio checks every block it wrote once more.
    await m.remount();
    const again = await sh(`${job} --verify_only 2>&1`, { timeoutMs: 120_000 });
    expect(again.code, again.stdout).toBe(0);
    expect(again.stdout).not.toMatch(/verify failed|bad (magic|header)|crc32c/i);
    expect((await m.seg.head('bkt', 'fio.dat')).size).toBe(64 * MiB);
  });

  it('gives concurrent readers the old or the new content of a file being rewritten, never a mix', async () => {
    const versions = [0, 1, 2, 3, 4].map((i) => prngBytes(500 + i, 6 * MiB + i * 1000));
    for (const [i, v] of versions.entries()) await writeFile(path.join(scratch, `v${i}`), v);
    const allowed = new Set(versions.map(sha256));
    await run(`cp ${scratch}/v0 ${mnt}/hot.bin`);
    // The writer rewrites the file in place (O_TRUNC, sequential) over and over; readers hash it.
    const writer = run(`for r in 1 2; do for i in 1 2 3 4 0; do dd if=${scratch}/v$i of=${mnt}/hot.bin bs=256k status=none; done; done`);
    const readers = [0, 1, 2].map(() => sh(`for i in $(seq 1 12); do sha256sum < ${mnt}/hot.bin; done`));
    await writer;
    const seen = (await Promise.all(readers)).flatMap((r) => r.stdout.split('\n').filter(Boolean).map((l) => l.split(' ')[0]));
    expect(seen.length).toBe(36);
    for (const h of seen) expect(allowed.has(h), `torn read: ${h}`).toBe(true);
    expect(new Set(seen).size).toBeGreaterThan(1);
    // And a reader holding one open file across many rewrites reads one version throughout.
    const held = await run(`${PY} -c "
import hashlib, subprocess
f = open('${mnt}/hot.bin', 'rb')
h = hashlib.sha256(f.read(1000000))
subprocess.run('for i in 1 2 3; do dd if=${scratch}/v\\$i of=${mnt}/hot.bin bs=1M status=none; done', shell=True, check=True)
h.update(f.read())
print(h.hexdigest())"`);
    expect(held.trim()).toBe(sha256(versions[0]));
  });

  it('stores a 1-byte write into a 256 MiB file as a few new chunks, not a rewrite', async () => {
    const size = 256 * MiB;
    await m.seg.put('bkt', 'large.bin', prngStream(77, size, 4 * MiB));
    const before = m.seg.stats();
    const v0 = await m.seg.head('bkt', 'large.bin');
    const t0 = performance.now();
    await run(`printf 'X' | dd of=${mnt}/large.bin bs=1 seek=${123_456_789} conv=notrunc status=none`);
    const ms = performance.now() - t0;
    const after = m.seg.stats();
    const v1 = await m.seg.head('bkt', 'large.bin');
    console.log(`1-byte write into 256 MiB: ${after.chunks - before.chunks} new chunks, ${after.storedBytes - before.storedBytes} new bytes, ${ms.toFixed(0)} ms`);
    expect(v1.versionId).not.toBe(v0.versionId);
    expect(v1.size).toBe(size);
    // One or two re-cut chunks plus the manifest tree's blocks (256 MiB is ~1000 chunks).
    expect(after.chunks - before.chunks).toBeLessThanOrEqual(4);
    expect(after.storedBytes - before.storedBytes).toBeLessThanOrEqual(4 * MiB);
    // The byte is there and its neighbours are not disturbed.
    const around = await run(`dd if=${mnt}/large.bin bs=1 skip=${123_456_789 - 2} count=5 status=none | od -An -tx1`);
    const want = prngSlice(77, 123_456_787, 123_456_792);
    want[2] = 'X'.charCodeAt(0);
    expect(around.trim().split(/\s+/).join('')).toBe(want.toString('hex'));
  });
});

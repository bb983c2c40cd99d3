// The mount and the S3 gateway over one segment in one process: what one writes the other reads,
// and changes made underneath the mount (S3 puts and deletes, versions arriving from another
// segment) reach the kernel's caches at once, long before their timeouts.
import { createHash } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Server } from '../../src/s3/server.ts';
import { Segment } from '../../src/segment/segment.ts';
import { errnoOf, mountSegment, PY, run, type MountedSegment } from '../helpers/fuse-mount.ts';
import { sh } from '../helpers/mount-tools.ts';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY, s3client } from '../helpers/s3-server.ts';
import { prngBytes, tempDir, removeDir } from '../helpers/segment-util.ts';

const md5 = (b: Buffer | string) => createHash('md5').update(b).digest('hex');

describe('stitchfs mount beside the S3 gateway', () => {
  let m: MountedSegment;
  let server: S3Server;
  let s3: S3Client;
  let mnt: string;

  beforeAll(async () => {
    // Long kernel cache timeouts: only invalidation can make these tests pass.
    // Page cache on (keep_cache): nothing here writes through the mount while reading.
    m = await mountSegment({ bucket: 'bkt', entryTimeout: 600, attrTimeout: 600, negativeTimeout: 600, pageCache: true });
    mnt = m.mnt;
    server = await S3Server.start({
      segment: m.seg, port: 0,
      credentials: { secretFor: (id: string) => (id === ACCESS_KEY_ID ? SECRET_ACCESS_KEY : undefined) },
    });
    s3 = s3client(server.url);
  });
  afterAll(async () => {
    s3?.destroy();
    await server?.close();
    await m?.cleanup();
  });

  const get = async (key: string) => {
    const r = await s3.send(new GetObjectCommand({ Bucket: 'bkt', Key: key }));
    return { r, body: Buffer.from(await r.Body!.transformToByteArray()) };
  };

  it('serves over S3 what was written through the mount, with its ETag and mtime', async () => {
    const data = prngBytes(11, 1_500_000);
    await m.seg.put('bkt', 'tmp-src', data); // a source file for dd, outside the mount's namespace use
    await run(`mkdir -p ${mnt}/dir && cat ${mnt}/tmp-src > ${mnt}/dir/written.bin && touch -m -d @1700000000 ${mnt}/dir/written.bin`);
    const { r, body } = await get('dir/written.bin');
    expect(body.equals(data)).toBe(true);
    expect(r.ETag).toBe(`"${md5(data)}"`);
    expect(r.Metadata?.mtime).toBe('1700000000');
    // Patched in place: the chunk-list ETag (dashed, like a multipart upload's).
    await run(`printf 'P' | dd of=${mnt}/dir/written.bin bs=1 seek=700000 conv=notrunc status=none`);
    const after = await get('dir/written.bin');
    const want = Buffer.from(data);
    want[700_000] = 'P'.charCodeAt(0);
    expect(after.body.equals(want)).toBe(true);
    expect(after.r.ETag).toMatch(/^"[0-9a-f]{32}-\d+"$/);
    // Directories made on the mount are markers over S3.
    await run(`mkdir ${mnt}/emptydir`);
    const marker = await s3.send(new HeadObjectCommand({ Bucket: 'bkt', Key: 'emptydir/' }));
    expect(marker.ContentLength).toBe(0);
  });

  it('shows at once an object put over S3, even where the kernel cached "no such file"', async () => {
    expect(await errnoOf("os.stat('fresh.txt')", mnt)).toBe('ENOENT'); // now cached as missing for 600 s
    expect(await errnoOf("os.stat('newdir/sub/f')", mnt)).toBe('ENOENT');
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'fresh.txt', Body: 'from s3\n' }));
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'newdir/sub/f', Body: 'nested\n' }));
    await expectSoon(() => run(`cat ${mnt}/fresh.txt ${mnt}/newdir/sub/f`), 'from s3\nnested\n');
    expect(await run(`ls ${mnt}/newdir/sub`)).toBe('f\n');
  });

  it('drops the cached data and attributes of a file changed over S3, and the name of one deleted', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'changing.txt', Body: 'version one' }));
    expect(await run(`cat ${mnt}/changing.txt && stat -c %s ${mnt}/changing.txt`)).toBe('version one11\n');
    // Twice: the second read comes from the page cache (keep_cache: the version did not change).
    const fs = m.mount.fs;
    const read = fs.read.bind(fs);
    let reads = 0;
    fs.read = (...a: Parameters<typeof read>) => {
      reads++;
      return read(...a);
    };
    try {
      expect(await run(`cat ${mnt}/changing.txt`)).toBe('version one');
      expect(reads).toBe(0);
    } finally {
      fs.read = read;
    }
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'changing.txt', Body: 'VERSION TWO' }));
    await expectSoon(() => run(`cat ${mnt}/changing.txt`), 'VERSION TWO');
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'changing.txt', Body: 'v3, longer than before' }));
    await expectSoon(() => run(`stat -c %s ${mnt}/changing.txt && cat ${mnt}/changing.txt`), '22\nv3, longer than before');
    await s3.send(new DeleteObjectCommand({ Bucket: 'bkt', Key: 'changing.txt' }));
    await expectSoon(() => errnoOf("os.stat('changing.txt')", mnt), 'ENOENT');
  });

  it('keeps a reader that opened the old version reading the old version', async () => {
    const v1 = prngBytes(21, 2_000_000);
    const v2 = prngBytes(22, 2_000_000);
    await m.seg.put('bkt', 'pinned.bin', v1);
    // The reader reads half, the object changes over S3, the reader reads the rest.
    const reader = sh(`${PY} -c "
import sys, time, hashlib
f = open('${mnt}/pinned.bin', 'rb')
h = hashlib.md5(f.read(1000000))
print('half', flush=True)
time.sleep(1.5)
h.update(f.read())
print(h.hexdigest())"`);
    await new Promise((r) => setTimeout(r, 700));
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'pinned.bin', Body: v2 }));
    const out = (await reader).stdout.split('\n');
    expect(out[0]).toBe('half');
    expect(out[1]).toBe(md5(v1));
    expect(await run(`md5sum < ${mnt}/pinned.bin`)).toContain(md5(v2));
  });

  it('picks up versions arriving from another segment', async () => {
    const dir = tempDir('fuse-remote');
    const other = await Segment.open({ dataDir: dir, name: 'other-site' });
    try {
      other.createBucket('bkt');
      // Chunks of remote versions are fetched from their origin on first read.
      m.seg.chunkSource = { fetch: async (cid) => other.store.get(cid) };
      expect(await errnoOf("os.stat('remote.bin')", mnt)).toBe('ENOENT');
      const data = prngBytes(31, 700_000);
      const v = await other.put('bkt', 'remote.bin', data);
      const rec = other.meta.getVersion(v.versionId)!;
      const seq = other.sequenceVector()['other-site'];
      expect(await m.seg.applyRemote(rec.manifest, seq, other.identity.publicKey)).toBe('applied');
      await expectSoon(() => run(`md5sum < ${mnt}/remote.bin`), `${md5(data)}  -\n`);
      const v2 = await other.put('bkt', 'remote.bin', 'replaced remotely');
      await m.seg.applyRemote(other.meta.getVersion(v2.versionId)!.manifest, seq + 1, other.identity.publicKey);
      await expectSoon(() => run(`cat ${mnt}/remote.bin`), 'replaced remotely');
    } finally {
      m.seg.chunkSource = undefined;
      await other.close();
      removeDir(dir);
    }
  });

  it('hides, over the mount, keys that are no valid paths, and keeps them over S3', async () => {
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'clash', Body: 'file' }));
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'clash/child', Body: 'child' }));
    await s3.send(new PutObjectCommand({ Bucket: 'bkt', Key: 'a//b', Body: 'double' }));
    await expectSoon(() => run(`stat -c %F ${mnt}/clash && cat ${mnt}/clash/child && ls -A ${mnt}/a | wc -l`), 'directory\nchild0\n');
    expect((await get('clash')).body.toString()).toBe('file');
    expect((await get('a//b')).body.toString()).toBe('double');
  });
});

// The kernel is told asynchronously (a queue of notifications): allow it a moment.
async function expectSoon(fn: () => Promise<string>, want: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  let got = '';
  for (;;) {
    try {
      got = await fn();
    } catch (err) {
      got = String(err);
    }
    if (got === want || Date.now() > end) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(got).toBe(want);
}

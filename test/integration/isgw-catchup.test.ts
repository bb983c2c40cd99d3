// Catch-up and convergence with real processes on a line A - B - C: C is killed (SIGKILL, its lock
// left behind), A and B keep writing, and C, restarted, converges to the same listing, ETags and
// version history as the others within seconds, having moved metadata only. Then two segments
// write the same key at the same moment: every segment ends with the same current version and
// keeps the loser as an older version.
import {
  CreateBucketCommand, DeleteObjectCommand, HeadObjectCommand, ListObjectsV2Command, ListObjectVersionsCommand,
  PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, line, md5hex, randomData, waitFor, World } from '../helpers/world-cluster.ts';

const BUCKET = 'catchup';
const NAMES = ['a', 'b', 'c'];

// Key -> ETag of the current versions; version id -> (key, etag or marker) of every version.
async function listing(s3: S3Client, bucket: string): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  let token: string | undefined;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.push([o.Key!, o.ETag!]);
    token = r.NextContinuationToken;
  } while (token);
  return out;
}

async function versions(s3: S3Client, bucket: string): Promise<string[]> {
  const out: string[] = [];
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  for (;;) {
    const r = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of r.Versions ?? []) out.push(`${v.Key} ${v.VersionId} ${v.ETag} ${v.IsLatest}`);
    for (const m of r.DeleteMarkers ?? []) out.push(`${m.Key} ${m.VersionId} marker ${m.IsLatest}`);
    if (!r.IsTruncated) break;
    keyMarker = r.NextKeyMarker;
    versionMarker = r.NextVersionIdMarker;
  }
  return out.sort();
}

// Runs `fn` over `items` with at most `n` in flight.
async function pool<T>(items: T[], n: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

describe('isgw: catch-up and concurrent writes on a line A - B - C', () => {
  let w: World;

  beforeAll(async () => {
    w = await World.create({ names: NAMES, links: line(NAMES) });
    await waitFor(async () => (await w.status('b')).peers.every((p) => p.connected), 20_000, 'b connected to a and c');
    await w.s3('a').send(new CreateBucketCommand({ Bucket: BUCKET }));
    await waitFor(async () => (await w.status('c')).stats.buckets === 1, 5_000, 'bucket on c');
  });

  afterAll(async () => {
    await w?.stop();
  });

  it('a segment killed while others write converges after restart', async () => {
    const killed = await w.kill('c', 'SIGKILL');
    expect(killed.signal).toBe('SIGKILL');

    // 100 objects on A (small ones inline, every tenth above the 4 KiB inline limit), 10 on B,
    // then delete markers and overwrites on A, all while C is down.
    const keys = Array.from({ length: 100 }, (_, i) => `obj/${String(i).padStart(3, '0')}`);
    const etags = new Map<string, string>();
    await pool(keys, 8, async (key) => {
      const i = Number(key.slice(4));
      const body = randomData(i % 10 === 0 ? 20 * KiB + i : 100 + i * 7);
      const r = await w.s3('a').send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
      expect(r.ETag).toBe(`"${md5hex(body)}"`);
      etags.set(key, r.ETag!);
    });
    for (let i = 0; i < 10; i++) {
      await w.s3('b').send(new PutObjectCommand({ Bucket: BUCKET, Key: `from-b/${i}`, Body: randomData(300 + i) }));
    }
    for (const key of keys.slice(0, 5)) await w.s3('a').send(new DeleteObjectCommand({ Bucket: BUCKET, Key: key }));
    for (const key of keys.slice(5, 8)) await w.s3('a').send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomData(64) }));

    const want = await listing(w.s3('a'), BUCKET);
    const wantVersions = await versions(w.s3('a'), BUCKET);
    expect(want.length).toBe(100 - 5 + 10);
    expect(wantVersions.length).toBe(100 + 10 + 5 + 3);
    // B (up all along) already agrees.
    await waitFor(async () => JSON.stringify(await listing(w.s3('b'), BUCKET)) === JSON.stringify(want), 10_000, 'b converged');

    const restarted = Date.now();
    await w.start('c');
    const ready = Date.now();
    await waitFor(async () => JSON.stringify(await listing(w.s3('c'), BUCKET)) === JSON.stringify(want), 10_000, 'c converged', 100);
    const took = Date.now() - ready;
    console.log(`isgw-catchup: c converged ${took} ms after it was ready (${Date.now() - restarted} ms after the restart began)`);
    expect(took).toBeLessThan(10_000);
    expect(await versions(w.s3('c'), BUCKET)).toEqual(wantVersions);
    for (const key of ['obj/006', 'obj/050', 'from-b/3']) {
      const [onA, onC] = await Promise.all(['a', 'c'].map((n) => w.s3(n).send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))));
      expect([onC.ETag, onC.VersionId, onC.ContentLength]).toEqual([onA.ETag, onA.VersionId, onA.ContentLength]);
    }

    const st = await w.status('c');
    // Catch-up (not gossip: C was down) brought the versions, and only metadata moved.
    expect(st.counters.catchUpEntries).toBeGreaterThanOrEqual(wantVersions.length);
    expect(st.counters.versionsRejected).toBe(0);
    expect(st.counters.chunkBytesFetched).toBe(0);
    expect(st.stats.chunks).toBe(0);
    expect(st.stats.objects).toBe(want.length);
  });

  it('concurrent writes of one key on A and C converge to one winner, the loser kept', async () => {
    await waitFor(async () => (await w.status('b')).peers.every((p) => p.connected), 20_000, 'b connected to a and c');
    const key = 'contended';
    const [ra, rc] = await Promise.all(['a', 'c'].map((n) =>
      w.s3(n).send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: randomData(5 * KiB) }))));
    expect(ra.VersionId).not.toBe(rc.VersionId);
    const both = [ra.VersionId, rc.VersionId].sort();

    const heads = await waitFor(async () => {
      const hs = await Promise.all(NAMES.map((n) => w.s3(n).send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))));
      const vs = await Promise.all(NAMES.map((n) => w.s3(n).send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: key }))));
      const allHaveBoth = vs.every((v) => JSON.stringify(v.Versions?.map((x) => x.VersionId).sort()) === JSON.stringify(both));
      return allHaveBoth && new Set(hs.map((h) => h.VersionId)).size === 1 ? hs : undefined;
    }, 10_000, 'one winner everywhere');
    const winner = heads[0].VersionId!;
    expect(both).toContain(winner);
    expect(heads[0].ETag).toBe(winner === ra.VersionId ? ra.ETag : rc.ETag);
    for (const [i, n] of NAMES.entries()) {
      expect(heads[i].ETag, n).toBe(heads[0].ETag);
      const v = await w.s3(n).send(new ListObjectVersionsCommand({ Bucket: BUCKET, Prefix: key }));
      expect(v.Versions?.map((x) => [x.VersionId, x.IsLatest]), n).toEqual(
        [[winner, true], [both.find((x) => x !== winner), false]],
      );
    }
  });
});

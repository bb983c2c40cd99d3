import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep, setImmediate as yieldTurn } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCids } from '../../src/core/chunk-manifest.ts';
import { cutPoints } from '../../src/core/chunker.ts';
import { cidForChunk, isInlineCid } from '../../src/core/cid.ts';
import type { GcReport } from '../../src/segment/gc.ts';
import type { Segment } from '../../src/segment/segment.ts';
import { MIN_PART_SIZE } from '../../src/segment/uploads.ts';
import {
  KiB, MID_CHUNKER, MiB, expectCode, getBytes, openTempSegment, prngBytes, sha256, streamDigest,
  type TempSegment,
} from '../helpers/segment-util.ts';

// GC removes exactly the chunks no version, copy or upload part references, and never one a
// concurrent put is about to reuse.

function chunkFiles(dir: string): Set<string> {
  const root = join(dir, 'chunks');
  return new Set(readdirSync(root).filter((d) => d !== 'tmp').flatMap((d) => readdirSync(join(root, d))));
}

// Stored (non-inline) chunk CIDs and sizes of `data` as this segment cuts it.
function storedChunksOf(seg: Segment, data: Buffer): Map<string, number> {
  const out = new Map<string, number>();
  let start = 0;
  for (const end of cutPoints(data, seg.scanner)) {
    const cid = cidForChunk(data.subarray(start, end));
    if (!isInlineCid(cid)) out.set(cid.toString(), end - start);
    start = end;
  }
  return out;
}

async function contentCids(seg: Segment, bucket: string, key: string, versionId?: string): Promise<Set<string>> {
  const v = await seg.head(bucket, key, { versionId });
  const { chunks, blocks } = await allCids(v.content, (cid) => seg.readBlock(cid, { bucket, key, vid: v.versionId }));
  return new Set([...chunks.filter(([c]) => !isInlineCid(c)).map(([c]) => c.toString()), ...blocks.map(String)]);
}

describe('segment gc', () => {
  let t: TempSegment;
  let seg: Segment;
  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('gcb');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('removes chunks only the deleted version used; keeps shared, copied and in-upload ones', async () => {
    const x = prngBytes(81, 3 * MiB);
    const y = Buffer.concat([x.subarray(0, 1536 * KiB), Buffer.from('an edit in the middle'), x.subarray(1536 * KiB)]);
    const z = prngBytes(82, 2 * MiB + 5);
    const w = prngBytes(83, MIN_PART_SIZE);

    const va1 = await seg.put('gcb', 'a', x);
    await seg.put('gcb', 'a', y);
    const vc = await seg.put('gcb', 'c', z);
    await seg.copy({ bucket: 'gcb', key: 'c' }, { bucket: 'gcb', key: 'c2' });
    seg.deleteVersion('gcb', 'c', vc.versionId); // z lives on through the copy
    const up = seg.uploads.create('gcb', 'w');
    const part = await seg.uploads.putPart('gcb', 'w', up.uploadId, 1, w);

    const cx = await contentCids(seg, 'gcb', 'a', va1.versionId);
    const cy = await contentCids(seg, 'gcb', 'a');
    const cz = await contentCids(seg, 'gcb', 'c2');
    const cw = storedChunksOf(seg, w);
    const onlyX = [...cx].filter((c) => !cy.has(c));
    expect(onlyX.length).toBeGreaterThanOrEqual(1);
    expect(onlyX.length).toBeLessThanOrEqual(3);
    expect(cx.size - onlyX.length).toBeGreaterThan(5); // most of x is shared with y

    // Everything is referenced: nothing to collect.
    const none = await seg.gc(0);
    expect(none.deleted).toBe(0);
    expect(none.scanned).toBe(chunkFiles(t.dir).size);

    const storedBefore = seg.stats().storedBytes;
    seg.deleteVersion('gcb', 'a', va1.versionId);
    const report = await seg.gc(0);
    expect(report.deleted).toBe(onlyX.length);
    const files = chunkFiles(t.dir);
    for (const c of onlyX) expect(files.has(c)).toBe(false);
    for (const c of [...cy, ...cz, ...cw.keys()]) expect(files.has(c), c).toBe(true);
    expect(seg.stats().storedBytes).toBe(storedBefore - report.freedBytes);
    expect(report.freedBytes).toBeGreaterThan(0);

    // Everything still reads back.
    expect(sha256(await getBytes(seg, 'gcb', 'a'))).toBe(sha256(y));
    expect(sha256(await getBytes(seg, 'gcb', 'c2'))).toBe(sha256(z));
    const done = await seg.uploads.complete('gcb', 'w', up.uploadId, [{ part: 1, etag: part.etag }]);
    expect(done.size).toBe(w.length);
    expect(sha256(await getBytes(seg, 'gcb', 'w'))).toBe(sha256(w));
    const scrub = await seg.scrub();
    expect(scrub.missing.length + scrub.corrupt.length).toBe(0);
    expect((await seg.gc(0)).deleted).toBe(0);
  });

  it('respects the grace period', async () => {
    const orphan = prngBytes(84, 300 * KiB);
    await expectCode(() => seg.put('gcb', 'orphan', orphan, { size: 1 }), 'BadDigest');
    const orphans = [...storedChunksOf(seg, orphan).keys()];
    expect(orphans.every((c) => chunkFiles(t.dir).has(c))).toBe(true);
    const kept = await seg.gc(); // default grace: an hour
    expect(kept.deleted).toBe(0);
    expect(orphans.every((c) => chunkFiles(t.dir).has(c))).toBe(true);
    const gone = await seg.gc(0);
    expect(gone.deleted).toBe(orphans.length);
    expect(orphans.some((c) => chunkFiles(t.dir).has(c))).toBe(false);
  });

  it('a crash right after a chunk file is removed leaves no listed-but-missing chunk', async () => {
    const data = prngBytes(86, 600 * KiB);
    const v = await seg.put('gcb', 'crashy', data);
    seg.deleteVersion('gcb', 'crashy', v.versionId);
    // The process "dies" just after GC's first unlink: whatever GC had recorded by then stays.
    const store = seg.store as { deleteSync(cid: string): void };
    const unlink = store.deleteSync.bind(store);
    store.deleteSync = (cid: string) => {
      unlink(cid);
      throw new Error('crash after unlink');
    };
    try {
      await expect(seg.gc(0)).rejects.toThrow('crash after unlink');
    } finally {
      store.deleteSync = unlink;
    }
    // The same content again: every chunk it dedups against must really be there.
    await seg.put('gcb', 'crashy', data);
    expect(sha256(await getBytes(seg, 'gcb', 'crashy'))).toBe(sha256(data));
    const scrub = await seg.scrub();
    expect(scrub.missing).toEqual([]);
  });

  it('collects everything once every version and upload is gone', async () => {
    const pending = prngBytes(85, 100 * KiB);
    const up = seg.uploads.create('gcb', 'pending');
    await seg.uploads.putPart('gcb', 'pending', up.uploadId, 1, pending);
    for (;;) {
      const page = seg.versions('gcb', { limit: 1000 });
      for (const v of page.items) seg.deleteVersion('gcb', v.key, v.versionId);
      if (!page.truncated) break;
    }
    const first = await seg.gc(0);
    expect(first.deleted).toBeGreaterThan(5);
    // Only the pending part's chunks are left, and a second pass finds nothing more.
    expect(chunkFiles(t.dir)).toEqual(new Set(storedChunksOf(seg, pending).keys()));
    expect((await seg.gc(0)).deleted).toBe(0);
    seg.uploads.abort('gcb', 'pending', up.uploadId);
    await seg.gc(0);
    expect(chunkFiles(t.dir).size).toBe(0);
    expect(seg.stats().storedBytes).toBe(0);
    expect(seg.stats().chunks).toBe(0);
  });
});

describe('segment gc against concurrent writes', () => {
  it('a gc running through many puts that reuse garbage chunks never breaks them', { timeout: 120_000 }, async () => {
    const t = await openTempSegment({ chunker: MID_CHUNKER, memory: true });
    try {
      const seg = t.seg;
      seg.createBucket('race');
      // A pool of contents; every round first turns some of them into garbage, then puts them again
      // (dedup finds the chunks still listed) while gc(0) sweeps in a loop.
      const pool = Array.from({ length: 10 }, (_, i) => prngBytes(900 + i, 200 * KiB + i * 37 * KiB));
      const live = new Map<string, { sha: string; versionId: string }>();
      let next = 1;
      const rnd = () => {
        next = (next * 48271) % 0x7fffffff;
        return next;
      };
      const gcReports: GcReport[] = [];
      for (let round = 0; round < 4; round++) {
        for (const [i, data] of pool.entries()) {
          const v = await seg.put('race', `base/${round}/${i}`, data);
          live.set(`base/${round}/${i}`, { sha: sha256(data), versionId: v.versionId });
        }
        // Delete this round's base versions: their chunks are garbage unless an earlier put shares them.
        for (const [i] of pool.entries()) {
          const key = `base/${round}/${i}`;
          seg.deleteVersion('race', key, live.get(key)!.versionId);
          live.delete(key);
        }
        let writing = true;
        const sweeper = (async () => {
          while (writing) {
            gcReports.push(await seg.gc(0));
            await yieldTurn();
          }
        })();
        const puts = Array.from({ length: 16 }, async (_, j) => {
          const data = pool[rnd() % pool.length];
          async function* slowly() {
            for (let o = 0; o < data.length; o += 16 * KiB) {
              // Slow enough that several sweeps run while the puts stream in.
              await (j % 2 === 0 ? sleep(10) : yieldTurn());
              yield data.subarray(o, o + 16 * KiB);
            }
          }
          const key = `round/${round}/${j}`;
          const v = await seg.put('race', key, slowly());
          live.set(key, { sha: sha256(data), versionId: v.versionId });
        });
        await Promise.all(puts);
        writing = false;
        await sweeper;
        // Also deleteVersion of some committed puts while nothing else runs, for the next round.
        for (const j of [0, 5, 10]) {
          const key = `round/${round}/${j}`;
          seg.deleteVersion('race', key, live.get(key)!.versionId);
          live.delete(key);
        }
      }
      // The sweeps really collected something while the puts ran.
      expect(gcReports.length).toBeGreaterThan(8);
      expect(gcReports.reduce((n, r) => n + r.deleted, 0)).toBeGreaterThan(0);

      const final = await seg.gc(0);
      expect(final.scanned).toBe(chunkFiles(t.dir).size + final.deleted);
      for (const [key, { sha, versionId }] of live) {
        const r = await seg.get('race', key);
        expect(r.version.versionId).toBe(versionId);
        expect((await streamDigest(r.body)).sha256, key).toBe(sha);
      }
      const scrub = await seg.scrub();
      expect(scrub.missing).toEqual([]);
      expect(scrub.corrupt).toEqual([]);
      // Every stored chunk is referenced by a live version: nothing leaked either.
      const referenced = new Set<string>();
      for (const key of live.keys()) for (const c of await contentCids(seg, 'race', key)) referenced.add(c);
      expect(chunkFiles(t.dir)).toEqual(referenced);
      expect(existsSync(join(t.dir, 'chunks', 'tmp'))).toBe(true);
    } finally {
      await t.cleanup();
    }
  });
});

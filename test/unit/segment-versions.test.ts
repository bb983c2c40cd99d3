import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeVersion, verifyVersion } from '../../src/core/version-manifest.ts';
import type { ObjectSummary, Segment } from '../../src/segment/segment.ts';
import { expectCode, getBytes, openTempSegment, type TempSegment } from '../helpers/segment-util.ts';

// Versions, delete markers, deleteVersion, time travel, concurrent writers and version listings.

const utf8Compare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

describe('segment versions', () => {
  let t: TempSegment;
  let seg: Segment;
  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('ver');
  });
  afterAll(async () => {
    await t.cleanup();
  });

  const text = async (key: string, opts = {}) => (await getBytes(seg, 'ver', key, opts)).toString();

  it('keeps every version, newest first, with isLatest and parent links', async () => {
    const v1 = await seg.put('ver', 'doc', 'one');
    const v2 = await seg.put('ver', 'doc', 'two');
    const v3 = await seg.put('ver', 'doc', 'three');
    expect(new Set([v1.versionId, v2.versionId, v3.versionId]).size).toBe(3);
    expect(v1.hlc).toBeLessThan(v2.hlc);
    expect(v2.hlc).toBeLessThan(v3.hlc);
    expect(await text('doc')).toBe('three');
    for (const [v, body] of [[v1, 'one'], [v2, 'two'], [v3, 'three']] as const) {
      expect(await text('doc', { versionId: v.versionId })).toBe(body);
      const h = await seg.head('ver', 'doc', { versionId: v.versionId });
      expect(h.isLatest).toBe(v === v3);
    }
    const listed = seg.versions('ver', { prefix: 'doc' }).items;
    expect(listed.map((i) => i.versionId)).toEqual([v3.versionId, v2.versionId, v1.versionId]);
    expect(listed.map((i) => i.isLatest)).toEqual([true, false, false]);

    // Each version manifest is signed by this segment and links to the version it replaced.
    const m3 = decodeVersion(seg.meta.getVersion(v3.versionId)!.manifest);
    expect(verifyVersion(m3, seg.identity.publicKey)).toBe(true);
    expect(m3.vid.toString()).toBe(v3.versionId);
    expect(m3.manifest.parent?.toString()).toBe(v2.versionId);
    expect(decodeVersion(seg.meta.getVersion(v1.versionId)!.manifest).manifest.parent).toBeNull();
  });

  it('delete writes a marker: head is NoSuchKey, old versions stay readable by id', async () => {
    const a = await seg.put('ver', 'del/a', 'alpha');
    const b = await seg.put('ver', 'del/a', 'beta');
    const marker = await seg.delete('ver', 'del/a');
    expect(marker.deleted).toBe(true);
    expect(marker.size).toBe(0);

    const err = await expectCode(() => seg.head('ver', 'del/a'), 'NoSuchKey');
    expect((err as Error & { deleteMarker?: string }).deleteMarker).toBe(marker.versionId);
    await expectCode(() => seg.get('ver', 'del/a'), 'NoSuchKey');
    expect(seg.list('ver', { prefix: 'del/' }).items).toEqual([]);

    expect(await text('del/a', { versionId: a.versionId })).toBe('alpha');
    expect(await text('del/a', { versionId: b.versionId })).toBe('beta');
    // The marker itself: visible by id to head, not readable.
    const hm = await seg.head('ver', 'del/a', { versionId: marker.versionId });
    expect(hm.deleted).toBe(true);
    expect(hm.isLatest).toBe(true);
    await expectCode(() => seg.get('ver', 'del/a', { versionId: marker.versionId }), 'NoSuchKey');

    const vs = seg.versions('ver', { prefix: 'del/' }).items;
    expect(vs.map((v) => [v.versionId, v.deleted, v.isLatest])).toEqual([
      [marker.versionId, true, true],
      [b.versionId, false, false],
      [a.versionId, false, false],
    ]);

    // Deleting again stacks another marker; putting again brings the key back.
    const marker2 = await seg.delete('ver', 'del/a');
    await expectCode(() => seg.head('ver', 'del/a'), 'NoSuchKey');
    const c = await seg.put('ver', 'del/a', 'gamma');
    expect(await text('del/a')).toBe('gamma');
    expect(seg.list('ver', { prefix: 'del/' }).items.map((i) => i.versionId)).toEqual([c.versionId]);
    expect(seg.versions('ver', { prefix: 'del/' }).items.length).toBe(5);
    expect(marker2.versionId).not.toBe(marker.versionId);

    // Deleting a key that never existed still writes a marker (S3 does too), and lists nothing.
    await seg.delete('ver', 'del/never');
    await expectCode(() => seg.head('ver', 'del/never'), 'NoSuchKey');
    expect(seg.list('ver', { prefix: 'del/never' }).items).toEqual([]);
    expect(seg.versions('ver', { prefix: 'del/never' }).items.map((v) => v.deleted)).toEqual([true]);
  });

  it('deleteVersion of the head restores the previous one; of others changes no head', async () => {
    const v1 = await seg.put('ver', 'dv', '1');
    const v2 = await seg.put('ver', 'dv', '2');
    const v3 = await seg.put('ver', 'dv', '3');
    const m = await seg.delete('ver', 'dv');

    const removed = seg.deleteVersion('ver', 'dv', m.versionId);
    expect(removed.versionId).toBe(m.versionId);
    expect(removed.deleted).toBe(true);
    expect(await text('dv')).toBe('3');

    seg.deleteVersion('ver', 'dv', v3.versionId);
    expect(await text('dv')).toBe('2');
    expect((await seg.head('ver', 'dv')).isLatest).toBe(true);
    expect((await seg.head('ver', 'dv')).versionId).toBe(v2.versionId);
    await expectCode(() => seg.head('ver', 'dv', { versionId: v3.versionId }), 'NoSuchVersion');
    await expectCode(() => seg.deleteVersion('ver', 'dv', v3.versionId), 'NoSuchVersion');

    seg.deleteVersion('ver', 'dv', v1.versionId);
    expect(await text('dv')).toBe('2');
    expect(seg.versions('ver', { prefix: 'dv' }).items.map((v) => v.versionId)).toEqual([v2.versionId]);

    seg.deleteVersion('ver', 'dv', v2.versionId);
    await expectCode(() => seg.head('ver', 'dv'), 'NoSuchKey');
    expect(seg.versions('ver', { prefix: 'dv' }).items).toEqual([]);
    expect(seg.list('ver', { prefix: 'dv' }).items).toEqual([]);
  });

  it('get with `at` reads the version current at that time', async () => {
    const before = Date.now();
    await sleep(5);
    const a = await seg.put('ver', 'tt', 'first');
    await sleep(5);
    const t1 = Date.now();
    await sleep(5);
    const b = await seg.put('ver', 'tt', 'second');
    await sleep(5);
    const t2 = Date.now();
    await sleep(5);
    await seg.delete('ver', 'tt');
    await sleep(5);
    const t3 = Date.now();
    await sleep(5);
    await seg.put('ver', 'tt', 'third');

    await expectCode(() => seg.get('ver', 'tt', { at: before }), 'NoSuchKey');
    expect(await text('tt', { at: t1 })).toBe('first');
    expect((await seg.head('ver', 'tt', { at: t1 })).versionId).toBe(a.versionId);
    expect(await text('tt', { at: t2 })).toBe('second');
    expect((await seg.head('ver', 'tt', { at: t2 })).versionId).toBe(b.versionId);
    const err = await expectCode(() => seg.get('ver', 'tt', { at: t3 }), 'NoSuchKey');
    expect((err as Error & { deleteMarker?: string }).deleteMarker).toBeDefined();
    expect(await text('tt', { at: Date.now() + 60_000 })).toBe('third');
    expect(await text('tt')).toBe('third');
  });

  it('concurrent puts to one key keep every version; the head is the highest hlc', async () => {
    const n = 20;
    const bodies = Array.from({ length: n }, (_, i) => `writer ${i} `.repeat(1 + i * 50));
    // Streamed bodies that yield, so the puts really interleave.
    async function* slow(s: string) {
      for (let o = 0; o < s.length; o += 97) {
        await sleep(0);
        yield Buffer.from(s.slice(o, o + 97));
      }
    }
    const results = await Promise.all(bodies.map((b) => seg.put('ver', 'race', slow(b))));
    const hlcs = results.map((r) => r.hlc);
    expect(new Set(hlcs).size).toBe(n);
    const top = results.reduce((x, y) => (y.hlc > x.hlc ? y : x));
    const head = await seg.head('ver', 'race');
    expect(head.versionId).toBe(top.versionId);
    expect(await text('race')).toBe(bodies[results.indexOf(top)]);

    const listed = seg.versions('ver', { prefix: 'race' }).items;
    expect(listed.length).toBe(n);
    expect(listed.map((v) => v.hlc)).toEqual([...hlcs].sort((x, y) => y - x));
    expect(listed.filter((v) => v.isLatest).map((v) => v.versionId)).toEqual([top.versionId]);
    for (const [i, r] of results.entries()) expect(await text('race', { versionId: r.versionId })).toBe(bodies[i]);
  });

  it('version listings page with after + afterVersion, without duplicates or gaps', async () => {
    seg.createBucket('vpage');
    // Keys with 1..6 versions each, some ending in a delete marker, some in folders.
    const all: ObjectSummary[] = [];
    for (let k = 0; k < 40; k++) {
      const key = k % 3 === 0 ? `f${k % 4}/k${k}` : `k${String(k).padStart(2, '0')}`;
      for (let v = 0; v <= k % 6; v++) all.push(await seg.put('vpage', key, `${key} v${v}`));
      if (k % 5 === 0) all.push(await seg.delete('vpage', key));
    }
    const model = [...all].sort((a, b) => utf8Compare(a.key, b.key) || b.hlc - a.hlc);

    const full = seg.versions('vpage', {});
    expect(full.truncated).toBe(false);
    expect(full.items.map((v) => v.versionId)).toEqual(model.map((v) => v.versionId));
    // isLatest: exactly the first version of each key.
    const firsts = new Set<string>();
    for (const v of full.items) {
      expect(v.isLatest).toBe(!firsts.has(v.key));
      firsts.add(v.key);
    }

    for (const limit of [1, 2, 3, 7, 50]) {
      const seen: string[] = [];
      let after: string | undefined;
      let afterVersion: string | undefined;
      let pages = 0;
      for (;;) {
        const page = seg.versions('vpage', { after, afterVersion, limit });
        pages++;
        expect(page.items.length).toBeLessThanOrEqual(limit);
        seen.push(...page.items.map((v) => v.versionId));
        // Within a page, each item's isLatest is right even when the page starts mid-key.
        for (const v of page.items) expect(v.isLatest).toBe(seg.meta.head('vpage', v.key)?.vid === v.versionId);
        if (!page.truncated) break;
        expect(page.next).toBe(page.items[page.items.length - 1].key);
        expect(page.nextVersion).toBe(page.items[page.items.length - 1].versionId);
        after = page.next;
        afterVersion = page.nextVersion;
      }
      expect(seen, `limit ${limit}`).toEqual(model.map((v) => v.versionId));
      // A page that ends exactly at the last version is not marked truncated: no empty last page.
      expect(pages).toBe(Math.ceil(model.length / limit));
    }

    // With a delimiter: folders fold into common prefixes, paging through them too.
    const seenKeys: string[] = [];
    const prefixes: string[] = [];
    let after: string | undefined;
    let afterVersion: string | undefined;
    for (;;) {
      const page = seg.versions('vpage', { delimiter: '/', after, afterVersion, limit: 4 });
      seenKeys.push(...page.items.map((v) => v.versionId));
      prefixes.push(...page.commonPrefixes);
      if (!page.truncated) break;
      after = page.next;
      afterVersion = page.nextVersion;
    }
    expect(prefixes).toEqual(['f0/', 'f1/', 'f2/', 'f3/']);
    expect(seenKeys).toEqual(model.filter((v) => !v.key.includes('/')).map((v) => v.versionId));
    // Inside one folder.
    const inF1 = seg.versions('vpage', { prefix: 'f1/', delimiter: '/' });
    expect(inF1.commonPrefixes).toEqual([]);
    expect(inF1.items.map((v) => v.versionId)).toEqual(model.filter((v) => v.key.startsWith('f1/')).map((v) => v.versionId));
  });

  it('pages through a key with more versions than one scan batch (1,000 rows)', { timeout: 60_000 }, async () => {
    seg.createBucket('many');
    const vids: string[] = [];
    for (let i = 0; i < 1050; i++) vids.push((await seg.put('many', 'hot', `v${i}`)).versionId);
    await seg.put('many', 'hot2', 'x');
    const want = [...vids].reverse();
    for (const limit of [1000, 7, 999]) {
      const seen: string[] = [];
      let after: string | undefined;
      let afterVersion: string | undefined;
      for (let pages = 0; ; pages++) {
        expect(pages).toBeLessThan(400);
        const page = seg.versions('many', { after, afterVersion, limit });
        seen.push(...page.items.map((v) => v.versionId));
        if (!page.truncated) break;
        after = page.next;
        afterVersion = page.nextVersion;
      }
      expect(seen.length, `limit ${limit}`).toBe(want.length + 1);
      expect(seen.slice(0, -1)).toEqual(want);
    }
    // Starting in the middle of the key's versions.
    const mid = seg.versions('many', { after: 'hot', afterVersion: want[1010], limit: 1000 });
    expect(mid.items.map((v) => v.versionId)).toEqual([...want.slice(1011), (await seg.head('many', 'hot2')).versionId]);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_LIST_LIMIT, type ListOptions, type Segment } from '../../src/segment/segment.ts';
import { expectCode, md5, openTempSegment, type TempSegment } from '../helpers/segment-util.ts';

// Listings over 2,500 live keys (plus deleted ones) against a brute-force model of S3's
// ListObjects: UTF-8 byte order, prefix, delimiter folding into common prefixes, start-after,
// max-keys and paging by the returned marker.

const utf8Compare = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

interface ModelPage {
  keys: string[];
  commonPrefixes: string[];
  truncated: boolean;
  next?: string;
}

// S3: entries (keys and common prefixes, in byte order) that sort after the marker, folded by the
// delimiter after the prefix, the first `limit` of them; the marker of the next page is the last
// entry returned. `keys` sorted in byte order, with their UTF-8 bytes.
function model(keys: { key: string; bytes: Buffer }[], q: ListOptions & { limit: number }): ModelPage {
  const prefix = q.prefix ?? '';
  const after = q.after === undefined ? undefined : Buffer.from(q.after);
  // A key at or before the marker folds into a prefix that is too (a prefix of it): skip them all.
  let lo = 0;
  if (after) {
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (Buffer.compare(keys[mid].bytes, after) <= 0) lo = mid + 1;
      else hi = mid;
    }
  }
  const entries: { name: string; cp: boolean }[] = [];
  for (let k = lo; k < keys.length && entries.length <= q.limit; k++) {
    const key = keys[k].key;
    if (!key.startsWith(prefix)) continue;
    let name = key;
    let cp = false;
    if (q.delimiter) {
      const i = key.indexOf(q.delimiter, prefix.length);
      if (i >= 0) {
        name = key.slice(0, i + q.delimiter.length);
        cp = true;
      }
    }
    if (after && Buffer.compare(Buffer.from(name), after) <= 0) continue;
    const last = entries[entries.length - 1];
    if (cp && last?.cp && last.name === name) continue;
    entries.push({ name, cp });
  }
  const page = entries.slice(0, q.limit);
  const truncated = entries.length > q.limit;
  return {
    keys: page.filter((e) => !e.cp).map((e) => e.name),
    commonPrefixes: page.filter((e) => e.cp).map((e) => e.name),
    truncated,
    ...(truncated ? { next: page[page.length - 1]?.name } : {}),
  };
}

// True when `after` lies strictly inside a common prefix (e.g. 'd3/f5' with delimiter '/'). Whether
// that prefix is listed again is not pinned down here.
function insideFolded(after: string, prefix: string, delimiter: string): boolean {
  if (!after.startsWith(prefix)) return false;
  const i = after.indexOf(delimiter, prefix.length);
  return i >= 0 && i + delimiter.length < after.length;
}

describe('segment listing', () => {
  let t: TempSegment;
  let seg: Segment;
  const live: string[] = [];
  let liveBytes: { key: string; bytes: Buffer }[] = [];
  const bodies = new Map<string, string>();

  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('lst');
    const keys: string[] = [];
    for (let i = 0; i < 200; i++) keys.push(`top-${i}`);
    for (let a = 0; a < 10; a++) for (let b = 0; b < 100; b++) keys.push(`d${a}/f${b}`);
    for (let a = 0; a < 5; a++) for (let c = 0; c < 10; c++) for (let b = 0; b < 20; b++) keys.push(`d${a}/s${c}/f${b}`);
    // UTF-8 byte order differs from UTF-16 order between U+FFFD and astral characters.
    for (let i = 0; i < 60; i++) keys.push(`u/z${i}`, `u/é${i}`, `u/\uFFFD${i}`, `u/😀${i}`);
    // '-' < '.' < '/' < '0': keys on both sides of the delimiter.
    for (let i = 0; i < 15; i++) keys.push(`x-${i}`, `x/${i}`, `x.${i}`, `x0${i}`);
    expect(keys.length).toBe(2500);
    // Shuffled insertion order: the listing order must come from the keys, not from history.
    let x = 12345;
    for (let i = keys.length - 1; i > 0; i--) {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      const j = x % (i + 1);
      [keys[i], keys[j]] = [keys[j], keys[i]];
    }
    for (const [i, key] of keys.entries()) {
      const body = i % 10 === 0 ? `body of ${key}` : '';
      await seg.put('lst', key, body);
      bodies.set(key, body);
    }
    // Keys that exist only as delete markers (or were overwritten then deleted) are not listed.
    for (let i = 0; i < 40; i++) {
      const key = i % 2 === 0 ? `d${i % 10}/gone${i}` : `gone-${i}`;
      await seg.put('lst', key, 'soon gone');
      await seg.delete('lst', key);
    }
    // Overwritten keys are listed once, with their newest version.
    for (let i = 0; i < 30; i++) {
      const key = `top-${i}`;
      await seg.put('lst', key, `v2 of ${key}`);
      bodies.set(key, `v2 of ${key}`);
    }
    live.push(...[...keys].sort(utf8Compare));
    liveBytes = live.map((key) => ({ key, bytes: Buffer.from(key) }));
  });
  afterAll(async () => {
    await t.cleanup();
  });

  function check(q: ListOptions & { limit: number }) {
    const got = seg.list('lst', q);
    const want = model(liveBytes, q);
    const label = JSON.stringify(q);
    expect(got.items.map((o) => o.key), label).toEqual(want.keys);
    expect(got.commonPrefixes, label).toEqual(want.commonPrefixes);
    expect(got.truncated, label).toBe(want.truncated);
    expect(got.next, label).toBe(want.next);
    return got;
  }

  // Pages through with the returned marker; returns all entries seen, in order.
  function pageAll(q: Omit<ListOptions, 'after'> & { limit: number }): string[] {
    const seen: string[] = [];
    let after: string | undefined;
    for (let pages = 0; ; pages++) {
      expect(pages).toBeLessThan(3000);
      const got = check({ ...q, after });
      // Merge keys and prefixes back into one ordered stream.
      seen.push(...[...got.items.map((o) => o.key), ...got.commonPrefixes].sort(utf8Compare));
      if (!got.truncated) break;
      after = got.next;
    }
    return seen;
  }

  it('lists every live key once, in UTF-8 byte order, with size and etag', () => {
    const page = seg.list('lst', {});
    expect(page.items.length).toBe(MAX_LIST_LIMIT);
    expect(page.truncated).toBe(true);
    const all = pageAll({ limit: 1000 });
    expect(all).toEqual(live);
    // Spot-check the summaries.
    for (const o of seg.list('lst', { prefix: 'top-1', limit: 1000 }).items) {
      const body = bodies.get(o.key)!;
      expect(o.size).toBe(Buffer.byteLength(body));
      expect(o.etag).toBe(md5(Buffer.from(body)));
      expect(o.deleted).toBe(false);
    }
    const u = seg.list('lst', { prefix: 'u/', limit: 4 }).items.map((o) => o.key);
    expect(u).toEqual(['u/z0', 'u/z1', 'u/z10', 'u/z11']);
    const order = seg.list('lst', { prefix: 'u/', delimiter: '0', limit: 1000 });
    expect(order.commonPrefixes.slice(0, 4)).toEqual(['u/z0', 'u/z10', 'u/z20', 'u/z30']);
    // z < é < U+FFFD < 😀 in UTF-8 bytes (UTF-16 would put the emoji before U+FFFD).
    const firsts = ['u/z', 'u/é', 'u/\uFFFD', 'u/😀'].map((p) => live.indexOf(`${p}0`));
    expect([...firsts].sort((a, b) => a - b)).toEqual(firsts);
  });

  it('pages without duplicates or gaps at any page size, with and without a delimiter', () => {
    for (const limit of [1, 7, 333, 1000]) {
      if (limit === 1) {
        // limit 1 over 2,500 keys is 2,500 calls: only under one prefix.
        expect(pageAll({ prefix: 'd3/', limit })).toEqual(pageAll({ prefix: 'd3/', limit: 1000 }));
        continue;
      }
      const flat = pageAll({ limit });
      expect(flat).toEqual(live);
      expect(new Set(flat).size).toBe(flat.length);
    }
    for (const delimiter of ['/', '-', '.', '0', 'f1']) {
      const whole = pageAll({ delimiter, limit: 1000 });
      // Small pages only where the listing is short (few thousand calls otherwise).
      const limits = delimiter === '/' ? [1, 2, 7, 100] : [7, 100];
      for (const limit of limits) expect(pageAll({ delimiter, limit }), `${delimiter} ${limit}`).toEqual(whole);
      expect(new Set(whole).size).toBe(whole.length);
    }
    const top = pageAll({ delimiter: '/', limit: 1000 });
    expect(top.filter((e) => e.endsWith('/'))).toEqual(['d0/', 'd1/', 'd2/', 'd3/', 'd4/', 'd5/', 'd6/', 'd7/', 'd8/', 'd9/', 'u/', 'x/']);
    // 'gone-*' and 'd*/gone*' keys are delete markers only: not listed, not folded into prefixes.
    expect(top.some((e) => e.startsWith('gone'))).toBe(false);
  });

  it('prefix and delimiter combinations match the model', () => {
    const prefixes = ['', 'd', 'd3', 'd3/', 'd3/s', 'd3/s1', 'd3/s1/', 'd9/', 'u/', 'u/\uFFFD', 'x', 'x/', 'top-1', 'top-199', 'nope', 'z', 'gone', 'd1/gone'];
    for (const prefix of prefixes) {
      for (const delimiter of [undefined, '/', '-']) {
        for (const limit of [3, 1000]) {
          const whole = pageAll({ prefix, delimiter, limit });
          if (limit === 1000) expect(whole.length).toBeLessThanOrEqual(live.length);
        }
      }
    }
    expect(check({ prefix: 'd3/', delimiter: '/', limit: 1000 }).commonPrefixes).toEqual(
      Array.from({ length: 10 }, (_, c) => `d3/s${c}/`),
    );
    expect(check({ prefix: 'd7/', delimiter: '/', limit: 1000 }).commonPrefixes).toEqual([]);
    expect(check({ prefix: 'nope', limit: 1000 }).items).toEqual([]);
  });

  it('start-after: keys, common prefixes, non-keys, before and past the prefix', () => {
    const afters = [
      '', 'a', 'd', 'd0', 'd0/', 'd3/', 'd3/f5', 'd3/f50', 'd3/s', 'd3/s4/', 'd3/s4/f7', 'top-100', 'top-', 'u/', 'u/é',
      'u/\uFFFD5', 'x', 'x-', 'x/', 'zzz', '\uFFFF',
    ];
    for (const after of afters) {
      check({ after, limit: 1000 });
      check({ after, limit: 10 });
      check({ after, prefix: 'd3/', limit: 50 });
      // With a delimiter, only markers that are not strictly inside a folded prefix: S3 clients
      // page with the returned marker, which never is (see insideFolded).
      if (!insideFolded(after, '', '/')) check({ after, delimiter: '/', limit: 15 });
      if (!insideFolded(after, 'd3/', '/')) check({ after, prefix: 'd3/', delimiter: '/', limit: 1000 });
    }
    // A marker before the prefix excludes nothing; one past it leaves nothing.
    expect(check({ prefix: 'x', after: 'a', limit: 1000 }).items.length).toBe(60);
    expect(check({ prefix: 'd3/', after: 'd4', limit: 1000 }).items).toEqual([]);
    // A marker equal to a common prefix skips that whole prefix.
    const afterD3 = check({ delimiter: '/', after: 'd3/', limit: 2 });
    expect(afterD3.commonPrefixes).toEqual(['d4/', 'd5/']);
  });

  it('limits: clamped to 1000, invalid ones rejected', async () => {
    const page = seg.list('lst', { limit: 5000 });
    expect(page.items.length).toBe(MAX_LIST_LIMIT);
    for (const bad of [-1, 1.5, Number.NaN]) {
      await expectCode(() => seg.list('lst', { limit: bad }), 'InvalidArgument');
      await expectCode(() => seg.versions('lst', { limit: bad }), 'InvalidArgument');
    }
  });
});

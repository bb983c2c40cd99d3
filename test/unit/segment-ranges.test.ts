import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FANOUT, INLINE_MAX_ENTRIES, allCids, decodeNode, type ChunkRef } from '../../src/core/chunk-manifest.ts';
import { isInlineCid } from '../../src/core/cid.ts';
import { resolveRange, type ByteRange, type Segment } from '../../src/segment/segment.ts';
import {
  MID_CHUNKER, MiB, SMALL_CHUNKER, expectCode, openTempSegment, prngBytes, readAll, type TempSegment,
} from '../helpers/segment-util.ts';

// Byte ranges, with small chunks so that ranges cross many chunk boundaries and, for the large
// object, run through a two-level tree manifest.

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

async function chunksOf(seg: Segment, bucket: string, key: string): Promise<{ chunks: ChunkRef[]; blocks: number }> {
  const v = await seg.head(bucket, key);
  const { chunks, blocks } = await allCids(v.content, (cid) => seg.readBlock(cid, { bucket, key, vid: v.versionId }));
  return { chunks, blocks: blocks.length };
}

async function read(seg: Segment, bucket: string, key: string, range: ByteRange) {
  const r = await seg.get(bucket, key, { range });
  return { start: r.start, end: r.end, bytes: await readAll(r.body) };
}

async function expectRange(seg: Segment, bucket: string, key: string, data: Buffer, range: ByteRange, start: number, end: number) {
  const got = await read(seg, bucket, key, range);
  expect([got.start, got.end], JSON.stringify(range)).toEqual([start, end]);
  expect(got.bytes.length).toBe(end - start);
  expect(got.bytes.equals(data.subarray(start, end)), JSON.stringify(range)).toBe(true);
}

describe('segment byte ranges (chunk files, tree manifests)', () => {
  let t: TempSegment;
  let seg: Segment;
  // ~42 MiB in ~9 KiB chunks: more than FANOUT entries, so a root over two leaves.
  const big = prngBytes(61, 42 * MiB + 333);
  const small = prngBytes(62, 200_000);
  let boundaries: number[] = [];
  const expectBig = (range: ByteRange, s: number, e: number) => expectRange(seg, 'rng', 'big', big, range, s, e);

  beforeAll(async () => {
    t = await openTempSegment({ chunker: MID_CHUNKER, memory: true });
    seg = t.seg;
    seg.createBucket('rng');
    await seg.put('rng', 'big', big);
    await seg.put('rng', 'small', small);
    await seg.put('rng', 'empty', '');
    await seg.put('rng', 'one', 'x');
    let offset = 0;
    boundaries = (await chunksOf(seg, 'rng', 'big')).chunks.map(([, len]) => (offset += len));
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('the large object is stored as a two-level tree of stored (not inline) chunks', async () => {
    const v = await seg.head('rng', 'big');
    expect('tree' in v.content).toBe(true);
    const { chunks, blocks } = await chunksOf(seg, 'rng', 'big');
    expect(chunks.length).toBeGreaterThan(FANOUT);
    expect(blocks).toBe(Math.ceil(chunks.length / FANOUT) + 1);
    if (!('tree' in v.content)) throw new Error('unreachable');
    const root = decodeNode(await seg.readBlock(v.content.tree, { bucket: 'rng', key: 'big', vid: v.versionId }));
    expect('children' in root).toBe(true);
    expect(boundaries.length).toBe(chunks.length);
    expect(boundaries[boundaries.length - 1]).toBe(big.length);
    for (const [cid, len] of chunks.slice(0, -1)) {
      expect(isInlineCid(cid)).toBe(false);
      expect(len).toBeGreaterThan(MID_CHUNKER.min);
      expect(len).toBeLessThanOrEqual(MID_CHUNKER.max);
    }
    // The small object is an inline list.
    const s = await seg.head('rng', 'small');
    expect('chunks' in s.content && s.content.chunks.length).toBeGreaterThan(5);
    expect('chunks' in s.content && s.content.chunks.length).toBeLessThanOrEqual(INLINE_MAX_ENTRIES);
  });

  it('S3 range forms: first-last, open-ended, suffix, last byte, whole, clamped', async () => {
    for (const [key, data] of [['big', big], ['small', small]] as const) {
      const n = data.length;
      const expectR = (range: ByteRange, s: number, e: number) => expectRange(seg, 'rng', key, data, range, s, e);
      await expectR({ start: 0, end: n }, 0, n); // whole
      await expectR({ start: 100, end: 200 }, 100, 200); // bytes=100-199
      await expectR({ start: n - 100_000 }, n - 100_000, n); // bytes=N-
      await expectR({ suffix: 500 }, n - 500, n); // bytes=-500
      await expectR({ suffix: n + 1000 }, 0, n); // longer than the object: all of it
      await expectR({ start: n - 1 }, n - 1, n); // last byte
      await expectR({ suffix: 1 }, n - 1, n);
      await expectR({ start: 0, end: 1 }, 0, 1); // first byte
      await expectR({ start: n - 5000, end: n + 1_000_000 }, n - 5000, n); // end clamped
    }
    await expectRange(seg, 'rng', 'small', small, { start: 1000 }, 1000, small.length);
    await expectRange(seg, 'rng', 'small', small, { suffix: small.length }, 0, small.length);
    await expectRange(seg, 'rng', 'one', Buffer.from('x'), { start: 0 }, 0, 1);
    await expectRange(seg, 'rng', 'one', Buffer.from('x'), { suffix: 3 }, 0, 1);
  });

  it('unsatisfiable ranges are InvalidRange', async () => {
    const n = big.length;
    const bad: [string, ByteRange][] = [
      ['big', { start: n }],
      ['big', { start: n + 10, end: n + 20 }],
      ['big', { start: 10, end: 10 }],
      ['big', { start: 10, end: 5 }],
      ['big', { start: -1 }],
      ['big', { suffix: 0 }],
      ['big', { suffix: -5 }],
      ['big', { start: Number.NaN }],
      ['one', { start: 1 }],
      ['empty', { start: 0 }],
      ['empty', { suffix: 1 }],
      ['empty', { start: 0, end: 1 }],
    ];
    for (const [key, range] of bad) await expectCode(() => seg.get('rng', key, { range }), 'InvalidRange');
    // Without a range the empty object reads as empty.
    const whole = await seg.get('rng', 'empty');
    expect((await readAll(whole.body)).length).toBe(0);
    expect(() => resolveRange({ start: 3 }, 3)).toThrow();
    expect(resolveRange(undefined, 0)).toEqual([0, 0]);
  });

  it('ranges crossing chunk boundaries and tree leaves equal the source bytes', async () => {
    const n = big.length;
    const next = rng(2024);
    const ranges: [number, number][] = [];
    // Around chunk boundaries: one byte either side, a whole chunk, and a few chunks.
    // (Each range read decodes a 4096-entry leaf, ~15 ms: the counts are kept modest.)
    for (let i = 0; i < 15; i++) {
      const j = next() % (boundaries.length - 3);
      const b = boundaries[j];
      ranges.push([b - 1, b + 1], [b, boundaries[j + 1]], [b - 1, boundaries[j + 3] + 1]);
    }
    // Around the leaf boundary of the tree (after FANOUT chunks).
    const leafEnd = boundaries[FANOUT - 1];
    ranges.push([leafEnd - 1, leafEnd + 1], [leafEnd - 50_000, leafEnd + 50_000], [0, leafEnd], [leafEnd, n]);
    // Random ones, short and long.
    for (let i = 0; i < 24; i++) {
      const s = next() % n;
      const len = 1 + (next() % (i % 4 === 0 ? 8 * MiB : 100_000));
      ranges.push([s, Math.min(n, s + len)]);
    }
    for (const [s, e] of ranges) await expectBig({ start: s, end: e }, s, e);
  });

  it('an early-abandoned range read does not break later reads', async () => {
    const r = await seg.get('rng', 'big', { range: { start: 1000 } });
    for await (const piece of r.body) {
      expect(piece.length).toBeGreaterThan(0);
      break;
    }
    await expectBig({ start: 0, end: 40_000 }, 0, 40_000);
  });
});

describe('segment byte ranges (all-inline chunks)', () => {
  it('only a whole object of <= 4 KiB lives inside the manifest; ranges read both forms', async () => {
    const t = await openTempSegment({ chunker: SMALL_CHUNKER, memory: true });
    try {
      const seg = t.seg;
      seg.createBucket('inl');
      // Tiny chunker sizes make every chunk <= 4 KiB; they must still be stored as chunk files,
      // or manifests would swell into data blocks.
      const data = prngBytes(63, 1536 * 1024);
      const before = seg.stats();
      await seg.put('inl', 'obj', data);
      const { chunks } = await chunksOf(seg, 'inl', 'obj');
      expect(chunks.length).toBeGreaterThan(INLINE_MAX_ENTRIES);
      expect(chunks.some(([cid]) => isInlineCid(cid))).toBe(false);
      expect(seg.stats().chunks - before.chunks).toBeGreaterThan(chunks.length / 2);
      // A whole object that is one chunk of <= 4 KiB (here under the chunker's 256 B minimum) is
      // inline: no chunk file at all.
      const small = prngBytes(64, 250);
      const beforeSmall = seg.stats();
      await seg.put('inl', 'small', small);
      const smallChunks = (await chunksOf(seg, 'inl', 'small')).chunks;
      expect(smallChunks).toHaveLength(1);
      expect(isInlineCid(smallChunks[0][0])).toBe(true);
      expect(seg.stats().chunks).toBe(beforeSmall.chunks);
      await expectRange(seg, 'inl', 'small', small, { start: 100, end: 200 }, 100, 200);
      const next = rng(7);
      for (let i = 0; i < 30; i++) {
        const s = next() % data.length;
        const e = Math.min(data.length, s + 1 + (next() % 20_000));
        await expectRange(seg, 'inl', 'obj', data, { start: s, end: e }, s, e);
      }
      await expectRange(seg, 'inl', 'obj', data, { suffix: 4097 }, data.length - 4097, data.length);
    } finally {
      await t.cleanup();
    }
  });
});

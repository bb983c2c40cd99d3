import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_CHUNKER,
  JsCutScanner,
  checkChunkerParams,
  chunkStream,
  cutPoints,
  gearTable,
  scannerConfig,
  type ChunkerParams,
  type CutScanner,
} from '../../src/core/chunker.ts';
import {
  CID, INLINE_CHUNK_BYTES, chunkCid, chunkCidFromDigest, cidForChunk, inlineBytes, isInlineCid, parseCid, verifyChunk,
} from '../../src/core/cid.ts';
import { nativeCdcLoadError, nativeCutScanner } from '../../src/native/cdc.ts';
import * as Digest from 'multiformats/hashes/digest';

// The chunker decides every stored object's chunk boundaries, and with them dedup across segments
// and across versions: the golden numbers below pin it. If one of them changes, the change
// re-chunks every object ever stored. Do not "update the numbers" without a migration plan.

const MiB = 1024 * 1024;
const SMALL: ChunkerParams = { min: 256, avg: 1024, max: 4096 };

// xorshift32, seeded: the golden input must be reproducible by anyone from this file alone.
function xorshiftBytes(n: number, seed: number): Uint8Array {
  let x = seed >>> 0 || 1;
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return new Uint8Array(words.buffer, 0, n);
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

const GOLDEN_SEED = 0x57175;
const GOLDEN_INPUT_SHA256 = '61fb9a84a122e91ef6a72b90edb84c5d32d4decdb79f430f6bfd206534440c89';

const GOLDEN = {
  default: {
    params: DEFAULT_CHUNKER,
    count: 27,
    first: [
      297231, 614541, 913906, 1233002, 1691235, 1959984, 2199801, 2560372, 2831092, 3184259,
      3475942, 3759890, 4073951, 4375939, 4685066, 5004629, 5337559, 5606951, 5930272, 6319768,
    ],
    // sha256 of JSON.stringify(all cut points)
    allSha256: 'dda60bcd66c1bbad065b96faf43e3564547fc9889e2b8c6e10a8a624462690b3',
    maskS: -4096,
    maskL: -65536,
  },
  small: {
    params: SMALL,
    count: 7199,
    first: [
      1045, 2166, 2547, 3712, 4746, 5845, 8319, 9700, 10982, 12027,
      13602, 14977, 16966, 17436, 18724, 20279, 22046, 23220, 24293, 25184,
    ],
    allSha256: '39f17c834df3d3f47ae79e38af9e63012ea0d7181242ed25e268ad31ca8c73fb',
    maskS: -1048576,
    maskL: -16777216,
  },
} as const;

function native(params: ChunkerParams): CutScanner {
  const s = nativeCutScanner(scannerConfig(params));
  if (s === null) throw new Error(`native cdc addon did not load: ${String(nativeCdcLoadError())}`);
  return s;
}

function scanners(params: ChunkerParams): [string, CutScanner][] {
  return [
    ['js', new JsCutScanner(scannerConfig(params))],
    ['native', native(params)],
  ];
}

function lengthsOf(cuts: number[]): number[] {
  return cuts.map((c, i) => c - (i === 0 ? 0 : cuts[i - 1]));
}

function chunkHashes(data: Uint8Array, cuts: number[]): string[] {
  let start = 0;
  return cuts.map((end) => {
    const h = createHash('sha256').update(data.subarray(start, end)).digest('hex');
    start = end;
    return h;
  });
}

describe('chunker golden vectors', () => {
  const input = xorshiftBytes(8 * MiB, GOLDEN_SEED);

  it('the golden input is what it was', () => {
    expect(createHash('sha256').update(input).digest('hex')).toBe(GOLDEN_INPUT_SHA256);
  });

  it('gear table is pinned', () => {
    const gear = gearTable();
    expect(gear.length).toBe(256);
    expect(Array.from(gear.subarray(0, 4))).toEqual([-985593797, -17366231, 101601565, 659808230]);
    // Deterministic and all distinct.
    expect(gearTable()).toEqual(gear);
    expect(new Set(gear).size).toBe(256);
  });

  for (const [name, g] of Object.entries(GOLDEN)) {
    for (const which of ['js', 'native'] as const) {
      it(`${name} params (${JSON.stringify(g.params)}), ${which} scanner: pinned cut points`, () => {
        const config = scannerConfig(g.params);
        expect([config.maskS, config.maskL]).toEqual([g.maskS, g.maskL]);
        const scanner = which === 'js' ? new JsCutScanner(config) : native(g.params);
        const cuts = cutPoints(input, scanner);
        expect(cuts.slice(0, 20)).toEqual(g.first);
        expect(cuts.length).toBe(g.count);
        expect(cuts[cuts.length - 1]).toBe(input.length);
        expect(createHash('sha256').update(JSON.stringify(cuts)).digest('hex')).toBe(g.allSha256);
      });
    }
  }
});

describe('chunker properties', () => {
  it('an inserted or deleted byte changes at most 3 chunks (64 MiB, default sizes)', () => {
    const data = xorshiftBytes(64 * MiB, 99);
    const scanner = native(DEFAULT_CHUNKER);
    const before = cutPoints(data, scanner);
    const beforeHashes = chunkHashes(data, before);
    const beforeSet = new Set(beforeHashes);
    expect(before.length).toBeGreaterThan(150);

    const mid = 32 * MiB + 12345;
    const inserted = new Uint8Array(data.length + 1);
    inserted.set(data.subarray(0, mid), 0);
    inserted[mid] = data[mid] ^ 0x5a;
    inserted.set(data.subarray(mid), mid + 1);

    const deletedAt = 21 * MiB + 777;
    const deleted = new Uint8Array(data.length - 1);
    deleted.set(data.subarray(0, deletedAt), 0);
    deleted.set(data.subarray(deletedAt + 1), deletedAt);

    for (const [edited, at] of [[inserted, mid], [deleted, deletedAt]] as const) {
      const after = cutPoints(edited, scanner);
      const afterHashes = chunkHashes(edited, after);
      const fresh = afterHashes.filter((h) => !beforeSet.has(h));
      const afterSet = new Set(afterHashes);
      const lost = beforeHashes.filter((h) => !afterSet.has(h));
      expect(fresh.length).toBeGreaterThanOrEqual(1);
      expect(fresh.length).toBeLessThanOrEqual(3);
      expect(lost.length).toBeLessThanOrEqual(3);
      // Every cut before the edit is unchanged, and cuts resynchronise (shifted by the edit) after it.
      const cutsBefore = before.filter((c) => c < at);
      expect(after.slice(0, cutsBefore.length)).toEqual(cutsBefore);
      const shift = edited.length - data.length;
      const tailBefore = before.slice(-50).map((c) => c + shift);
      expect(after.slice(-50)).toEqual(tailBefore);
    }
  });

  it('chunk sizes stay within [min, max] except the last, for random, zero and repetitive data', () => {
    const random = xorshiftBytes(16 * MiB + 777, 5);
    const zeros = new Uint8Array(5 * MiB + 3);
    const pattern = new Uint8Array(4 * MiB + 11);
    const motif = xorshiftBytes(700, 8);
    for (let i = 0; i < pattern.length; i++) pattern[i] = motif[i % motif.length];
    for (const params of [DEFAULT_CHUNKER, SMALL, { min: 64, avg: 256, max: 65536 }]) {
      for (const [which, scanner] of scanners(params)) {
        for (const data of [random, zeros, pattern]) {
          const lengths = lengthsOf(cutPoints(data, scanner));
          const body = lengths.slice(0, -1);
          expect(body.every((l) => l >= params.min && l <= params.max), `${which} ${JSON.stringify(params)}`).toBe(true);
          const last = lengths[lengths.length - 1];
          expect(last).toBeGreaterThan(0);
          expect(last).toBeLessThanOrEqual(params.max);
          expect(lengths.reduce((a, b) => a + b, 0)).toBe(data.length);
          if (data === zeros) expect(body.every((l) => l === params.max)).toBe(true);
        }
      }
      // Random data is cut by content, near the average, not at the bounds.
      const lengths = lengthsOf(cutPoints(random, native(params))).slice(0, -1);
      const mean = lengths.reduce((a, b) => a + b, 0) / lengths.length;
      expect(mean).toBeGreaterThan(params.avg * 0.75);
      expect(mean).toBeLessThan(params.avg * 2);
      expect(lengths.filter((l) => l < params.max).length).toBeGreaterThan(lengths.length * 0.9);
    }
  });

  it('chunkStream over random piece sizes equals cutPoints', async () => {
    const data = xorshiftBytes(6 * MiB + 321, 77);
    for (const params of [DEFAULT_CHUNKER, SMALL]) {
      for (const [which, scanner] of scanners(params)) {
        const wanted = lengthsOf(cutPoints(data, scanner));
        for (const seed of [1, 2, 3]) {
          const next = rng(seed * 7919 + params.avg);
          async function* pieces(): AsyncGenerator<Uint8Array> {
            let o = 0;
            while (o < data.length) {
              const r = next() % 20;
              // Empty pieces, single bytes, small and large pieces.
              const len = r === 0 ? 0 : r === 1 ? 1 : r < 10 ? next() % 5000 : next() % (2 * MiB);
              yield data.subarray(o, Math.min(data.length, o + len));
              o += len;
            }
          }
          const got: number[] = [];
          const whole: Buffer[] = [];
          for await (const chunk of chunkStream(pieces(), scanner)) {
            got.push(chunk.length);
            if (seed === 1) whole.push(Buffer.from(chunk));
          }
          expect(got, `${which} seed ${seed}`).toEqual(wanted);
          if (seed === 1) expect(Buffer.concat(whole).equals(Buffer.from(data))).toBe(true);
        }
      }
    }
    // Empty input: no chunks at all.
    async function* nothing(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(0);
    }
    const none: Buffer[] = [];
    for await (const c of chunkStream(nothing(), native(SMALL))) none.push(c);
    expect(none).toEqual([]);
  });

  it('rejects invalid chunker sizes', () => {
    for (const bad of [
      { min: 256, avg: 1000, max: 4096 },
      { min: 1024, avg: 1024, max: 4096 },
      { min: 256, avg: 1024, max: 1024 },
      { min: 32, avg: 1024, max: 4096 },
      { min: 64, avg: 128, max: 4096 },
      { min: 256, avg: 1024, max: 128 * MiB },
    ]) {
      expect(() => checkChunkerParams(bad), JSON.stringify(bad)).toThrow(/invalid chunker sizes/);
      expect(() => scannerConfig(bad)).toThrow();
    }
    expect(() => checkChunkerParams(DEFAULT_CHUNKER)).not.toThrow();
  });
});

describe('chunk CIDs', () => {
  it('same content gives the same CIDs, different content different ones', async () => {
    const data = xorshiftBytes(3 * MiB, 123);
    const scanner = native(SMALL);
    const cidsOf = async (pieceSize: number) => {
      async function* pieces() {
        for (let o = 0; o < data.length; o += pieceSize) yield data.slice(o, o + pieceSize);
      }
      const out: string[] = [];
      for await (const c of chunkStream(pieces(), scanner)) out.push(chunkCid(c).toString());
      return out;
    };
    const a = await cidsOf(65536);
    const b = await cidsOf(1000);
    expect(b).toEqual(a);
    expect(new Set(a).size).toBe(a.length);
    for (const c of a) expect(c).toMatch(/^bafkrei[a-z2-7]{52}$/);

    const copy = Buffer.from(data.subarray(0, 5000));
    expect(chunkCid(copy).equals(chunkCid(data.subarray(0, 5000)))).toBe(true);
    expect(chunkCid(data.subarray(0, 5000)).equals(chunkCid(data.subarray(1, 5001)))).toBe(false);
  });

  it('CIDs are CIDv1 raw sha2-256, pinned, and verified', () => {
    const empty = chunkCid(new Uint8Array(0));
    expect(empty.toString()).toBe('bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku');
    const hello = chunkCid(Buffer.from('hello'));
    expect(hello.version).toBe(1);
    expect(hello.code).toBe(0x55);
    expect(hello.multihash.code).toBe(0x12);
    expect(Buffer.from(hello.multihash.digest).toString('hex')).toBe(
      createHash('sha256').update('hello').digest('hex'),
    );
    expect(parseCid(hello.toString()).equals(hello)).toBe(true);
    expect(chunkCidFromDigest(hello.multihash.digest).equals(hello)).toBe(true);

    expect(verifyChunk(hello, Buffer.from('hello'))).toBe(true);
    expect(verifyChunk(hello, Buffer.from('hellp'))).toBe(false);
    expect(verifyChunk(hello, Buffer.from(''))).toBe(false);
    // A CID naming another hash function (sha2-512 here) is refused, even with matching bytes.
    const sha512 = CID.createV1(0x55, Digest.create(0x13, createHash('sha512').update('hello').digest()));
    expect(verifyChunk(sha512, Buffer.from('hello'))).toBe(false);
  });

  it('chunks up to INLINE_CHUNK_BYTES are inline identity CIDs carrying their bytes', () => {
    const tiny = Buffer.from('tiny chunk');
    const inline = cidForChunk(tiny);
    expect(isInlineCid(inline)).toBe(true);
    expect(Buffer.from(inlineBytes(inline)).equals(tiny)).toBe(true);
    expect(verifyChunk(inline, tiny)).toBe(true);
    expect(verifyChunk(inline, Buffer.from('tiny chunj'))).toBe(false);
    expect(parseCid(inline.toString()).equals(inline)).toBe(true);
    const page = xorshiftBytes(INLINE_CHUNK_BYTES, 4);
    expect(isInlineCid(cidForChunk(page))).toBe(true);
    const bigger = xorshiftBytes(INLINE_CHUNK_BYTES + 1, 4);
    const hashed = cidForChunk(bigger);
    expect(isInlineCid(hashed)).toBe(false);
    expect(hashed.equals(chunkCid(bigger))).toBe(true);
  });
});

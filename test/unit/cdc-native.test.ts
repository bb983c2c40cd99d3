import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import {
  DEFAULT_CHUNKER,
  JsCutScanner,
  chunkStream,
  cutPoints,
  newScanState,
  scannerConfig,
  type CutScanner,
  type ScannerConfig,
} from '../../src/core/chunker.ts';
import { cutScannerFor, nativeCdcLoadError, nativeCutScanner } from '../../src/native/cdc.ts';

// The native scanner is only usable if it cuts exactly where the JS reference does: every stored
// object's chunking depends on it. Each case compares both on whole buffers and streamed in pieces.

const MiB = 1024 * 1024;
const SMALL = { min: 256, avg: 1024, max: 4096 };

// Seeded, so a failure reproduces.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

function randomBytes(n: number, seed: number): Uint8Array {
  const next = rng(seed);
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = next();
  return new Uint8Array(words.buffer, 0, n);
}

function repeated(pattern: Uint8Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let o = 0; o < n; o += pattern.length) out.set(pattern.subarray(0, Math.min(pattern.length, n - o)), o);
  return out;
}

function native(config: ScannerConfig): CutScanner {
  const s = nativeCutScanner(config);
  if (s === null) throw new Error(`native cdc addon did not load: ${String(nativeCdcLoadError())}`);
  return s;
}

// Pieces of random sizes up to `maxPiece`, some empty, each a view into `data` (non-zero byteOffset).
async function* pieces(data: Uint8Array, maxPiece: number, seed: number): AsyncGenerator<Uint8Array> {
  const next = rng(seed);
  let o = 0;
  while (o < data.length) {
    const len = next() % 10 === 0 ? 0 : 1 + (next() % maxPiece);
    yield data.subarray(o, Math.min(o + len, data.length));
    o += len;
  }
}

async function streamedLengths(data: Uint8Array, scanner: CutScanner, maxPiece: number, seed: number): Promise<number[]> {
  const lengths: number[] = [];
  for await (const chunk of chunkStream(pieces(data, maxPiece, seed), scanner)) lengths.push(chunk.length);
  return lengths;
}

function lengthsOf(cuts: number[]): number[] {
  return cuts.map((c, i) => c - (i === 0 ? 0 : cuts[i - 1]));
}

async function expectSameCuts(data: Uint8Array, config: ScannerConfig, maxPiece: number): Promise<number[]> {
  const js = new JsCutScanner(config);
  const nat = native(config);
  const cuts = cutPoints(data, js);
  expect(cutPoints(data, nat)).toEqual(cuts);
  const wanted = data.length === 0 ? [] : lengthsOf(cuts);
  for (const seed of [1, 2]) {
    expect(await streamedLengths(data, js, maxPiece, seed)).toEqual(wanted);
    expect(await streamedLengths(data, nat, maxPiece, seed)).toEqual(wanted);
  }
  return cuts;
}

describe('native FastCDC scanner', () => {
  const defaults = scannerConfig();
  const small = scannerConfig(SMALL);

  it('loads (setup builds it before the tests)', () => {
    expect(nativeCdcLoadError()).toBeNull();
    expect(nativeCutScanner(defaults)).not.toBeNull();
    expect(cutScannerFor(defaults)).not.toBeInstanceOf(JsCutScanner);
  });

  it('matches JS on 64 MiB of random data, default sizes', async () => {
    const cuts = await expectSameCuts(randomBytes(64 * MiB, 7), defaults, 3 * MiB);
    // Content-defined cuts, not just forced ones at max.
    expect(cuts.length).toBeGreaterThan(150);
    expect(lengthsOf(cuts).filter((l) => l < DEFAULT_CHUNKER.max).length).toBeGreaterThan(100);
  });

  it('matches JS on all-zero data (every cut forced at max)', async () => {
    const cuts = await expectSameCuts(new Uint8Array(8 * MiB + 12345), defaults, 2 * MiB);
    expect(lengthsOf(cuts).slice(0, -1).every((l) => l === DEFAULT_CHUNKER.max)).toBe(true);
    await expectSameCuts(new Uint8Array(MiB + 7), small, 10_000);
  });

  it('matches JS on a repeated 1 KiB pattern', async () => {
    const data = repeated(randomBytes(1024, 11), 16 * MiB + 999);
    await expectSameCuts(data, defaults, 2 * MiB);
    await expectSameCuts(data.subarray(0, 4 * MiB), small, 10_000);
  });

  it('matches JS with small non-default sizes on 4 MiB', async () => {
    const cuts = await expectSameCuts(randomBytes(4 * MiB, 13), small, 10_000);
    expect(cuts.length).toBeGreaterThan(2000);
  });

  it('matches JS on inputs shorter than min, and on empty input', async () => {
    for (const n of [1, 100, SMALL.min - 1, SMALL.min, SMALL.min + 1]) {
      await expectSameCuts(randomBytes(n, n), small, 64);
    }
    await expectSameCuts(randomBytes(DEFAULT_CHUNKER.min - 1, 3), defaults, 10_000);
    expect(await expectSameCuts(new Uint8Array(0), defaults, 10)).toEqual([0]);

    for (const scanner of [new JsCutScanner(small), native(small)]) {
      const state = newScanState();
      expect(scanner.scan(new Uint8Array(0), 0, state)).toBe(-1);
      expect([...state]).toEqual([0, 0]);
    }
  });

  it('matches JS from any start offset and carried-over state, byte for byte', () => {
    // Includes states JsCutScanner never produces itself (past max, negative), so that the two
    // agree on whatever a caller hands them.
    for (const [config, seed] of [[small, 21], [defaults, 22]] as const) {
      const js = new JsCutScanner(config);
      const nat = native(config);
      const next = rng(seed);
      const buf = randomBytes(3 * config.max, seed);
      const pattern = repeated(randomBytes(1024, seed), buf.length);
      for (let k = 0; k < (config === small ? 3000 : 600); k++) {
        const data = k % 3 === 0 ? pattern : buf;
        const view = data.subarray(next() % 5000);
        const start = next() % (view.length + 1);
        const pos = (next() % (config.max + 20)) - 10;
        const h = next() | 0;
        const a = Int32Array.of(pos, h);
        const b = Int32Array.of(pos, h);
        const cutJs = js.scan(view, start, a);
        const cutNative = nat.scan(view, start, b);
        expect({ k, cut: cutNative, state: [...b] }).toEqual({ k, cut: cutJs, state: [...a] });
      }
    }
  });

  it('throws TypeError on bad arguments, and keeps working after', () => {
    const cdc = createRequire(import.meta.url)('../../native/cdc/build/Release/cdc.node');
    const { gear, min, avg, max, maskS, maskL } = small;
    const handle = cdc.configure(gear, min, avg, max, maskS, maskL);
    const buf = new Uint8Array(100);
    const state = newScanState();

    const badConfigure = [
      [],
      [gear, min, avg, max, maskS],
      [Array.from(gear), min, avg, max, maskS, maskL],
      [new Uint32Array(256), min, avg, max, maskS, maskL],
      [gear.subarray(0, 255), min, avg, max, maskS, maskL],
      [gear, '256', avg, max, maskS, maskL],
      [gear, min, avg, max, 1.5, maskL],
      [gear, min, avg, max, maskS, 2 ** 32],
      [gear, min, avg, max, maskS, Number.NaN],
      [gear, avg, min, max, maskS, maskL],
      [gear, -1, avg, max, maskS, maskL],
    ];
    for (const args of badConfigure) expect(() => cdc.configure(...args), JSON.stringify(args)).toThrow(TypeError);

    const badScan = [
      [],
      [handle, buf, 0],
      [{}, buf, 0, state],
      [null, buf, 0, state],
      [42, buf, 0, state],
      [gear, buf, 0, state],
      [handle, Array.from(buf), 0, state],
      [handle, new Int8Array(100), 0, state],
      [handle, new Uint8ClampedArray(100), 0, state],
      [handle, buf.buffer, 0, state],
      [handle, new DataView(buf.buffer), 0, state],
      [handle, 'bytes', 0, state],
      [handle, buf, -1, state],
      [handle, buf, 101, state],
      [handle, buf, 0.5, state],
      [handle, buf, Number.NaN, state],
      [handle, buf, Number.POSITIVE_INFINITY, state],
      [handle, buf, '0', state],
      [handle, buf, 0n, state],
      [handle, buf, 0, new Int32Array(1)],
      [handle, buf, 0, new Uint32Array(2)],
      [handle, buf, 0, new Float64Array(2)],
      [handle, buf, 0, [0, 0]],
    ];
    for (const args of badScan) expect(() => cdc.scan(...args)).toThrow(TypeError);

    // A detached buffer reads as empty, not as freed memory.
    const detached = new Uint8Array(1000);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    expect(cdc.scan(handle, detached, 0, state)).toBe(-1);
    expect(() => cdc.scan(handle, detached, 1, state)).toThrow(TypeError);

    // Nothing was left half-done: the next good call works.
    expect(cdc.scan(handle, randomBytes(SMALL.max, 5), 0, newScanState())).toBeGreaterThan(0);
  });
});

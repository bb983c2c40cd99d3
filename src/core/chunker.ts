import { createHash } from 'node:crypto';

// FastCDC (Xia et al., 2016) with normalized chunking, level 2, on a 32-bit gear hash.
// A 32-bit hash keeps the hot loop in int32 arithmetic (JS has no cheap 64-bit ints); the masks
// take the TOP bits because after `h << 1` bit k depends only on the last k+1 bytes, so top bits
// see a 32-byte window. Cut points are pinned by golden vectors in the tests: changing anything
// here (table, masks, phases) re-chunks every stored object and breaks dedup across segments.

export interface ChunkerParams {
  min: number;
  avg: number;
  max: number;
}

// 64 KiB / 256 KiB / 1 MiB: big enough that per-chunk costs (a file, a CID, a manifest entry, a
// WAN request) stay small next to the bytes, small enough that an edit re-sends little.
export const DEFAULT_CHUNKER: ChunkerParams = { min: 64 * 1024, avg: 256 * 1024, max: 1024 * 1024 };

// Normalization level 2: stricter mask before the average size, looser after, which narrows the
// size distribution around avg without changing the mean much.
const NORMALIZATION = 2;

export interface ScannerConfig extends ChunkerParams {
  gear: Int32Array;
  maskS: number;
  maskL: number;
}

// State carried across buffers: [bytes in the current chunk so far, gear hash].
export type ScanState = Int32Array;

// Finds the next cut at or after `start` in `buf`, continuing `state`. Returns the index just past
// the cut (and resets state), or -1 when `buf` ends first (state then holds the progress).
export interface CutScanner {
  scan(buf: Uint8Array, start: number, state: ScanState): number;
}

function topBitsMask(bits: number): number {
  return bits >= 32 ? -1 : (0xffffffff << (32 - bits)) | 0;
}

// Deterministic table: sha256 of a fixed label per byte value, so any implementation (the C addon,
// another language) can rebuild it without shipping 1 KiB of magic numbers.
export function gearTable(): Int32Array {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    table[i] = createHash('sha256').update(`stitchfs gear ${i}`).digest().readInt32LE(0);
  }
  return table;
}

export function checkChunkerParams(p: ChunkerParams): void {
  const pow2 = (n: number) => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avg) || p.avg < 256 || !(p.min >= 64 && p.min < p.avg && p.avg < p.max) || p.max > 64 * 1024 * 1024) {
    throw new Error(`invalid chunker sizes min=${p.min} avg=${p.avg} max=${p.max}: need 64 <= min < avg < max <= 64 MiB, avg a power of two`);
  }
}

export function scannerConfig(params: ChunkerParams = DEFAULT_CHUNKER): ScannerConfig {
  checkChunkerParams(params);
  const bits = Math.log2(params.avg);
  return {
    ...params,
    gear: gearTable(),
    maskS: topBitsMask(bits + NORMALIZATION),
    maskL: topBitsMask(bits - NORMALIZATION),
  };
}

export function newScanState(): ScanState {
  return new Int32Array(2);
}

export class JsCutScanner implements CutScanner {
  private readonly c: ScannerConfig;
  constructor(config: ScannerConfig) {
    this.c = config;
  }

  scan(buf: Uint8Array, start: number, state: ScanState): number {
    const { min, avg, max, gear, maskS, maskL } = this.c;
    const n = buf.length;
    let pos = state[0];
    let h = state[1];
    let i = start;
    // The first `min` bytes of a chunk are never a cut, so they are skipped without hashing.
    if (pos < min) {
      const skip = Math.min(min - pos, n - i);
      i += skip;
      pos += skip;
      if (pos < min) {
        state[0] = pos;
        return -1;
      }
    }
    if (pos < avg) {
      const end = i + Math.min(avg - pos, n - i);
      const from = i;
      for (; i < end; i++) {
        h = ((h << 1) + gear[buf[i]]) | 0;
        if ((h & maskS) === 0) return resetAt(state, i + 1);
      }
      pos += end - from;
    }
    if (pos >= avg) {
      const end = i + Math.min(max - pos, n - i);
      const from = i;
      for (; i < end; i++) {
        h = ((h << 1) + gear[buf[i]]) | 0;
        if ((h & maskL) === 0) return resetAt(state, i + 1);
      }
      pos += end - from;
      if (pos >= max) return resetAt(state, i);
    }
    state[0] = pos;
    state[1] = h;
    return -1;
  }
}

function resetAt(state: ScanState, index: number): number {
  state[0] = 0;
  state[1] = 0;
  return index;
}

// A chunk as the input pieces it spans, uncopied: hashing and writing can walk the pieces, so
// ingest never concatenates (one memcpy and one garbage buffer per byte saved).
export interface ChunkPieces {
  pieces: Buffer[];
  length: number;
}

// Splits a byte stream into content-defined chunks without holding more than one chunk (plus the
// input piece being scanned) in memory.
export async function* chunkPieces(source: AsyncIterable<Uint8Array>, scanner: CutScanner): AsyncGenerator<ChunkPieces> {
  const state = newScanState();
  let pending: Buffer[] = [];
  let pendingLength = 0;
  for await (const piece of source) {
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    let start = 0;
    while (start < buf.length) {
      const cut = scanner.scan(buf, start, state);
      if (cut < 0) {
        pending.push(buf.subarray(start));
        pendingLength += buf.length - start;
        break;
      }
      pending.push(buf.subarray(start, cut));
      yield { pieces: pending, length: pendingLength + cut - start };
      pending = [];
      pendingLength = 0;
      start = cut;
    }
  }
  if (pendingLength > 0) yield { pieces: pending, length: pendingLength };
}

// The same chunks as single buffers (a chunk inside one input piece is a view of it, not a copy).
export async function* chunkStream(source: AsyncIterable<Uint8Array>, scanner: CutScanner): AsyncGenerator<Buffer> {
  for await (const c of chunkPieces(source, scanner)) yield c.pieces.length === 1 ? c.pieces[0] : Buffer.concat(c.pieces, c.length);
}

// Cut points of a whole buffer (chunk end offsets); for tests and tools, not the data path.
export function cutPoints(data: Uint8Array, scanner: CutScanner): number[] {
  const state = newScanState();
  const cuts: number[] = [];
  let start = 0;
  while (start < data.length) {
    const cut = scanner.scan(data, start, state);
    if (cut < 0) break;
    cuts.push(cut);
    start = cut;
  }
  if (cuts.length === 0 || cuts[cuts.length - 1] !== data.length) cuts.push(data.length);
  return cuts;
}

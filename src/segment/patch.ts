// Copy-on-write at chunk level: the pure logic behind writes into existing content (the FUSE
// mount's random writes, truncates and appends).
//
// Given an object's chunk list, the byte ranges written since (dirty extents) and the new size,
// `patchChunks` re-reads only the old chunks that overlap a change, applies the writes, re-cuts
// just those regions with the content-defined scanner and splices:
//
//   unchanged prefix refs + new refs + unchanged suffix refs
//
// Re-cutting a region starts at the old chunk boundary before its first changed byte (the scanner
// state is fresh at every cut, so the scan reproduces what a whole-file pass would do there) and
// ends at the first new cut past the change that is also an old boundary: from there on the old
// chunks are reused as they are. FastCDC's gear hash forgets a byte after 32 more, so this usually
// happens at the old chunk's own end and a 1-byte write costs one or two new chunks. Chunk lists
// that are not one CDC pass (multipart parts, earlier patches, fsync'd tails) may not resync so
// fast; after RESYNC_SLACK * max bytes past the change the region is cut at the next old boundary
// regardless, so the work per change stays bounded either way.
//
// Nothing here does I/O by itself: the caller supplies how to read an old chunk (verified) and how
// to store a new one.
import type { CID } from 'multiformats/cid';
import type { ChunkRef } from '../core/chunk-manifest.ts';
import { cidForChunk, isInlineCid } from '../core/cid.ts';
import { newScanState, type CutScanner, type ScanState } from '../core/chunker.ts';

// A written byte range. Extents passed to patchChunks are sorted and do not overlap; their
// buffers are never modified (callers may keep sharing them).
export interface Extent {
  offset: number;
  data: Buffer;
}

export interface PatchIo {
  // Verified bytes of an old chunk.
  read(cid: CID): Promise<Buffer>;
  // Stores a new chunk (never called for inline CIDs); durable only after the caller's flush.
  write(cid: CID, bytes: Buffer): Promise<void>;
}

export interface PatchInput {
  old: ChunkRef[];
  // Old bytes past `keep` are gone (a truncate happened): they read as zeros up to `size`.
  // Defaults to the old length.
  keep?: number;
  size: number;
  dirty: Extent[];
  scanner: CutScanner;
  // The chunker's maximum chunk size (bounds pieces and the resync search).
  maxChunk: number;
  io: PatchIo;
}

export interface PatchResult {
  refs: ChunkRef[];
  // New chunks produced (inline ones included), and their bytes.
  newChunks: number;
  newBytes: number;
  // Old bytes read back to re-cut regions.
  readBytes: number;
}

const RESYNC_SLACK = 2;
const STORES_IN_FLIGHT = 8;

export function refsLength(refs: ChunkRef[]): number {
  let n = 0;
  for (const [, len] of refs) n += len;
  return n;
}

// Largest i with sorted[i] <= x (sorted ascending, sorted[0] <= x).
function floorIndex(sorted: number[], x: number): number {
  let lo = 0;
  let hi = sorted.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (sorted[mid] <= x) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Merged, sorted [start, end) ranges whose bytes differ (or may differ) from the old content.
function changedRanges(dirty: Extent[], keep: number, oldSize: number, size: number, bounds: Set<number>): Array<[number, number]> {
  const raw: Array<[number, number]> = [];
  for (const e of dirty) {
    const s = e.offset;
    const end = Math.min(e.offset + e.data.length, size);
    if (end > s) raw.push([s, end]);
  }
  // A cut inside an old chunk: that chunk must be re-cut (its bytes before the cut are kept).
  const cut = Math.min(keep, size);
  if (cut < oldSize && cut > 0 && !bounds.has(cut)) raw.push([cut - 1, cut]);
  // Zeros past the kept bytes (a truncate that grew the file, or grew it back).
  if (size > cut) raw.push([cut, size]);
  raw.sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const r of raw) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export async function patchChunks(input: PatchInput): Promise<PatchResult> {
  const { old, dirty, scanner, maxChunk, io, size } = input;
  const bounds: number[] = [0];
  for (const [, len] of old) bounds.push(bounds[bounds.length - 1] + len);
  const oldSize = bounds[bounds.length - 1];
  const keep = Math.min(input.keep ?? oldSize, oldSize);
  const boundSet = new Set(bounds);
  const ranges = changedRanges(dirty, keep, oldSize, size, boundSet);
  const result: PatchResult = { refs: [], newChunks: 0, newBytes: 0, readBytes: 0 };
  const out = result.refs;
  const n = old.length;
  // Old chunks before `valid` are unaffected by anything (a shrink drops the ones past it).
  const validEnd = Math.min(keep, size);

  if (ranges.length === 0) {
    // Only a shrink onto an old boundary, or nothing at all.
    for (let i = 0; i < n && bounds[i + 1] <= validEnd; i++) out.push(old[i]);
    return result;
  }

  // Bytes of the new content: old bytes below `validEnd`, zeros above, dirty extents on top.
  let cachedIndex = -1;
  let cachedBytes: Buffer | undefined;
  const oldChunk = async (i: number): Promise<Buffer> => {
    if (i !== cachedIndex) {
      const bytes = await io.read(old[i][0]);
      if (bytes.length !== old[i][1]) throw new Error(`chunk ${old[i][0]} is ${bytes.length} bytes, the manifest says ${old[i][1]}`);
      cachedBytes = bytes;
      cachedIndex = i;
      result.readBytes += bytes.length;
    }
    return cachedBytes!;
  };
  let extentIndex = 0;
  // The piece of new content starting at `pos`, ending at the next old boundary (or maxChunk on).
  const piece = async (pos: number): Promise<Buffer> => {
    let end: number;
    let buf: Buffer;
    if (pos < validEnd) {
      const i = floorIndex(bounds, pos);
      end = Math.min(bounds[i + 1], validEnd);
      const bytes = await oldChunk(i);
      buf = Buffer.from(bytes.subarray(pos - bounds[i], end - bounds[i]));
    } else {
      end = Math.min(pos + maxChunk, size);
      // Stop at an old boundary too, so that resync can happen there.
      if (pos < oldSize) end = Math.min(end, bounds[floorIndex(bounds, pos) + 1]);
      buf = Buffer.alloc(end - pos);
    }
    while (extentIndex > 0 && dirty[extentIndex - 1].offset + dirty[extentIndex - 1].data.length > pos) extentIndex--;
    while (extentIndex < dirty.length && dirty[extentIndex].offset + dirty[extentIndex].data.length <= pos) extentIndex++;
    for (let k = extentIndex; k < dirty.length && dirty[k].offset < end; k++) {
      const e = dirty[k];
      const from = Math.max(e.offset, pos);
      const to = Math.min(e.offset + e.data.length, end);
      if (to > from) e.data.copy(buf, from - pos, from - e.offset, to - e.offset);
    }
    return buf;
  };

  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  const emit = async (bytes: Buffer): Promise<void> => {
    if (failure) throw failure;
    const cid = cidForChunk(bytes);
    out.push([cid, bytes.length]);
    result.newChunks++;
    result.newBytes += bytes.length;
    if (isInlineCid(cid)) return;
    const p = io.write(cid, bytes).catch((err) => {
      failure ??= err;
    });
    const tracked = p.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    if (inflight.size >= STORES_IN_FLIGHT) await Promise.race(inflight);
  };

  try {
    let next = 0; // next old chunk index not yet emitted or skipped
    let r = 0; // next changed range
    while (r < ranges.length) {
      const s = ranges[r][0];
      // Start at the old boundary at or before the change; an append re-cuts the old tail chunk
      // with it, so that small appends do not leave a trail of short chunks.
      let bi = floorIndex(bounds, Math.min(s, oldSize));
      if (bi === n && n > 0 && s >= oldSize) bi = n - 1;
      bi = Math.max(bi, next);
      for (let i = next; i < bi; i++) out.push(old[i]);
      let pos = bounds[bi];
      let chunkStart = pos;
      let regionEnd = ranges[r][1];
      r++;
      const state: ScanState = newScanState();
      let pending: Buffer[] = [];
      let resynced = false;
      while (pos < size) {
        const buf = await piece(pos);
        const bufStart = pos;
        let at = 0;
        while (at < buf.length) {
          const cut = scanner.scan(buf, at, state);
          if (cut < 0) {
            pending.push(buf.subarray(at));
            break;
          }
          const tail = buf.subarray(at, cut);
          await emit(pending.length === 0 ? tail : Buffer.concat([...pending, tail]));
          pending = [];
          at = cut;
          chunkStart = bufStart + cut;
          while (r < ranges.length && ranges[r][0] < chunkStart) regionEnd = Math.max(regionEnd, ranges[r++][1]);
          if (chunkStart >= regionEnd && chunkStart < validEnd && boundSet.has(chunkStart)) {
            resynced = true;
            break;
          }
        }
        if (resynced) break;
        pos = bufStart + buf.length;
        while (r < ranges.length && ranges[r][0] < pos) regionEnd = Math.max(regionEnd, ranges[r++][1]);
        // No natural resync within the slack: cut at this old boundary and reuse what follows.
        if (pos < validEnd && pos >= regionEnd + RESYNC_SLACK * maxChunk && boundSet.has(pos) && pos > chunkStart) {
          await emit(Buffer.concat(pending));
          pending = [];
          chunkStart = pos;
          resynced = true;
          break;
        }
      }
      if (!resynced) {
        if (pending.length > 0) await emit(Buffer.concat(pending));
        next = n;
        break;
      }
      next = floorIndex(bounds, chunkStart);
    }
    // The unchanged suffix, up to the new end.
    for (let i = next; i < n && bounds[i + 1] <= validEnd; i++) out.push(old[i]);
    await Promise.all(inflight);
    if (failure) throw failure;
  } catch (err) {
    await Promise.allSettled(inflight);
    throw err;
  }
  return result;
}

// A content-defined chunker fed in order (a file written front to back), that can hand out its
// unfinished tail at any point without ending the stream: the tail is stored as a chunk of its own
// when a version must be committed mid-stream (fsync), and later bytes continue the same scan, so
// the final chunking is the one a single pass over the whole content gives.
export class StreamChunker {
  private readonly scanner: CutScanner;
  private readonly state: ScanState = newScanState();
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(scanner: CutScanner) {
    this.scanner = scanner;
  }

  // Complete chunks cut from `buf` (and the tail before it). `buf` must not change afterwards.
  push(buf: Buffer): Buffer[] {
    const chunks: Buffer[] = [];
    let at = 0;
    while (at < buf.length) {
      const cut = this.scanner.scan(buf, at, this.state);
      if (cut < 0) {
        this.pending.push(buf.subarray(at));
        this.pendingBytes += buf.length - at;
        break;
      }
      const tail = buf.subarray(at, cut);
      chunks.push(this.pending.length === 0 ? tail : Buffer.concat([...this.pending, tail]));
      this.pending = [];
      this.pendingBytes = 0;
      at = cut;
    }
    return chunks;
  }

  get tailBytes(): number {
    return this.pendingBytes;
  }

  // The bytes pushed since the last cut (not consumed: later pushes still extend them).
  tail(): Buffer {
    if (this.pending.length > 1) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0] ?? Buffer.alloc(0);
  }
}

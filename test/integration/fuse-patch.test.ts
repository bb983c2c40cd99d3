// Chunk-level copy-on-write (src/segment/patch.ts), without a mount: patched chunk lists must
// hold exactly the new bytes, re-use every chunk away from a change, and for canonical (one-pass)
// inputs give the chunking a whole-file pass would.
import { describe, expect, it } from 'vitest';
import type { ChunkRef } from '../../src/core/chunk-manifest.ts';
import { scannerConfig, cutPoints, type ChunkerParams } from '../../src/core/chunker.ts';
import { cidForChunk, isInlineCid, inlineBytes, type CID } from '../../src/core/cid.ts';
import { cutScannerFor } from '../../src/native/cdc.ts';
import { patchChunks, StreamChunker, type Extent } from '../../src/segment/patch.ts';
import { prngBytes } from '../helpers/segment-util.ts';

// Chunks above the 4 KiB inline limit, so stores really happen; small enough for many chunks.
const PARAMS: ChunkerParams = { min: 8192, avg: 16384, max: 65536 };
const scanner = cutScannerFor(scannerConfig(PARAMS));

class MemStore {
  readonly chunks = new Map<string, Buffer>();
  writes = 0;
  reads = 0;
  io = {
    read: async (cid: CID): Promise<Buffer> => {
      this.reads++;
      if (isInlineCid(cid)) return Buffer.from(inlineBytes(cid));
      const b = this.chunks.get(cid.toString());
      if (!b) throw new Error(`missing ${cid}`);
      return b;
    },
    write: async (cid: CID, bytes: Buffer): Promise<void> => {
      this.writes++;
      this.chunks.set(cid.toString(), Buffer.from(bytes));
    },
  };

  ingest(data: Buffer): ChunkRef[] {
    const refs: ChunkRef[] = [];
    let start = 0;
    for (const cut of data.length === 0 ? [] : cutPoints(data, scanner)) {
      const bytes = data.subarray(start, cut);
      const cid = cidForChunk(bytes);
      if (!isInlineCid(cid)) this.chunks.set(cid.toString(), Buffer.from(bytes));
      refs.push([cid, bytes.length]);
      start = cut;
    }
    return refs;
  }

  async bytes(refs: ChunkRef[]): Promise<Buffer> {
    return Buffer.concat(await Promise.all(refs.map(([cid]) => this.io.read(cid))));
  }
}

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

function apply(base: Buffer, dirty: Extent[], keep: number, size: number): Buffer {
  const out = Buffer.alloc(size);
  base.copy(out, 0, 0, Math.min(keep, size, base.length));
  for (const e of dirty) if (e.offset < size) e.data.copy(out, e.offset, 0, Math.min(e.data.length, size - e.offset));
  return out;
}

const ids = (refs: ChunkRef[]) => refs.map(([c, n]) => `${c}:${n}`);

describe('patchChunks', () => {
  const base = prngBytes(7, 2 * 1024 * 1024 + 12345);

  it('a 1-byte write re-cuts one chunk and gives the one-pass chunking', async () => {
    const m = new MemStore();
    const old = m.ingest(base);
    for (const at of [0, 1, 100_000, base.length >> 1, base.length - 1]) {
      const dirty = [{ offset: at, data: Buffer.from([base[at] ^ 0xff]) }];
      m.writes = 0;
      const r = await patchChunks({ old, size: base.length, dirty, scanner, maxChunk: PARAMS.max, io: m.io });
      const want = apply(base, dirty, base.length, base.length);
      expect((await m.bytes(r.refs)).equals(want)).toBe(true);
      expect(ids(r.refs)).toEqual(ids(new MemStore().ingest(want)));
      expect(r.newChunks).toBeLessThanOrEqual(2);
      expect(r.readBytes).toBeLessThanOrEqual(3 * PARAMS.max);
      const changed = ids(r.refs).filter((id) => !ids(old).includes(id));
      expect(changed.length).toBeLessThanOrEqual(2);
    }
  });

  it('random writes, shrinks, grows and shrink-then-grow hold exactly the expected bytes', async () => {
    const next = rng(42);
    for (let round = 0; round < 40; round++) {
      const m = new MemStore();
      const size0 = Math.floor(next() * 600_000);
      const data = prngBytes(round, size0);
      const old = m.ingest(data);
      // Sorted, non-overlapping extents, some past the old end.
      const dirty: Extent[] = [];
      let at = Math.floor(next() * 50_000);
      const count = Math.floor(next() * 6);
      for (let i = 0; i < count; i++) {
        const len = 1 + Math.floor(next() * (next() < 0.3 ? 100_000 : 300));
        dirty.push({ offset: at, data: prngBytes(1000 + round * 10 + i, len) });
        at += len + Math.floor(next() * 200_000);
      }
      const shape = next();
      const keep = shape < 0.3 ? Math.floor(next() * size0) : size0;
      const end = dirty.length ? dirty[dirty.length - 1].offset + dirty[dirty.length - 1].data.length : 0;
      const size = shape < 0.15 ? keep : Math.max(end, shape < 0.5 ? Math.floor(next() * 800_000) : size0);
      const r = await patchChunks({ old, keep, size, dirty, scanner, maxChunk: PARAMS.max, io: m.io });
      const want = apply(data, dirty, keep, size);
      const got = await m.bytes(r.refs);
      expect(got.length).toBe(size);
      expect(got.equals(want), `round ${round}`).toBe(true);
      for (const [, len] of r.refs) expect(len).toBeLessThanOrEqual(PARAMS.max);
    }
  });

  it('appends re-cut the old tail, so repeated small appends end as the one-pass chunking', async () => {
    const m = new MemStore();
    const full = prngBytes(99, 400_000);
    let refs: ChunkRef[] = [];
    let size = 0;
    for (const step of [1, 5000, 70_000, 3, 100_000, 24_996, 200_000]) {
      const dirty = [{ offset: size, data: full.subarray(size, size + step) }];
      const r = await patchChunks({ old: refs, size: size + step, dirty, scanner, maxChunk: PARAMS.max, io: m.io });
      refs = r.refs;
      size += step;
    }
    expect(size).toBe(full.length);
    expect((await m.bytes(refs)).equals(full)).toBe(true);
    expect(ids(refs)).toEqual(ids(new MemStore().ingest(full)));
  });

  it('a shrink onto a chunk boundary re-uses every chunk before it; truncate to 0 gives no chunks', async () => {
    const m = new MemStore();
    const old = m.ingest(base);
    const cut = old.slice(0, 10).reduce((n, [, len]) => n + len, 0);
    m.writes = 0;
    const r = await patchChunks({ old, size: cut, dirty: [], scanner, maxChunk: PARAMS.max, io: m.io });
    expect(ids(r.refs)).toEqual(ids(old.slice(0, 10)));
    expect(m.writes).toBe(0);
    expect((await patchChunks({ old, size: 0, dirty: [], scanner, maxChunk: PARAMS.max, io: m.io })).refs).toEqual([]);
  });

  it('resyncs within a bounded distance on non-canonical chunk lists', async () => {
    // Chunk lists cut at arbitrary places (like multipart parts): every chunk 10,000 bytes.
    const m = new MemStore();
    const old: ChunkRef[] = [];
    for (let i = 0; i < base.length; i += 10_000) {
      const bytes = base.subarray(i, i + 10_000);
      const cid = cidForChunk(bytes);
      m.chunks.set(cid.toString(), Buffer.from(bytes));
      old.push([cid, bytes.length]);
    }
    const dirty = [{ offset: 500_000, data: Buffer.from('x') }];
    const r = await patchChunks({ old, size: base.length, dirty, scanner, maxChunk: PARAMS.max, io: m.io });
    expect((await m.bytes(r.refs)).equals(apply(base, dirty, base.length, base.length))).toBe(true);
    expect(r.readBytes).toBeLessThanOrEqual(4 * PARAMS.max);
    const kept = new Set(ids(old));
    // At most the slack (2 max chunks past the change) of new chunks of at least `min` bytes.
    expect(ids(r.refs).filter((id) => !kept.has(id)).length).toBeLessThanOrEqual((3 * PARAMS.max) / PARAMS.min + 1);
  });

  it('fails cleanly when a chunk cannot be read, and stores nothing after', async () => {
    const m = new MemStore();
    const old = m.ingest(base);
    const io = { ...m.io, read: async () => { throw new Error('disk on fire'); } };
    await expect(patchChunks({ old, size: base.length, dirty: [{ offset: 5, data: Buffer.from('y') }], scanner, maxChunk: PARAMS.max, io }))
      .rejects.toThrow('disk on fire');
  });
});

describe('StreamChunker', () => {
  it('cuts like one pass whatever the write sizes, and its tail can be taken mid-stream', () => {
    const data = prngBytes(5, 1_500_000);
    const want = cutPoints(data, scanner);
    const next = rng(3);
    const c = new StreamChunker(scanner);
    const cuts: number[] = [];
    let pos = 0;
    let emitted = 0;
    while (pos < data.length) {
      const len = Math.min(1 + Math.floor(next() * 70_000), data.length - pos);
      for (const chunk of c.push(data.subarray(pos, pos + len))) {
        emitted += chunk.length;
        cuts.push(emitted);
      }
      pos += len;
      expect(emitted + c.tailBytes).toBe(pos);
      expect(c.tail().equals(data.subarray(emitted, pos))).toBe(true);
    }
    if (c.tailBytes > 0) cuts.push(emitted + c.tailBytes);
    expect(cuts).toEqual(want);
  });
});

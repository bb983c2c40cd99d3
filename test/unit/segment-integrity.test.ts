import { existsSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allCids, type ChunkRef } from '../../src/core/chunk-manifest.ts';
import { isInlineCid, verifyChunk, type CID } from '../../src/core/cid.ts';
import { isStitchError } from '../../src/core/errors.ts';
import type { ChunkSource } from '../../src/segment/chunk-source.ts';
import type { ByteRange, Segment } from '../../src/segment/segment.ts';
import {
  MID_CHUNKER, MiB, openTempSegment, prngBytes, readAll, sha256, type TempSegment,
} from '../helpers/segment-util.ts';

// Every read is verified: a damaged chunk is an error (ChunkUnavailable) or is recovered from the
// chunk source, and never reaches a reader as wrong bytes. Scrub finds what is damaged.

function chunkPath(dataDir: string, cid: string): string {
  return join(dataDir, 'chunks', cid.slice(-2), cid);
}

function flipByte(path: string, at: number): void {
  const bytes = readFileSync(path);
  bytes[at % bytes.length] ^= 0x40;
  writeFileSync(path, bytes);
}

// Reads a body to the end; returns what arrived before an error, and the error.
async function drain(body: AsyncIterable<Buffer>): Promise<{ bytes: Buffer; err?: unknown }> {
  const parts: Buffer[] = [];
  try {
    for await (const b of body) parts.push(Buffer.from(b));
    return { bytes: Buffer.concat(parts) };
  } catch (err) {
    return { bytes: Buffer.concat(parts), err };
  }
}

interface Located {
  cid: string;
  offset: number;
  bytes: Buffer;
}

async function locate(seg: Segment, bucket: string, key: string, data: Buffer): Promise<Located[]> {
  const v = await seg.head(bucket, key);
  const { chunks } = await allCids(v.content, (cid) => seg.readBlock(cid, { bucket, key, vid: v.versionId }));
  let offset = 0;
  return chunks.map(([cid, len]: ChunkRef) => {
    const l = { cid: cid.toString(), offset, bytes: data.subarray(offset, offset + len), inline: isInlineCid(cid) };
    offset += len;
    return l;
  }).filter((l) => !l.inline);
}

describe('segment integrity: corrupt and missing chunks', () => {
  let t: TempSegment;
  let seg: Segment;
  const data = prngBytes(71, 4 * MiB + 1234);
  let chunks: Located[];
  const good = new Map<string, Buffer>();

  beforeAll(async () => {
    t = await openTempSegment({ memory: true });
    seg = t.seg;
    seg.createBucket('integ');
    await seg.put('integ', 'obj', data);
    await seg.put('integ', 'same-content', data);
    chunks = await locate(seg, 'integ', 'obj', data);
    for (const c of chunks) good.set(c.cid, Buffer.from(c.bytes));
  });
  afterAll(async () => {
    await t.cleanup();
  });

  async function expectUnavailable(key: string, range?: ByteRange) {
    const r = await seg.get('integ', key, { range });
    const { bytes, err } = await drain(r.body);
    expect(isStitchError(err, 'ChunkUnavailable'), String(err)).toBe(true);
    // Whatever arrived before the error is exactly the object's bytes.
    expect(bytes.equals(data.subarray(r.start, r.start + bytes.length))).toBe(true);
    return bytes.length;
  }

  async function expectReadable(key: string, range?: ByteRange) {
    const r = await seg.get('integ', key, { range });
    const bytes = await readAll(r.body);
    expect(bytes.equals(data.subarray(r.start, r.end))).toBe(true);
  }

  it('the object is made of several stored chunks, shared by both keys', () => {
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) expect(existsSync(chunkPath(t.dir, c.cid))).toBe(true);
  });

  it('a flipped byte is ChunkUnavailable (never wrong bytes) and scrub reports it corrupt', async () => {
    const victim = chunks[3];
    flipByte(chunkPath(t.dir, victim.cid), 12345);
    const before = seg.reader.counters.corrupt;
    const got = await expectUnavailable('obj');
    expect(got).toBeLessThanOrEqual(victim.offset);
    await expectUnavailable('same-content');
    expect(seg.reader.counters.corrupt).toBeGreaterThan(before);
    // Ranges that do not touch the chunk still read; ones that do fail.
    await expectReadable('obj', { start: 0, end: victim.offset });
    await expectReadable('obj', { start: victim.offset + victim.bytes.length });
    await expectUnavailable('obj', { start: victim.offset + 10, end: victim.offset + 11 });

    const report = await seg.scrub();
    expect(report.corrupt).toEqual([victim.cid]);
    expect(report.missing).toEqual([]);
    expect(report.checked).toBe(chunks.length);
  });

  it('a deleted chunk file is ChunkUnavailable and scrub reports it missing', async () => {
    const victim = chunks[chunks.length - 1];
    unlinkSync(chunkPath(t.dir, victim.cid));
    await expectUnavailable('obj', { start: victim.offset });
    const report = await seg.scrub();
    expect(report.missing).toEqual([victim.cid]);
    expect(report.corrupt).toEqual([chunks[3].cid]);
  });

  it('a chunk source returning wrong bytes is refused and nothing is rewritten', async () => {
    const asked: string[] = [];
    const liar: ChunkSource = {
      async fetch(cid: CID) {
        asked.push(cid.toString());
        const real = good.get(cid.toString())!;
        const fake = Buffer.from(real);
        fake[0] ^= 1;
        return fake;
      },
    };
    seg.chunkSource = liar;
    try {
      await expectUnavailable('obj');
      await expectUnavailable('obj', { start: chunks[chunks.length - 1].offset });
      expect(asked).toContain(chunks[3].cid);
      expect(asked).toContain(chunks[chunks.length - 1].cid);
      const report = await seg.scrub({ repair: true });
      expect(report.repaired).toEqual([]);
      expect(report.corrupt).toEqual([chunks[3].cid]);
      expect(report.missing).toEqual([chunks[chunks.length - 1].cid]);
      expect(existsSync(chunkPath(t.dir, chunks[chunks.length - 1].cid))).toBe(false);
    } finally {
      seg.chunkSource = undefined;
    }
    // A source that has nothing is the same as none.
    seg.chunkSource = { fetch: async () => undefined };
    await expectUnavailable('obj');
    seg.chunkSource = undefined;
  });

  it('a chunk source with good bytes makes the read succeed and rewrites the files', async () => {
    const asked: string[] = [];
    seg.chunkSource = {
      async fetch(cid: CID) {
        asked.push(cid.toString());
        return good.get(cid.toString());
      },
    };
    const recovered = seg.reader.counters.recovered;
    try {
      await expectReadable('obj');
      expect(new Set(asked)).toEqual(new Set([chunks[3].cid, chunks[chunks.length - 1].cid]));
      expect(seg.reader.counters.recovered - recovered).toBe(asked.length);
    } finally {
      seg.chunkSource = undefined;
    }
    for (const c of [chunks[3], chunks[chunks.length - 1]]) {
      expect(readFileSync(chunkPath(t.dir, c.cid)).equals(c.bytes)).toBe(true);
    }
    const report = await seg.scrub();
    expect(report.corrupt).toEqual([]);
    expect(report.missing).toEqual([]);
    // Now local again: readable without any source.
    await expectReadable('obj');
    await expectReadable('same-content');
  });

  it('scrub --repair fixes damaged chunks from the source', async () => {
    flipByte(chunkPath(t.dir, chunks[0].cid), 0);
    unlinkSync(chunkPath(t.dir, chunks[1].cid));
    seg.chunkSource = { fetch: async (cid: CID) => good.get(cid.toString()) };
    try {
      const report = await seg.scrub({ repair: true });
      expect(new Set(report.repaired)).toEqual(new Set([chunks[0].cid, chunks[1].cid]));
      expect(report.corrupt).toEqual([chunks[0].cid]);
      expect(report.missing).toEqual([chunks[1].cid]);
    } finally {
      seg.chunkSource = undefined;
    }
    const after = await seg.scrub();
    expect(after.corrupt.length + after.missing.length).toBe(0);
    expect(after.bytes).toBe(chunks.reduce((n, c) => n + c.bytes.length, 0));
    await expectReadable('obj');
  });
});

describe('segment integrity: tree manifest blocks', () => {
  it('a corrupt tree block is ChunkUnavailable, reported by scrub, and recoverable', async () => {
    const t: TempSegment = await openTempSegment({ chunker: MID_CHUNKER, memory: true });
    try {
      const seg = t.seg;
      seg.createBucket('tree');
      const data = prngBytes(72, 12 * MiB);
      const v = await seg.put('tree', 'obj', data);
      expect('tree' in v.content).toBe(true);
      if (!('tree' in v.content)) throw new Error('unreachable');
      const root = v.content.tree.toString();
      const path = chunkPath(t.dir, root);
      const original = readFileSync(path);
      expect(verifyChunk(v.content.tree, original)).toBe(true);
      flipByte(path, 100);

      const r = await seg.get('tree', 'obj').then((g) => drain(g.body), (err) => ({ bytes: Buffer.alloc(0), err }));
      expect(isStitchError(r.err, 'ChunkUnavailable'), String(r.err)).toBe(true);
      expect(r.bytes.length).toBe(0);
      expect((await seg.scrub()).corrupt).toEqual([root]);

      seg.chunkSource = { fetch: async (cid: CID) => (cid.toString() === root ? original : undefined) };
      const back = await readAll((await seg.get('tree', 'obj')).body);
      expect(sha256(back)).toBe(sha256(data));
      seg.chunkSource = undefined;
      expect(readFileSync(path).equals(original)).toBe(true);
      expect((await seg.scrub()).corrupt).toEqual([]);
    } finally {
      await t.cleanup();
    }
  });
});

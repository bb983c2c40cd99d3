// Shared helpers of the core store tests: temp segments, seeded fast data, digests, error checks.
import { createCipheriv, createHash } from 'node:crypto';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ChunkerParams } from '../../src/core/chunker.ts';
import { isStitchError, type ErrorCode } from '../../src/core/errors.ts';
import { Segment } from '../../src/segment/segment.ts';

export const KiB = 1024;
export const MiB = 1024 * 1024;

// Small chunker sizes: many chunks from little data. Every chunk of these is <= 4 KiB, so inline
// (identity CIDs inside the manifest, no chunk files).
export const SMALL_CHUNKER: ChunkerParams = { min: 256, avg: 1024, max: 4096 };
// The smallest sizes whose chunks are all stored as files (every chunk but the last > 4 KiB):
// chunk boundaries and tree manifests (> INLINE_MAX_ENTRIES chunks) from tens of MiB.
export const MID_CHUNKER: ChunkerParams = { min: 4096, avg: 8192, max: 16384 };

// `memory`: on tmpfs when there is one. For tests about many small chunks rather than durability:
// every chunk file is fsync'd, which costs ms per chunk on a real disk and nothing on tmpfs.
export function tempDir(label = 'seg', memory = false): string {
  let base = tmpdir();
  if (memory) {
    try {
      accessSync('/dev/shm', constants.W_OK);
      base = '/dev/shm';
    } catch {
      // No tmpfs: the disk is slower, not wrong.
    }
  }
  return mkdtempSync(join(base, `stitch-${label}-`));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface TempSegment {
  seg: Segment;
  dir: string;
  // Closes (if still open) and removes the data dir.
  cleanup(): Promise<void>;
}

export async function openTempSegment(
  opts: { chunker?: ChunkerParams; name?: string; memory?: boolean } = {},
): Promise<TempSegment> {
  const { memory, ...rest } = opts;
  const dir = tempDir('seg', memory);
  const seg = await Segment.open({ dataDir: dir, ...rest });
  let closed = false;
  const close = seg.close.bind(seg);
  seg.close = async () => {
    if (closed) return;
    closed = true;
    await close();
  };
  return {
    seg,
    dir,
    async cleanup() {
      await seg.close();
      removeDir(dir);
    },
  };
}

// Seeded pseudo-random bytes from AES-128-CTR (AES-NI: GB/s, far faster than a JS PRNG). Same
// (seed, offset) -> same bytes, so content can be regenerated for comparison instead of kept.
function keystream(seed: number) {
  const key = createHash('sha256').update(`stitch test seed ${seed}`).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
}

export function prngBytes(seed: number, n: number): Buffer {
  return keystream(seed).update(Buffer.alloc(n));
}

// Bytes [start, end) of prngStream(seed, ...) without generating what comes before: CTR mode
// lets the counter start at any 16-byte block.
export function prngSlice(seed: number, start: number, end: number): Buffer {
  const key = createHash('sha256').update(`stitch test seed ${seed}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(start / 16)), 8);
  const skip = start % 16;
  const out = createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(skip + end - start));
  return out.subarray(skip);
}

// `size` seeded bytes, streamed in pieces of `piece` bytes (each a fresh buffer).
export async function* prngStream(seed: number, size: number, piece = MiB): AsyncGenerator<Buffer> {
  const cipher = keystream(seed);
  const zeros = Buffer.alloc(Math.min(piece, Math.max(size, 1)));
  for (let left = size; left > 0; left -= piece) {
    const n = Math.min(piece, left);
    yield cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n));
  }
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

export async function streamDigest(body: AsyncIterable<Uint8Array>): Promise<{ sha256: string; md5: string; size: number }> {
  const s = createHash('sha256');
  const m = createHash('md5');
  let size = 0;
  for await (const b of body) {
    s.update(b);
    m.update(b);
    size += b.length;
  }
  return { sha256: s.digest('hex'), md5: m.digest('hex'), size };
}

export async function readAll(body: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const b of body) parts.push(Buffer.from(b));
  return Buffer.concat(parts);
}

// Full body of a key (or a version) as one buffer.
export async function getBytes(seg: Segment, bucket: string, key: string, opts: Parameters<Segment['get']>[2] = {}): Promise<Buffer> {
  const r = await seg.get(bucket, key, opts);
  return readAll(r.body);
}

// Asserts that `fn` fails (sync throw or rejection) with a StitchError of `code`; returns it.
export async function expectCode(fn: () => unknown, code: ErrorCode): Promise<Error> {
  let err: unknown;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  expect(err, `expected StitchError ${code}, got success`).toBeDefined();
  expect(isStitchError(err) ? err.code : String(err)).toBe(code);
  return err as Error;
}

// Everything a client can observe of a segment's namespace, for "and nothing changed" checks.
export function observable(seg: Segment): unknown {
  const buckets = seg.listBuckets();
  const out: Record<string, unknown> = {
    buckets: buckets.map((b) => ({ ...b })),
    stats: seg.stats(),
    // The change log: what would be gossiped to other segments.
    changeLog: seg.meta.sequenceVector(),
  };
  for (const b of buckets) {
    const versions: unknown[] = [];
    let after: string | undefined;
    let afterVersion: string | undefined;
    for (;;) {
      const page = seg.versions(b.name, { after, afterVersion, limit: 1000 });
      versions.push(...page.items);
      if (!page.truncated) break;
      after = page.next;
      afterVersion = page.nextVersion;
    }
    out[`versions:${b.name}`] = versions;
    out[`uploads:${b.name}`] = seg.uploads.list(b.name);
  }
  return out;
}

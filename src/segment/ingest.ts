import { cidForChunk, INLINE_CHUNK_BYTES } from '../core/cid.ts';
import { chunkPieces, type ChunkPieces, type CutScanner } from '../core/chunker.ts';
import type { ChunkRef } from '../core/chunk-manifest.ts';
import type { ChunkStore } from '../store/chunk-store.ts';
import type { LocalChunk } from '../store/meta-store.ts';
import type { ChunkGuard } from './chunk-guard.ts';
import { StreamMd5 } from './md5-offload.ts';

// Chunk writes in flight per put: enough to keep the disk and the thread pool busy while the next
// chunk is hashed, few enough that a put holds at most this many chunks (<= 8 MiB) in memory.
const WRITES_IN_FLIGHT = 8;

export interface Ingested {
  refs: ChunkRef[];
  // The chunks stored as files (inline ones live in the manifest only).
  chunks: LocalChunk[];
  size: number;
  md5: Buffer;
  // Bytes that were new to this segment (not deduplicated).
  newBytes: number;
}

// Bytes -> content-defined chunks -> sha2-256 CIDs -> chunk store, with the MD5 of the whole
// content (the S3 ETag) computed in the same pass. Every CID is registered with the guard before
// the store is asked whether it has it, so GC cannot remove a chunk this put is about to reuse.
// Nothing is durable until the caller flushes the store.
export async function ingest(
  body: AsyncIterable<Uint8Array>,
  store: ChunkStore,
  scanner: CutScanner,
  guard: ChunkGuard,
  isPresent: (cid: string) => boolean,
  onProgress?: (bytes: number) => void,
): Promise<Ingested> {
  const md5 = new StreamMd5();
  const refs: ChunkRef[] = [];
  const chunks: LocalChunk[] = [];
  const inflight = new Set<Promise<void>>();
  let failure: unknown;
  let size = 0;
  let newBytes = 0;
  // Hashes a chunk, records it, and starts its write unless the segment already holds it.
  const take = async (chunk: ChunkPieces): Promise<void> => {
    const cid = cidForChunk(chunk.pieces, { inline: false });
    refs.push([cid, chunk.length]);
    size += chunk.length;
    onProgress?.(size);
    const name = cid.toString();
    guard.hold(name);
    chunks.push({ cid: name, size: chunk.length });
    // Dedup: the metadata store knows every committed local chunk, far cheaper than a stat.
    // A file left by a put that crashed before committing is simply written again.
    if (isPresent(name)) return;
    newBytes += chunk.length;
    const write = store.put(cid, chunk.pieces).catch((err) => {
      failure ??= err;
    });
    const tracked = write.finally(() => inflight.delete(tracked));
    inflight.add(tracked);
    if (inflight.size >= WRITES_IN_FLIGHT) await Promise.race(inflight);
  };
  try {
    // Only a whole object of at most INLINE_CHUNK_BYTES is inlined: with small chunker sizes every
    // chunk would qualify, and manifests would swell into data blocks. So a small first chunk
    // waits to see whether another follows.
    let held: ChunkPieces | undefined;
    for await (const chunk of chunkPieces(body, scanner)) {
      if (failure) throw failure;
      for (const p of chunk.pieces) await md5.update(p);
      if (refs.length === 0 && held === undefined && chunk.length <= INLINE_CHUNK_BYTES) {
        held = chunk;
        continue;
      }
      if (held) await take(held);
      held = undefined;
      await take(chunk);
    }
    if (held) {
      refs.push([cidForChunk(held.pieces), held.length]);
      size += held.length;
    }
    await Promise.all(inflight);
    if (failure) throw failure;
  } catch (err) {
    await Promise.allSettled(inflight);
    md5.drop();
    guard.release(chunks.map((c) => c.cid));
    throw err;
  }
  return { refs, chunks, size, md5: await md5.digest(), newBytes };
}

import type { CID } from 'multiformats/cid';
import { inlineBytes, isInlineCid, verifyChunkAsync } from '../core/cid.ts';
import { StitchError } from '../core/errors.ts';
import { chunksInRange, type ContentRef } from '../core/chunk-manifest.ts';
import type { ChunkStore } from '../store/chunk-store.ts';
import type { MetaStore } from '../store/meta-store.ts';
import type { ChunkSource } from './chunk-source.ts';

// Chunks fetched ahead of the one being streamed: hides disk latency on sequential reads while
// holding at most this many chunks (<= 4 MiB at the 1 MiB max) per reader.
const READ_AHEAD = 4;
// When the content is (partly) remote the window must cover the WAN's bandwidth-delay product:
// 16 chunks of ~256 KiB keep a 50 Mbit/s link with a 300 ms round trip busy (4 did 20% of it).
const REMOTE_READ_AHEAD = 16;
// Chunks read ahead across all readers of the segment (~16 MiB at the 256 KiB average): with many
// concurrent downloads each gets a share, so memory stays bounded however many clients come.
const READ_AHEAD_BUDGET = 64;

export interface ReadContext {
  bucket: string;
  key: string;
  vid: string;
}

export interface ReaderCounters {
  recovered: number;
  corrupt: number;
  missing: number;
}

// Reads chunks and hands out only bytes that hash to their CID. A local chunk that is missing or
// wrong is asked of the chunk source (another segment), verified, and written back locally, so the
// reader sees a slower read rather than an error; without a source it is a ChunkUnavailable error.
export class ChunkReader {
  source: ChunkSource | undefined;
  readonly counters: ReaderCounters = { recovered: 0, corrupt: 0, missing: 0 };
  private readonly store: ChunkStore;
  private readonly meta: MetaStore;
  private readonly writable: boolean;
  private activeRanges = 0;

  constructor(store: ChunkStore, meta: MetaStore, writable: boolean) {
    this.store = store;
    this.meta = meta;
    this.writable = writable;
  }

  async read(cid: CID, ctx: ReadContext): Promise<Buffer> {
    if (isInlineCid(cid)) {
      const bytes = inlineBytes(cid);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    }
    const local = await this.store.get(cid);
    if (local && (await verifyChunkAsync(cid, local))) return local;
    if (local) this.counters.corrupt++;
    else this.counters.missing++;
    const fetched = await this.source?.fetch(cid, ctx);
    if (fetched && (await verifyChunkAsync(cid, fetched))) {
      const bytes = Buffer.from(fetched.buffer, fetched.byteOffset, fetched.byteLength);
      if (this.writable) {
        await this.store.rewrite(cid, bytes);
        this.meta.addLocalChunks([{ cid: cid.toString(), size: bytes.length }]);
      }
      this.counters.recovered++;
      return bytes;
    }
    throw new StitchError(
      'ChunkUnavailable',
      `chunk ${cid} of ${ctx.bucket}/${ctx.key} is ${local ? 'corrupt' : 'missing'} and no source has it`,
    );
  }

  // The bytes [start, end) of a content, in order, with READ_AHEAD chunks fetched in parallel.
  async *range(content: ContentRef, start: number, end: number, ctx: ReadContext): AsyncGenerator<Buffer> {
    const load = (cid: CID) => this.read(cid, ctx);
    const wanted = this.source && this.meta.missingChunks(ctx.vid).length > 0 ? REMOTE_READ_AHEAD : READ_AHEAD;
    this.activeRanges++;
    const window = () => Math.max(1, Math.min(wanted, Math.floor(READ_AHEAD_BUDGET / this.activeRanges)));
    const located = chunksInRange(content, start, end, load);
    const queue: { offset: number; length: number; bytes: Promise<Buffer> }[] = [];
    let exhausted = false;
    const fill = async () => {
      while (!exhausted && queue.length < window()) {
        const next = await located.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const { cid, offset, length } = next.value;
        const bytes = this.read(cid, ctx);
        bytes.catch(() => {}); // surfaced when its turn comes
        queue.push({ offset, length, bytes });
      }
    };
    try {
      await fill();
      while (queue.length > 0) {
        const head = queue.shift()!;
        const bytes = await head.bytes;
        await fill();
        const from = Math.max(start - head.offset, 0);
        const to = Math.min(end - head.offset, head.length);
        yield from === 0 && to === bytes.length ? bytes : bytes.subarray(from, to);
      }
    } finally {
      this.activeRanges--;
      await Promise.allSettled(queue.map((q) => q.bytes));
    }
  }
}

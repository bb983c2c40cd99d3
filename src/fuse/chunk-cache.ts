// Read side of the mount: where a byte range of a content lives (ContentMap) and a shared cache
// of verified chunks. Chunks are named by their hash, so a cached chunk can never be stale: the
// cache needs no invalidation, only a size bound.
import type { CID } from 'multiformats/cid';
import { decodeNode, type ChunkRef, type ContentRef } from '../core/chunk-manifest.ts';

export type ChunkLoader = (cid: CID) => Promise<Buffer>;

export class ChunkCache {
  private readonly maxBytes: number;
  private readonly entries = new Map<string, Buffer>();
  private readonly loading = new Map<string, Promise<Buffer>>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  // The chunk's bytes, loading (once, however many ask at the same time) when not cached.
  get(cid: CID, load: ChunkLoader): Promise<Buffer> {
    const key = cid.toString();
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      // Map order is the LRU order: move to the young end.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return Promise.resolve(hit);
    }
    const inflight = this.loading.get(key);
    if (inflight) return inflight;
    this.misses++;
    const p = load(cid).then(
      (bytes) => {
        this.loading.delete(key);
        this.put(key, bytes);
        return bytes;
      },
      (err: unknown) => {
        this.loading.delete(key);
        throw err;
      },
    );
    this.loading.set(key, p);
    return p;
  }

  // Bytes already known to hash to `key` (written by this process).
  put(key: string, bytes: Buffer): void {
    if (bytes.length > this.maxBytes / 4 || this.entries.has(key)) return;
    this.entries.set(key, bytes);
    this.bytes += bytes.length;
    for (const [k, b] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(k);
      this.bytes -= b.length;
    }
  }
}

export interface Located {
  cid: CID;
  offset: number;
  length: number;
}

interface Level {
  refs: ChunkRef[];
  ends: number[]; // end offset (relative to the node) of each entry
  leaf: boolean;
}

function levelOf(refs: ChunkRef[], leaf: boolean): Level {
  const ends: number[] = new Array(refs.length);
  let n = 0;
  for (let i = 0; i < refs.length; i++) ends[i] = n += refs[i][1];
  return { refs, ends, leaf };
}

// First index whose end is past `x`.
function firstEndAfter(ends: number[], x: number): number {
  let lo = 0;
  let hi = ends.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ends[mid] > x) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// The chunks of one content (inline list or tree), located by binary search; tree nodes are
// decoded once and kept for the life of the map (one open file).
export class ContentMap {
  readonly content: ContentRef;
  private readonly loadBlock: ChunkLoader;
  private root: Level | undefined;
  private readonly nodes = new Map<string, Level>();

  constructor(content: ContentRef, loadBlock: ChunkLoader) {
    this.content = content;
    this.loadBlock = loadBlock;
    if ('chunks' in content) this.root = levelOf(content.chunks, true);
  }

  private async node(cid: CID): Promise<Level> {
    const key = cid.toString();
    let level = this.nodes.get(key);
    if (!level) {
      const node = decodeNode(await this.loadBlock(cid));
      level = 'leaf' in node ? levelOf(node.leaf, true) : levelOf(node.children, false);
      // A bound on what one open file keeps decoded (each leaf covers ~1 GiB at the default sizes).
      if (this.nodes.size >= 64) this.nodes.delete(this.nodes.keys().next().value!);
      this.nodes.set(key, level);
    }
    return level;
  }

  async locate(start: number, end: number): Promise<Located[]> {
    const out: Located[] = [];
    if (end <= start) return out;
    if (!this.root) this.root = await this.node((this.content as { tree: CID }).tree);
    await this.walk(this.root, 0, start, end, out);
    return out;
  }

  private async walk(level: Level, base: number, start: number, end: number, out: Located[]): Promise<void> {
    for (let i = firstEndAfter(level.ends, start - base); i < level.refs.length; i++) {
      const offset = base + (i === 0 ? 0 : level.ends[i - 1]);
      if (offset >= end) return;
      const [cid, length] = level.refs[i];
      if (level.leaf) out.push({ cid, offset, length });
      else await this.walk(await this.node(cid), offset, start, end, out);
    }
  }
}

// Bytes [start, end) of a content: the located chunks, loaded in parallel, cut and joined.
export async function readRange(map: ContentMap, start: number, end: number, chunk: (cid: CID) => Promise<Buffer>): Promise<Buffer> {
  if (end <= start) return Buffer.alloc(0);
  const located = await map.locate(start, end);
  const bufs = await Promise.all(located.map((l) => chunk(l.cid)));
  if (located.length === 1) {
    const l = located[0];
    return bufs[0].subarray(start - l.offset, end - l.offset);
  }
  const out = Buffer.allocUnsafe(end - start);
  let filled = 0;
  located.forEach((l, i) => {
    const from = Math.max(start - l.offset, 0);
    const to = Math.min(end - l.offset, l.length);
    bufs[i].copy(out, filled, from, to);
    filled += to - from;
  });
  if (filled !== out.length) throw new Error(`content map covers ${filled} of ${out.length} bytes`);
  return out;
}

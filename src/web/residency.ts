// Where a version's data lives, from this segment's point of view, computed from metadata and
// local presence only: nothing here ever asks a peer for a byte. (The segment's reader would
// fetch a missing manifest-tree block from a peer; this module reads tree blocks straight from the
// local store and calls whatever is not here "unknown" instead.)
//
//   local          every chunk is here: reads never touch the WAN
//   partial        some chunks are here (read ranges, or an interrupted pin)
//   metadata-only  no chunk is here: the name index knows the version, the data is elsewhere
//   none           a delete marker: there is no data
//
// Inline chunks (tiny ones carried in the manifest itself) count as local. For a version with a
// manifest tree, chunks under a tree block that is not held here are counted as `unknownBytes`
// (they cannot be listed without fetching that block); a tree whose root block is not here is
// metadata-only, since reading it needs the WAN first.
import type { CID } from 'multiformats/cid';
import { isInlineCid, verifyChunk } from '../core/cid.ts';
import { decodeNode, type ChunkRef } from '../core/chunk-manifest.ts';
import { decodeVersion } from '../core/version-manifest.ts';
import type { Segment } from '../segment/segment.ts';
import type { VersionRecord } from '../store/meta-store.ts';

export type ResidencyState = 'local' | 'partial' | 'metadata-only' | 'none';

export interface ChunkCell {
  // Fractions of the cell's bytes that are here, and that cannot be known without a fetch.
  local: number;
  unknown: number;
}

export interface ChunkInfo {
  cid: string;
  offset: number;
  length: number;
  // true: here; false: elsewhere; null: unknown (under a tree block not held here, or not checked)
  local: boolean | null;
}

export interface Residency {
  state: ResidencyState;
  size: number;
  localBytes: number;
  unknownBytes: number;
  // Chunks known (listed by the manifest or by tree blocks held here), and how many are here.
  chunks: number;
  localChunks: number;
  manifest: 'inline' | 'tree';
  // False when part of the answer is unknown (tree blocks not held here, check budget spent).
  exact: boolean;
  // Byte-proportional map of the object in `cells` equal cells (only when asked for).
  map?: ChunkCell[];
  // The first chunks in order (only when asked for).
  chunkList?: ChunkInfo[];
}

export interface ResidencyOptions {
  // Cells of the chunk map (0: no map).
  cells?: number;
  // Chunks listed individually (0: none).
  list?: number;
  // Presence checks against the chunk store allowed (tree manifests of other origins, whose
  // leaves the reference table does not list); past it, chunks count as unknown.
  maxChecks?: number;
  // Tree blocks read from the local store, at most.
  maxBlocks?: number;
}

const CHECK_CONCURRENCY = 64;

export async function residencyOf(segment: Segment, rec: VersionRecord, o: ResidencyOptions = {}): Promise<Residency> {
  const cells = Math.max(0, Math.min(o.cells ?? 0, 4096));
  const listMax = Math.max(0, Math.min(o.list ?? 0, 10_000));
  const size = rec.size;
  const { manifest } = decodeVersion(rec.manifest);
  const content = manifest.content;
  const kind: 'inline' | 'tree' = 'chunks' in content ? 'inline' : 'tree';
  const out: Residency = { state: 'none', size, localBytes: 0, unknownBytes: 0, chunks: 0, localChunks: 0, manifest: kind, exact: true };
  if (rec.deleted) return out;
  const map = cells > 0 && size > 0 ? new CellMap(size, cells) : undefined;
  const list: ChunkInfo[] = [];
  // Chunks referenced by the version and not held here, from the reference table: complete for
  // inline lists and for this segment's own versions; for a tree from elsewhere it names the root.
  const missing = new Set(segment.meta.missingChunks(rec.vid));
  const note = (cid: CID | undefined, offset: number, length: number, local: boolean | null) => {
    if (local === true) {
      out.localBytes += length;
      out.localChunks++;
    } else if (local === null) out.unknownBytes += length;
    if (cid) out.chunks++;
    map?.add(offset, length, local);
    if (cid && list.length < listMax) list.push({ cid: cid.toString(), offset, length, local });
  };

  if ('chunks' in content) {
    let offset = 0;
    for (const [cid, length] of content.chunks) {
      note(cid, offset, length, isInlineCid(cid) || !missing.has(cid.toString()));
      offset += length;
    }
  } else {
    // Leaves of another origin's tree are not in the reference table: asked of the store.
    const refsComplete = rec.origin === segment.name;
    let checks = o.maxChecks ?? 100_000;
    let blocks = o.maxBlocks ?? 4096;
    const leaves = async (refs: ChunkRef[], base: number) => {
      const located = [];
      let offset = base;
      for (const [cid, length] of refs) {
        located.push({ cid, offset, length });
        offset += length;
      }
      for (let i = 0; i < located.length; i += CHECK_CONCURRENCY) {
        const batch = located.slice(i, i + CHECK_CONCURRENCY);
        const here = await Promise.all(batch.map(async ({ cid }): Promise<boolean | null> => {
          if (isInlineCid(cid)) return true;
          if (refsComplete) return !missing.has(cid.toString());
          if (checks <= 0) return null;
          checks--;
          return segment.store.has(cid);
        }));
        batch.forEach((c, j) => note(c.cid, c.offset, c.length, here[j]));
      }
    };
    const visit = async (cid: CID, base: number, length: number): Promise<void> => {
      const bytes = blocks > 0 && !missing.has(cid.toString()) ? await segment.store.get(cid) : undefined;
      blocks--;
      if (!bytes || !verifyChunk(cid, bytes)) {
        note(undefined, base, length, null);
        return;
      }
      const node = decodeNode(bytes);
      if ('leaf' in node) return leaves(node.leaf, base);
      let offset = base;
      for (const [child, len] of node.children) {
        await visit(child, offset, len);
        offset += len;
      }
    };
    await visit(content.tree, 0, size);
  }

  out.exact = out.unknownBytes === 0;
  if (size === 0 || out.localBytes >= size) out.state = 'local';
  else if (out.localBytes === 0) out.state = 'metadata-only';
  else out.state = 'partial';
  if (map) out.map = map.cells();
  if (listMax > 0) out.chunkList = list;
  return out;
}

// Byte ranges folded into equal cells, each remembering how much of it is local or unknown.
class CellMap {
  private readonly size: number;
  private readonly n: number;
  private readonly local: Float64Array;
  private readonly unknown: Float64Array;

  constructor(size: number, cells: number) {
    this.size = size;
    this.n = Math.max(1, Math.min(cells, size));
    this.local = new Float64Array(this.n);
    this.unknown = new Float64Array(this.n);
  }

  add(offset: number, length: number, local: boolean | null): void {
    if (local === false || length <= 0) return;
    const into = local ? this.local : this.unknown;
    const width = this.size / this.n;
    let at = offset;
    const end = Math.min(offset + length, this.size);
    while (at < end) {
      const i = Math.min(this.n - 1, Math.floor(at / width));
      const cellEnd = i === this.n - 1 ? this.size : (i + 1) * width;
      const take = Math.min(end, cellEnd) - at;
      if (take <= 0) break;
      into[i] += take;
      at += take;
    }
  }

  cells(): ChunkCell[] {
    const width = this.size / this.n;
    const round = (x: number) => Math.round(Math.min(1, x) * 1000) / 1000;
    return Array.from({ length: this.n }, (_, i) => {
      const w = i === this.n - 1 ? this.size - i * width : width;
      return { local: round(this.local[i] / w), unknown: round(this.unknown[i] / w) };
    });
  }
}

import { createHash } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 } from './cid.ts';

// An object's content: an ordered list of (chunk CID, length). Offsets are derived, not stored.
// Up to INLINE_MAX_ENTRIES the list rides inside the version manifest (one block to gossip); above
// that it becomes a tree of DAG-CBOR blocks of at most FANOUT entries, stored as chunks themselves,
// so a huge object never needs one giant block and a reader loads only the leaves it touches.

export type ChunkRef = [cid: CID, length: number];

// ~40 bytes an entry: 1024 entries keep a gossiped manifest near 40 KiB (objects up to ~256 MiB).
export const INLINE_MAX_ENTRIES = 1024;
// 4096 entries a block (~160 KiB, under the chunker's max): two levels cover 16M chunks.
export const FANOUT = 4096;

export interface ManifestBlock {
  cid: CID;
  bytes: Uint8Array;
}

// A tree node: leaves list chunks, inner nodes list children with the bytes each covers.
export type ManifestNode = { leaf: ChunkRef[] } | { children: ChunkRef[] };

export type ContentRef = { chunks: ChunkRef[] } | { tree: CID };

export function blockCid(bytes: Uint8Array): CID {
  return CID.createV1(dagCbor.code, Digest.create(sha256.code, createHash('sha256').update(bytes).digest()));
}

function encodeNode(node: ManifestNode): ManifestBlock {
  const bytes = dagCbor.encode(node);
  return { cid: blockCid(bytes), bytes };
}

export function contentLength(refs: ChunkRef[]): number {
  let n = 0;
  for (const [, len] of refs) n += len;
  return n;
}

// Builds the content reference for a chunk list and the tree blocks to store (none when inline).
export function buildContent(refs: ChunkRef[]): { content: ContentRef; blocks: ManifestBlock[] } {
  if (refs.length <= INLINE_MAX_ENTRIES) return { content: { chunks: refs }, blocks: [] };
  const blocks: ManifestBlock[] = [];
  let level: ChunkRef[] = [];
  for (let i = 0; i < refs.length; i += FANOUT) {
    const slice = refs.slice(i, i + FANOUT);
    const block = encodeNode({ leaf: slice });
    blocks.push(block);
    level.push([block.cid, contentLength(slice)]);
  }
  while (level.length > 1) {
    const next: ChunkRef[] = [];
    for (let i = 0; i < level.length; i += FANOUT) {
      const slice = level.slice(i, i + FANOUT);
      const block = encodeNode({ children: slice });
      blocks.push(block);
      next.push([block.cid, contentLength(slice)]);
    }
    level = next;
  }
  return { content: { tree: level[0][0] }, blocks };
}

export function decodeNode(bytes: Uint8Array): ManifestNode {
  const node = dagCbor.decode(bytes) as ManifestNode;
  if (!node || typeof node !== 'object' || (!('leaf' in node) && !('children' in node))) {
    throw new Error('not a chunk manifest block');
  }
  return node;
}

export interface LocatedChunk {
  cid: CID;
  offset: number;
  length: number;
}

export type BlockLoader = (cid: CID) => Promise<Uint8Array>;

// The chunks overlapping [start, end) in order, loading only the tree blocks on that path.
export async function* chunksInRange(
  content: ContentRef,
  start: number,
  end: number,
  load: BlockLoader,
): AsyncGenerator<LocatedChunk> {
  if ('chunks' in content) {
    yield* overlapping(content.chunks, 0, start, end);
    return;
  }
  yield* walk(content.tree, 0, start, end, load);
}

async function* walk(cid: CID, base: number, start: number, end: number, load: BlockLoader): AsyncGenerator<LocatedChunk> {
  const node = decodeNode(await load(cid));
  if ('leaf' in node) {
    yield* overlapping(node.leaf, base, start, end);
    return;
  }
  for (const child of overlapping(node.children, base, start, end)) {
    yield* walk(child.cid, child.offset, start, end, load);
  }
}

function* overlapping(refs: ChunkRef[], base: number, start: number, end: number): Generator<LocatedChunk> {
  let offset = base;
  for (const [cid, length] of refs) {
    if (offset >= end) return;
    if (offset + length > start) yield { cid, offset, length };
    offset += length;
  }
}

// Every block CID of the content (tree nodes and chunks): what a version keeps alive against GC.
export async function allCids(content: ContentRef, load: BlockLoader): Promise<{ chunks: ChunkRef[]; blocks: CID[] }> {
  if ('chunks' in content) return { chunks: content.chunks, blocks: [] };
  const chunks: ChunkRef[] = [];
  const blocks: CID[] = [];
  const visit = async (cid: CID): Promise<void> => {
    blocks.push(cid);
    const node = decodeNode(await load(cid));
    if ('leaf' in node) chunks.push(...node.leaf);
    else for (const [child] of node.children) await visit(child);
  };
  await visit(content.tree);
  return { chunks, blocks };
}

import type { CID } from 'multiformats/cid';

// Where a segment turns when a chunk is missing or fails its hash: the inter-segment gateway plugs
// in here, which is what makes a remote or damaged object readable from every front-end at once.
export interface ChunkSource {
  // Bytes claimed to be `cid`, or undefined when no peer has it. The caller verifies them.
  fetch(cid: CID, context: { bucket: string; key: string; vid: string }): Promise<Uint8Array | undefined>;
}

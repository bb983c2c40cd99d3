import type { CID } from 'multiformats/cid';

export interface StoredChunk {
  cid: string;
  size: number;
  mtimeMs: number;
}

// Where chunk bytes live. Implementations store and return bytes; they do not verify them: the
// Segment checks every read against its CID, so a backend cannot hand out wrong bytes unnoticed.
export interface ChunkStore {
  has(cid: CID): Promise<boolean>;
  // Stores bytes under cid (replacing a same-named file, which can only hold the same bytes or a
  // torn leftover). Callers skip chunks they know are present. Durable once the next `flush()`
  // has resolved.
  put(cid: CID, bytes: Uint8Array | readonly Uint8Array[]): Promise<void>;
  // undefined when absent.
  get(cid: CID): Promise<Buffer | undefined>;
  // Replaces a chunk found corrupt with good bytes (recovery); durable on return.
  rewrite(cid: CID, bytes: Uint8Array): Promise<void>;
  // Removes unconditionally; GC's caller decides what is safe. Synchronous so that the check and
  // the removal cannot be separated by another task of this process.
  deleteSync(cid: string): void;
  list(): AsyncIterable<StoredChunk>;
  // Makes every put so far durable (file contents and directory entries).
  flush(): Promise<void>;
  close(): Promise<void>;
}

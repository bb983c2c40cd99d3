import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, unlinkSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { CID } from 'multiformats/cid';
import type { ChunkStore, StoredChunk } from './chunk-store.ts';

// One file a chunk, named by its CID, in 1024 shard directories (the CID's last two base32
// characters, which are uniformly spread) so no directory grows past what ext4 lists quickly.
// Writes go to tmp/ first, are fsync'd, then renamed: a file under chunks/ is always whole, so
// "exists" can safely mean "stored" for dedup.
export class FsChunkStore implements ChunkStore {
  readonly root: string;
  private readonly tmp: string;
  private readonly knownDirs = new Set<string>();
  private dirtyDirs = new Set<string>();
  // A flush must also wait for one already in flight: that one took dirs this caller's puts touched.
  private flushing: Promise<unknown> = Promise.resolve();

  private constructor(root: string) {
    this.root = root;
    this.tmp = join(root, 'tmp');
  }

  // A read-only open leaves tmp/ alone: a writing process may own the files in it.
  static async open(root: string, opts: { readOnly?: boolean } = {}): Promise<FsChunkStore> {
    const store = new FsChunkStore(root);
    if (opts.readOnly) return store;
    await mkdir(store.tmp, { recursive: true });
    // Leftovers of writes interrupted by a crash: never renamed, so never acknowledged.
    for (const name of await readdir(store.tmp)) await unlink(join(store.tmp, name)).catch(() => {});
    return store;
  }

  private dirOf(cid: string): string {
    return join(this.root, cid.slice(-2));
  }

  private pathOf(cid: string): string {
    return join(this.dirOf(cid), cid);
  }

  async has(cid: CID): Promise<boolean> {
    try {
      await stat(this.pathOf(cid.toString()));
      return true;
    } catch {
      return false;
    }
  }

  async put(cid: CID, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
    await this.writeDurably(cid.toString(), bytes);
  }

  async rewrite(cid: CID, bytes: Uint8Array): Promise<void> {
    await this.writeDurably(cid.toString(), bytes);
    await this.flush();
  }

  private async writeDurably(name: string, bytes: Uint8Array | readonly Uint8Array[]): Promise<void> {
    const dir = this.dirOf(name);
    if (!this.knownDirs.has(dir)) {
      await mkdir(dir, { recursive: true });
      this.knownDirs.add(dir);
    }
    const tmp = join(this.tmp, `${name}.${randomBytes(6).toString('hex')}`);
    const fh = await open(tmp, 'wx');
    try {
      if (bytes instanceof Uint8Array) await fh.writeFile(bytes);
      else await writeAll(fh, bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.pathOf(name));
    this.dirtyDirs.add(dir);
  }

  async get(cid: CID): Promise<Buffer | undefined> {
    try {
      return await readFile(this.pathOf(cid.toString()));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  deleteSync(cid: string): void {
    try {
      unlinkSync(this.pathOf(cid));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async *list(): AsyncIterable<StoredChunk> {
    for (const shard of await readdir(this.root).catch(() => [] as string[])) {
      if (shard === 'tmp') continue;
      const dir = join(this.root, shard);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (st) yield { cid: name, size: st.size, mtimeMs: st.mtimeMs };
      }
    }
  }

  async flush(): Promise<void> {
    const dirs = [...this.dirtyDirs];
    this.dirtyDirs = new Set();
    // A directory fsync makes the renames into it durable; one per touched shard, not per chunk.
    const syncs = dirs.map(async (dir) => {
      const fh = await open(dir, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    });
    const done = Promise.all([this.flushing, ...syncs]);
    this.flushing = done.catch(() => {});
    await done;
  }

  async close(): Promise<void> {
    await this.flush();
  }
}

// writev may write less than asked (rarely, e.g. near a full disk); loop until all is written.
async function writeAll(fh: FileHandle, pieces: readonly Uint8Array[]): Promise<void> {
  let rest = pieces.filter((p) => p.length > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await fh.writev(rest as Uint8Array[]);
    while (rest.length > 0 && bytesWritten >= rest[0].length) {
      bytesWritten -= rest[0].length;
      rest = rest.slice(1);
    }
    if (bytesWritten > 0) rest = [rest[0].subarray(bytesWritten), ...rest.slice(1)];
  }
}

// fsync of a directory, for callers outside the store that rename files (identity, config).
export function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

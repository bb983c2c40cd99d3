import { isInlineCid } from '../core/cid.ts';
import { allCids } from '../core/chunk-manifest.ts';
import { decodeVersion } from '../core/version-manifest.ts';
import type { Segment } from '../segment/segment.ts';
import type { VersionRecord } from '../store/meta-store.ts';
import type { PeerBook } from './peers.ts';

// Chunk fetches in flight while replicating: enough to fill a long fat pipe (with 256 KiB chunks
// and 100 ms RTT, 16 in flight is ~40 MB/s per link), few enough not to starve reader fetches.
const CONCURRENCY = 16;
// A version whose pin failed (no connected peer had a chunk: at start nothing is connected yet) is
// tried again after this long, until it succeeds.
const RETRY_MS = 3_000;

// Makes every chunk of a version local: the tree blocks and chunks it lacks are read through the
// segment's reader, which fetches them from peers, verifies and stores them. Chunks already here
// are only checked for presence, so only missing bytes cross the WAN.
export async function pinVersion(segment: Segment, vid: string): Promise<number> {
  const rec = segment.meta.getVersion(vid);
  if (!rec || rec.deleted) return 0;
  const { manifest } = decodeVersion(rec.manifest);
  const ctx = { bucket: rec.bucket, key: rec.key, vid };
  const { chunks } = await allCids(manifest.content, (cid) => segment.reader.read(cid, ctx));
  const missing: typeof chunks = [];
  for (const ref of chunks) if (!isInlineCid(ref[0]) && !(await segment.store.has(ref[0]))) missing.push(ref);
  let next = 0;
  const worker = async () => {
    while (next < missing.length) await segment.reader.read(missing[next++][0], ctx);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, missing.length) }, worker));
  return missing.length;
}

// Drops the local copies of a version's chunks that no version of this segment's own needs, so
// remote data can be evicted while its metadata stays (reads fetch it again). Returns bytes freed.
export async function unpinVersion(segment: Segment, vid: string): Promise<number> {
  const rec = segment.meta.getVersion(vid);
  if (!rec || rec.deleted) return 0;
  const { manifest } = decodeVersion(rec.manifest);
  const ctx = { bucket: rec.bucket, key: rec.key, vid };
  const { chunks, blocks } = await allCids(manifest.content, (cid) => segment.reader.read(cid, ctx));
  let freed = 0;
  for (const cid of [...chunks.map(([c]) => c), ...blocks]) {
    const name = cid.toString();
    if (isInlineCid(cid) || segment.guard.isHeld(name) || segment.meta.referencedByOrigin(name, segment.name)) continue;
    const size = (await segment.store.get(cid))?.length ?? 0;
    segment.store.deleteSync(name);
    segment.meta.removeLocalChunk(name);
    freed += size;
  }
  return freed;
}

// `full` mode: a background queue that pins every remote version of a fully replicated bucket.
// It is resumable: on start it re-queues every remote version that still lacks chunks.
export class Replicator {
  private readonly segment: Segment;
  private readonly peers: PeerBook;
  private readonly queue: string[] = [];
  private readonly failed = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  // Versions still to pin: queued, and failed awaiting a retry.
  backlog = 0;
  private readonly onRemote = (rec: VersionRecord) => {
    if (rec.key !== '' && !rec.deleted && this.peers.fullReplication(rec.bucket)) this.push(rec.vid);
  };

  constructor(segment: Segment, peers: PeerBook) {
    this.segment = segment;
    this.peers = peers;
  }

  start(): void {
    this.segment.on('remote-version', this.onRemote);
    for (const b of this.segment.listBuckets()) {
      if (!this.peers.fullReplication(b.name)) continue;
      for (const vid of this.segment.meta.remoteVersionsMissingChunks(b.name, this.segment.name)) this.push(vid);
    }
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.segment.off('remote-version', this.onRemote);
  }

  private push(vid: string): void {
    this.queue.push(vid);
    this.failed.delete(vid);
    this.backlog = this.queue.length + this.failed.size;
    if (!this.running) void this.drain();
  }

  private retryLater(vid: string): void {
    this.failed.add(vid);
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const v of [...this.failed]) this.push(v);
    }, RETRY_MS);
  }

  private async drain(): Promise<void> {
    this.running = true;
    while (this.queue.length > 0 && !this.stopped) {
      const vid = this.queue[0];
      try {
        await pinVersion(this.segment, vid);
        this.queue.shift();
      } catch {
        // No peer has it right now: tried again a little later (dropping it would leave the
        // bucket short of chunks until the next restart, with a backlog of zero).
        this.queue.shift();
        this.retryLater(vid);
      }
      this.backlog = this.queue.length + this.failed.size;
    }
    this.running = false;
  }
}

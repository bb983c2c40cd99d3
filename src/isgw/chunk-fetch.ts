import type { Connection, PeerId, Stream } from '@libp2p/interface';
import { CID } from 'multiformats/cid';
import { verifyChunk } from '../core/cid.ts';
import type { ChunkSource } from '../segment/chunk-source.ts';
import type { Segment } from '../segment/segment.ts';
import type { GatewayCounters } from './counters.ts';
import type { PeerBook } from './peers.ts';
import { framed, isRecord, readFrame, writeFrame } from './wire.ts';

export const CHUNK_PROTOCOL = '/stitchfs/chunks/1.0.0';
// CIDs asked in one request: enough to amortise a stream over a WAN round trip, few enough that a
// reply (<= 64 MiB at the 1 MiB chunk max) streams without stalling others.
const MAX_BATCH = 64;
// A peer that sent bytes not matching their CID is not asked again for this long.
const PENALTY_MS = 10 * 60 * 1000;
// How long one fetch may take before the next source is tried.
const FETCH_TIMEOUT_MS = 30_000;
// How many segments a chunk request may pass through: a segment that lacks a chunk asks its own
// peers (never the one asking), so a line A-B-C reads A's data on C. Four covers any sane chain.
export const MAX_HOPS = 4;

// Serves chunks to allowed peers, only from buckets this segment may send them, and only bytes
// that verify here (a damaged local copy is never passed on). A chunk not held here is relayed
// from this segment's other peers while the request has hops left; relayed bytes are not kept.
export async function serveChunks(
  stream: Stream, conn: Connection, segment: Segment, peers: PeerBook, counters: GatewayCounters, relay: RemoteChunks,
): Promise<void> {
  const s = framed(stream);
  try {
    if (!peers.allowed(conn.remotePeer)) throw new Error('not on the allowlist');
    const req = await readFrame<unknown>(s);
    if (!isRecord(req) || !Array.isArray(req.cids) || req.cids.length > MAX_BATCH) throw new Error('malformed chunk request');
    const hops = typeof req.hops === 'number' ? Math.min(req.hops, MAX_HOPS) : 0;
    for (const text of req.cids) {
      let bytes: Uint8Array | undefined;
      if (typeof text === 'string') {
        const cid = CID.parse(text);
        const shareable = segment.meta.bucketsReferencing(text).some((b) => peers.maySend(conn.remotePeer, b));
        const local = shareable ? await segment.store.get(cid) : undefined;
        if (local && verifyChunk(cid, local)) bytes = local;
        else if (shareable && hops > 0) bytes = await relay.fetchVia(cid, { exclude: conn.remotePeer.toString(), hops: hops - 1 });
      }
      if (bytes) {
        counters.chunksServed++;
        counters.chunkBytesServed += bytes.length;
      }
      await writeFrame(s, bytes ? { cid: text, bytes } : { cid: text, missing: true });
    }
    await stream.close();
  } catch (err) {
    stream.abort(err as Error);
  }
}

interface Waiter {
  cid: CID;
  resolve: (b: Uint8Array | undefined) => void;
}

// The segment's chunk source: asks the version's origin first, then every other connected
// linked peer, batching the CIDs asked for in the same moment into one request per peer.
export class RemoteChunks implements ChunkSource {
  private readonly segment: Segment;
  private readonly peers: PeerBook;
  private readonly counters: GatewayCounters;
  private readonly connected: () => PeerId[];
  private readonly dial: (peer: PeerId, protocol: string) => Promise<Stream>;
  private readonly penalised = new Map<string, number>();
  private readonly queues = new Map<string, Waiter[]>();

  constructor(o: {
    segment: Segment; peers: PeerBook; counters: GatewayCounters;
    connected: () => PeerId[]; dial: (peer: PeerId, protocol: string) => Promise<Stream>;
  }) {
    this.segment = o.segment;
    this.peers = o.peers;
    this.counters = o.counters;
    this.connected = o.connected;
    this.dial = o.dial;
  }

  async fetch(cid: CID, ctx: { bucket: string; key: string; vid: string }): Promise<Uint8Array | undefined> {
    const origin = this.segment.meta.getVersion(ctx.vid)?.origin;
    return this.fetchVia(cid, { origin, hops: MAX_HOPS });
  }

  // Tries the origin first, then every other connected allowed peer but `exclude`.
  async fetchVia(cid: CID, o: { origin?: string; exclude?: string; hops: number }): Promise<Uint8Array | undefined> {
    const now = Date.now();
    const candidates = this.connected()
      .filter((p) => this.peers.allowed(p) && p.toString() !== o.exclude && (this.penalised.get(p.toString()) ?? 0) < now)
      .sort((a, b) => Number(this.peers.peer(b)?.name === o.origin) - Number(this.peers.peer(a)?.name === o.origin));
    for (const peer of candidates) {
      const bytes = await this.ask(peer, cid, o.hops);
      if (!bytes) continue;
      if (verifyChunk(cid, bytes)) {
        this.counters.chunksFetched++;
        this.counters.chunkBytesFetched += bytes.length;
        return bytes;
      }
      this.counters.chunksRejected++;
      this.penalised.set(peer.toString(), now + PENALTY_MS);
    }
    return undefined;
  }

  private ask(peer: PeerId, cid: CID, hops: number): Promise<Uint8Array | undefined> {
    return new Promise((resolve) => {
      // Requests are batched per peer and hop budget: one frame carries one budget.
      const key = `${peer.toString()}/${hops}`;
      const q = this.queues.get(key);
      if (q) {
        q.push({ cid, resolve });
        if (q.length >= MAX_BATCH) this.send(peer, key, hops);
        return;
      }
      this.queues.set(key, [{ cid, resolve }]);
      setImmediate(() => this.send(peer, key, hops));
    });
  }

  private send(peer: PeerId, key: string, hops: number): void {
    const batch = this.queues.get(key);
    this.queues.delete(key);
    if (!batch || batch.length === 0) return;
    void this.request(peer, batch, hops).catch(() => {
      for (const w of batch) w.resolve(undefined);
    });
  }

  private async request(peer: PeerId, batch: Waiter[], hops: number): Promise<void> {
    const stream = await this.dial(peer, CHUNK_PROTOCOL);
    const s = framed(stream);
    const signal = AbortSignal.timeout(FETCH_TIMEOUT_MS);
    // Several waiters may want the same CID in one batch (a chunk repeated in an object, two
    // readers recovering one chunk): it is asked once and every one of them gets the answer.
    const pending = new Map<string, Waiter[]>();
    for (const w of batch) {
      const k = w.cid.toString();
      const same = pending.get(k);
      if (same) same.push(w);
      else pending.set(k, [w]);
    }
    try {
      await writeFrame(s, { cids: [...pending.keys()], hops });
      while (pending.size > 0) {
        const frame = await readFrame<{ cid?: unknown; bytes?: unknown }>(s, signal);
        const ws = isRecord(frame) && typeof frame.cid === 'string' ? pending.get(frame.cid) : undefined;
        if (!ws) throw new Error('unexpected chunk reply');
        pending.delete(frame.cid as string);
        for (const w of ws) w.resolve(frame.bytes instanceof Uint8Array ? frame.bytes : undefined);
      }
      await stream.close();
    } catch (err) {
      stream.abort(err as Error);
      throw err;
    } finally {
      for (const ws of pending.values()) for (const w of ws) w.resolve(undefined);
    }
  }
}

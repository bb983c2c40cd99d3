import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Segment } from '../segment/segment.ts';
import type { GatewayCounters } from './counters.ts';
import { applyEntry } from './gossip.ts';
import type { PeerBook } from './peers.ts';
import { framed, isRecord, readFrame, writeFrame } from './wire.ts';

export const CATCH_UP_PROTOCOL = '/stitchfs/catch-up/1.0.0';
// Entries read from the change log per query while streaming a reply.
const PAGE = 256;
// A reply ends with this frame, so the asker knows it saw everything and not a cut stream.
const END = { end: true };

interface Entry {
  origin: string;
  seq: number;
  bytes: Uint8Array;
}

// Serves a peer the change-log entries it lacks: for every origin this segment knows (itself
// and any relayed one, so A-B-C in a line converges), what lies past the asker's frontier, for
// the buckets this segment may send it.
export async function serveCatchUp(stream: Stream, conn: Connection, segment: Segment, peers: PeerBook): Promise<void> {
  const s = framed(stream);
  try {
    if (!peers.allowed(conn.remotePeer)) throw new Error('not on the allowlist');
    const theirs = await readFrame<unknown>(s);
    if (!isRecord(theirs)) throw new Error('malformed vector');
    for (const [origin, mine] of Object.entries(segment.sequenceVector())) {
      let after = typeof theirs[origin] === 'number' ? (theirs[origin] as number) : 0;
      while (after < mine) {
        const page = segment.changesSince(origin, after, PAGE);
        if (page.length === 0) break;
        for (const e of page) {
          if (peers.maySend(conn.remotePeer, e.bucket)) await writeFrame(s, { origin: e.origin, seq: e.seq, bytes: e.bytes });
        }
        after = page[page.length - 1].seq;
      }
    }
    await writeFrame(s, END);
    await stream.close();
  } catch (err) {
    stream.abort(err as Error);
  }
}

// Asks one peer for what this segment lacks and applies it; returns how many entries came.
export async function catchUpFrom(
  dial: (peer: PeerId, protocol: string) => Promise<Stream>,
  peer: PeerId, segment: Segment, peers: PeerBook, counters: GatewayCounters,
): Promise<number> {
  const stream = await dial(peer, CATCH_UP_PROTOCOL);
  const s = framed(stream);
  let n = 0;
  try {
    await writeFrame(s, segment.sequenceVector());
    for (;;) {
      const frame = await readFrame<Entry & { end?: boolean }>(s);
      if (!isRecord(frame)) throw new Error('malformed catch-up frame');
      if (frame.end === true) break;
      if (await applyEntry(segment, peers, counters, frame.bytes, frame.seq)) n++;
    }
    counters.catchUpEntries += n;
    await stream.close();
    return n;
  } catch (err) {
    stream.abort(err as Error);
    throw err;
  }
}

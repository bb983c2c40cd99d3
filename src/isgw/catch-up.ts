import type { Connection, PeerId, Stream } from '@libp2p/interface';
import type { Segment } from '../segment/segment.ts';
import type { GatewayCounters } from './counters.ts';
import { applyEntry } from './gossip.ts';
import type { PeerBook } from './peers.ts';
import { framed, isRecord, readFrame, writeFrame } from './wire.ts';

export const CATCH_UP_PROTOCOL = '/stitchfs/catch-up/1.0.0';
// Entries read from the change log per query while streaming a reply.
const PAGE = 256;
// A reply ends with an `end` frame, so the asker knows it saw everything and not a cut stream.
// It carries `through`: per origin, the sequence number up to which everything the asker may
// have was sent. Entries of buckets it may not have leave gaps its own frontier never closes; the
// asker's cursor for this peer steps over them, or every round would resend all that follows.

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
    const through: Record<string, number> = {};
    for (const [origin, mine] of Object.entries(segment.sequenceVector())) {
      through[origin] = mine;
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
    await writeFrame(s, { end: true, through });
    await stream.close();
  } catch (err) {
    stream.abort(err as Error);
  }
}

// Asks one peer for what this segment lacks and applies it; returns how many entries came.
// `cursor` is what this peer said it sent through last time (kept per connection by the caller):
// asking from the higher of it and the frontier skips what the peer will never send.
export async function catchUpFrom(
  dial: (peer: PeerId, protocol: string) => Promise<Stream>,
  peer: PeerId, segment: Segment, peers: PeerBook, counters: GatewayCounters, cursor: Record<string, number> = {},
): Promise<number> {
  const stream = await dial(peer, CATCH_UP_PROTOCOL);
  const s = framed(stream);
  let n = 0;
  try {
    const vector = segment.sequenceVector();
    for (const [origin, seq] of Object.entries(cursor)) if (seq > (vector[origin] ?? 0)) vector[origin] = seq;
    await writeFrame(s, vector);
    for (;;) {
      const frame = await readFrame<Entry & { end?: boolean; through?: unknown }>(s);
      if (!isRecord(frame)) throw new Error('malformed catch-up frame');
      if (frame.end === true) {
        if (isRecord(frame.through)) {
          for (const [origin, seq] of Object.entries(frame.through)) {
            if (Number.isSafeInteger(seq) && (seq as number) > (cursor[origin] ?? 0)) cursor[origin] = seq as number;
          }
        }
        break;
      }
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

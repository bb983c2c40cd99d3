// What crossed the wire, per segment: tests and `stitch status` read these to prove, e.g., that
// metadata propagation moved zero chunk bytes and that a lazy read fetched each chunk once.
export interface GatewayCounters {
  versionsPublished: number;
  versionsReceived: number;
  versionsRejected: number;
  catchUpEntries: number;
  chunksFetched: number;
  chunkBytesFetched: number;
  chunksServed: number;
  chunkBytesServed: number;
  chunksRejected: number;
}

export function newCounters(): GatewayCounters {
  return {
    versionsPublished: 0, versionsReceived: 0, versionsRejected: 0, catchUpEntries: 0,
    chunksFetched: 0, chunkBytesFetched: 0, chunksServed: 0, chunkBytesServed: 0, chunksRejected: 0,
  };
}

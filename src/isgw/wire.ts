import * as dagCbor from '@ipld/dag-cbor';
import type { Stream } from '@libp2p/interface';
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils';

// Frames on our protocols are length-prefixed DAG-CBOR. The cap bounds what a peer can make us
// buffer: a chunk is at most 1 MiB (the chunker's max) plus framing; manifests are far smaller.
export const MAX_FRAME_BYTES = 2 * 1024 * 1024;

export type Framed = LengthPrefixedStream<Stream>;

export function framed(stream: Stream): Framed {
  return lpStream(stream, { maxDataLength: MAX_FRAME_BYTES });
}

export async function writeFrame(s: Framed, value: unknown): Promise<void> {
  await s.write(dagCbor.encode(value));
}

export async function readFrame<T>(s: Framed, signal?: AbortSignal): Promise<T> {
  const bytes = await s.read({ signal });
  return dagCbor.decode(bytes.subarray()) as T;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

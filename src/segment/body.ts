// What a put accepts: bytes in memory (tests, small writes) or any async byte stream (an HTTP
// request, a file stream, a FUSE write buffer), consumed once, with backpressure.
export type Body = Uint8Array | string | AsyncIterable<Uint8Array>;

export async function* toBody(body: Body): AsyncIterable<Uint8Array> {
  if (typeof body === 'string') yield Buffer.from(body);
  else if (body instanceof Uint8Array) yield body;
  else yield* body;
}

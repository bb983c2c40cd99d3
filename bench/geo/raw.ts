// The link's own capacity, measured in the same run: a plain TCP transfer through proxies that
// share the world's shapers (so the same cap and latency, hop by hop, store and forward as the
// segments' relaying is), into a sink that notes when the first and last bytes came.
import { connect, createServer, type Socket } from 'node:net';
import { Shaper, ShapingProxy } from '../../segments/shaping-proxy.ts';

export interface RawResult {
  bytes: number;
  // From the first write to the first byte at the sink.
  firstByteMs: number;
  // From the first write to the last byte.
  totalSecs: number;
  // Bytes per second: bytes / (time to the last byte - the path's one-way latency), i.e. the
  // serialisation rate, not skewed by a late first delivery on a busy machine.
  rate: number;
}

// hops: the shapers of each hop in the data's direction, in order (e.g. link 0 eastbound, then
// link 1 eastbound). The reverse shapers carry the (empty) other direction.
export async function rawTransfer(hops: Array<{ forward: Shaper; back: Shaper }>, bytes: number): Promise<RawResult> {
  let first = 0;
  let last = 0;
  let got = 0;
  const done = Promise.withResolvers<void>();
  const sink = createServer((s: Socket) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (got === 0) first = performance.now();
      got += d.length;
      last = performance.now();
    });
    s.on('end', () => {
      s.end();
      done.resolve();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const proxies: ShapingProxy[] = [];
  try {
    let target = (sink.address() as { port: number }).port;
    for (const h of [...hops].reverse()) {
      const p = await ShapingProxy.start({ listenPort: 0, targetPort: target, up: h.forward, down: h.back });
      proxies.push(p);
      target = p.port;
    }
    const sock = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ port: target, host: '127.0.0.1', noDelay: true }, () => resolve(s));
      s.once('error', reject);
    });
    const piece = Buffer.alloc(256 * 1024, 0x5a);
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      const more = () => {
        while (sent < bytes) {
          const n = Math.min(piece.length, bytes - sent);
          sent += n;
          if (!sock.write(piece.subarray(0, n))) return void sock.once('drain', more);
        }
        sock.end(resolve);
      };
      sock.once('error', reject);
      more();
    });
    await done.promise;
    sock.destroy();
    if (got !== bytes) throw new Error(`raw transfer: ${got} bytes arrived, not ${bytes}`);
    const pathMs = hops.reduce((sum, h) => sum + h.forward.latencyMs, 0);
    return { bytes, firstByteMs: first - t0, totalSecs: (last - t0) / 1000, rate: bytes / ((last - t0 - pathMs) / 1000) };
  } finally {
    for (const p of proxies) await p.close();
    await new Promise((r) => sink.close(r));
  }
}

// The WAN emulator of the local world (segments/shaping-proxy.ts): latency, a shared bandwidth
// cap, backpressure, ordering with half-close, and cut/heal, against real loopback sockets.
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseRate, Shaper, ShapingProxy } from '../../segments/shaping-proxy.ts';

const MiB = 1024 * 1024;
const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function listen(onConn: (s: Socket) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise((r) => server.close(r)));
  return { server, port: (server.address() as { port: number }).port };
}

async function proxyTo(targetPort: number, shape: ConstructorParameters<typeof Shaper>[0]): Promise<ShapingProxy> {
  const proxy = await ShapingProxy.start({ listenPort: 0, targetPort, shape });
  cleanups.push(() => proxy.close());
  return proxy;
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1', noDelay: true, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => void s.destroy());
  });
}

// An echo server: every byte back, and the end once the client has ended.
const echo = (s: Socket) => {
  s.on('error', () => {});
  s.pipe(s);
};

// A sink that hashes what it receives and notes when the first and last bytes arrived.
function sink() {
  const got = { bytes: 0, first: 0, last: 0, hash: createHash('sha256'), ended: Promise.withResolvers<void>() };
  const onConn = (s: Socket) => {
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      if (got.bytes === 0) got.first = performance.now();
      got.bytes += d.length;
      got.last = performance.now();
      got.hash.update(d);
    });
    s.on('end', () => {
      s.end();
      got.ended.resolve();
    });
  };
  return { got, onConn };
}

function writeAll(s: Socket, data: Buffer, piece = 64 * 1024): Promise<void> {
  return new Promise((resolve, reject) => {
    let off = 0;
    const more = () => {
      while (off < data.length) {
        const chunk = data.subarray(off, off + piece);
        off += chunk.length;
        if (!s.write(chunk)) return void s.once('drain', more);
      }
      s.end(resolve);
    };
    s.once('error', reject);
    more();
  });
}

describe('shaping proxy', { timeout: 30_000 }, () => {
  it('adds the one-way latency each way: a ping-pong takes two latencies', async () => {
    const L = 40;
    const { port } = await listen(echo);
    const shaped = await dial((await proxyTo(port, { latencyMs: L })).port);
    const plain = await dial((await proxyTo(port, {})).port);
    const ping = async (s: Socket) => {
      const t0 = performance.now();
      const back = new Promise<void>((r) => s.once('data', () => r()));
      s.write('x');
      await back;
      return performance.now() - t0;
    };
    // Interleaved with pings through an unshaped proxy, so a busy machine's delays cancel out.
    const rtt: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < 15; i++) {
      rtt.push(await ping(shaped));
      base.push(await ping(plain));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    expect(Math.min(...rtt)).toBeGreaterThanOrEqual(2 * L - 1);
    const added = median(rtt) - median(base);
    expect(added).toBeGreaterThan(2 * L - 5);
    expect(added).toBeLessThan(2 * L + 25);
  });

  it('holds throughput near the cap for a 4 MiB transfer, bytes intact', async () => {
    const { got, onConn } = sink();
    const { port } = await listen(onConn);
    const cap = 8e6;
    const proxy = await proxyTo(port, { latencyMs: 10, bandwidth: cap });
    const data = randomBytes(4 * MiB);
    const s = await dial(proxy.port);
    const t0 = performance.now();
    await writeAll(s, data);
    await got.ended.promise;
    // Time on the wire: to the last byte, less the one-way latency.
    const rate = data.length / ((got.last - t0 - 10) / 1000);
    expect(got.bytes).toBe(data.length);
    expect(got.hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // Never above the cap (plus the 16 KiB burst); below it only by what a busy machine's
    // event-loop stalls cost (an uncapped loopback proxy moves hundreds of MB/s).
    expect(rate).toBeLessThan(cap * 1.05);
    expect(rate).toBeGreaterThan(cap * 0.7);
    expect(proxy.stats.bytesUp).toBe(data.length);
  });

  it('shares the cap between connections of one direction', async () => {
    const a = sink();
    const b = sink();
    const { port: pa } = await listen(a.onConn);
    const { port: pb } = await listen(b.onConn);
    const cap = 8e6;
    const up = new Shaper({ bandwidth: cap, latencyMs: 5 });
    const down = new Shaper({ latencyMs: 5 });
    cleanups.push(() => up.close(), () => down.close());
    const p1 = await ShapingProxy.start({ listenPort: 0, targetPort: pa, up, down });
    const p2 = await ShapingProxy.start({ listenPort: 0, targetPort: pb, up, down });
    cleanups.push(() => p1.close(), () => p2.close());
    const data = randomBytes(2 * MiB);
    const [s1, s2] = await Promise.all([dial(p1.port), dial(p2.port)]);
    const t0 = performance.now();
    await Promise.all([writeAll(s1, data), writeAll(s2, data), a.got.ended.promise, b.got.ended.promise]);
    const rate = (2 * data.length) / ((Math.max(a.got.last, b.got.last) - t0 - 5) / 1000);
    expect(rate).toBeLessThan(cap * 1.05);
    expect(rate).toBeGreaterThan(cap * 0.7);
    expect(up.bytes).toBe(2 * data.length);
    // Neither connection starves the other.
    expect(Math.abs(a.got.last - b.got.last) / 1000).toBeLessThan(0.3);
  });

  it('pauses a fast source instead of buffering it (backpressure)', async () => {
    const { got, onConn } = sink();
    const { port } = await listen(onConn);
    const proxy = await proxyTo(port, { latencyMs: 20, bandwidth: 1e6 });
    const s = await dial(proxy.port);
    const done = writeAll(s, randomBytes(16 * MiB));
    let worst = 0;
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 50));
      worst = Math.max(worst, proxy.stats.readUp - proxy.stats.bytesUp);
    }
    // Held by the proxy: at most its queue plus the bandwidth-delay product, plus one read.
    expect(worst).toBeLessThan(proxy.up.inflightLimit() + 128 * 1024);
    expect(worst).toBeGreaterThan(0);
    expect(s.writableLength).toBeGreaterThan(0);
    s.destroy();
    void done.catch(() => {});
    void got;
  });

  it('keeps order and passes a half-close on after the bytes before it', async () => {
    const { port } = await listen(echo);
    const proxy = await proxyTo(port, { latencyMs: 15, bandwidth: 20e6 });
    const s = await dial(proxy.port);
    const data = randomBytes(MiB + 12345);
    const back: Buffer[] = [];
    s.on('data', (d: Buffer) => back.push(d));
    const ended = new Promise<void>((r) => s.once('end', () => r()));
    await writeAll(s, data, 7000);
    await ended;
    expect(Buffer.concat(back).equals(data)).toBe(true);
  });

  it('cut() drops every connection and refuses new ones until heal()', async () => {
    const { port } = await listen(echo);
    const proxy = await proxyTo(port, { latencyMs: 5 });
    const s = await dial(proxy.port);
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    s.on('error', () => {});
    proxy.cut();
    await closed;
    expect(proxy.stats.active).toBe(0);

    // While cut: the connection is reset before any byte comes back.
    const t = await dial(proxy.port).catch(() => undefined);
    if (t) {
      t.on('error', () => {});
      let echoed = 0;
      t.on('data', (d: Buffer) => (echoed += d.length));
      t.write('hello');
      await new Promise<void>((r) => t.once('close', () => r()));
      expect(echoed).toBe(0);
    }
    expect(proxy.stats.refused).toBe(1);

    proxy.heal();
    const u = await dial(proxy.port);
    const back = new Promise<string>((r) => u.once('data', (d: Buffer) => r(d.toString())));
    u.write('again');
    expect(await back).toBe('again');
  });

  it('parses rates', () => {
    expect(parseRate('50mbit')).toBe(6.25e6);
    expect(parseRate('1Gbit')).toBe(125e6);
    expect(parseRate('8MB')).toBe(8e6);
    expect(parseRate('8MiB')).toBe(8 * MiB);
    expect(parseRate('6250000')).toBe(6.25e6);
    expect(parseRate('none')).toBe(0);
    expect(() => parseRate('8mb')).toThrow(/unit/);
    expect(() => parseRate('fast')).toThrow(/rate/);
  });
});

// A user-space TCP proxy that emulates a WAN link between segments on one machine (no tc netem
// needed): it listens on one loopback port, forwards every connection to another, and delivers
// each direction's bytes through a Shaper: a bandwidth cap (token bucket, bytes/s) shared by every
// connection that uses it, then a one-way propagation delay (a delay queue, so bytes keep their
// order and a full pipe holds bandwidth x latency in flight). Sources are paused when too much is
// queued (backpressure instead of unbounded buffering). cut() partitions the link: every
// connection is destroyed and new ones are reset at once until heal().
//
// Not emulated: the TCP handshake's round trip (the proxy accepts at once and connects upstream
// at once), loss, reordering, jitter. A connection closed with an error is reset on the other side
// at once rather than one latency later.
//
// CLI: node segments/shaping-proxy.ts --listen [HOST:]PORT --target [HOST:]PORT
//        [--latency MS] [--bandwidth RATE] [--burst BYTES] [--queue BYTES]
// RATE is bytes/s or a number with a unit: 50mbit, 1gbit, 8MB, 8MiB (per second, each direction).
import { createServer, connect, type Server, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const KiB = 1024;
const MiB = 1024 * KiB;
// Pieces a capped link schedules one by one: small enough that delivery is smooth, large enough
// that a fast link costs few timers.
const PIECE = 16 * KiB;
// In-flight allowance per connection direction on an uncapped link (there is no bandwidth-delay
// product to size it by).
const UNCAPPED_INFLIGHT = 8 * MiB;

export interface ShaperOptions {
  // One-way delay added to every byte, in ms.
  latencyMs?: number;
  // Cap in bytes per second; 0 or Infinity for none.
  bandwidth?: number;
  // Token bucket size in bytes: how much an idle link sends without serialisation delay.
  burst?: number;
  // Bytes waiting for the link (not yet "on the wire") above which sources are paused; default
  // 100 ms of the cap (at least 256 KiB), so a source resumed at half of it keeps the link busy
  // through 50 ms of event-loop delay on a busy machine.
  queue?: number;
}

interface Delivery {
  at: number;
  pipe: Pipe;
  // undefined: the source ended; pass the end on after everything before it.
  data: Buffer | undefined;
}

// One direction of an emulated link. Several proxies may share one (both dialling directions of
// a link between two segments): the cap is then the link's, not each connection's.
export class Shaper {
  latencyMs: number;
  bandwidth: number;
  burst: number;
  private queue: number | undefined;
  // Payload bytes delivered through this shaper (all its connections).
  bytes = 0;
  private freeAt = 0;
  private lastAt = 0;
  private readonly deliveries: Delivery[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly waiting = new Set<Pipe>();

  constructor(o: ShaperOptions = {}) {
    this.latencyMs = 0;
    this.bandwidth = 0;
    this.burst = 16 * KiB;
    this.set(o);
  }

  set(o: ShaperOptions): void {
    if (o.latencyMs !== undefined) this.latencyMs = nonNegative('latencyMs', o.latencyMs);
    if (o.bandwidth !== undefined) this.bandwidth = o.bandwidth === Infinity ? 0 : nonNegative('bandwidth', o.bandwidth);
    if (o.burst !== undefined) this.burst = nonNegative('burst', o.burst);
    if (o.queue !== undefined) this.queue = Math.max(PIECE, nonNegative('queue', o.queue));
  }

  get queueLimit(): number {
    return this.queue ?? Math.max(256 * KiB, this.bandwidth * 0.1);
  }

  // Bytes accepted but not yet serialised onto the link.
  backlog(now = performance.now()): number {
    return this.bandwidth > 0 ? Math.max(0, (this.freeAt - now) * this.bandwidth / 1000) : 0;
  }

  // How much one connection direction may hold (queued, in flight, unflushed) before its source is
  // paused: the link's queue plus its bandwidth-delay product.
  inflightLimit(): number {
    const bdp = this.bandwidth > 0 ? this.bandwidth * this.latencyMs / 1000 : UNCAPPED_INFLIGHT;
    return this.queueLimit + bdp + 64 * KiB;
  }

  // Queues bytes (or the end) of a pipe: serialised at the cap, then delivered a latency later.
  send(pipe: Pipe, data: Buffer | undefined): void {
    const now = performance.now();
    if (data === undefined || this.bandwidth <= 0) {
      this.push({ at: Math.max(this.freeAt, now) + this.latencyMs, pipe, data });
      return;
    }
    for (let off = 0; off < data.length; off += PIECE) {
      const piece = data.subarray(off, Math.min(off + PIECE, data.length));
      // Token bucket: an idle link has up to `burst` bytes of credit.
      const start = Math.max(this.freeAt, now - (this.burst / this.bandwidth) * 1000);
      this.freeAt = start + (piece.length / this.bandwidth) * 1000;
      this.push({ at: Math.max(this.freeAt, now) + this.latencyMs, pipe, data: piece });
    }
  }

  private push(d: Delivery): void {
    // Keep FIFO order even if the latency was lowered meanwhile.
    d.at = Math.max(d.at, this.lastAt);
    this.lastAt = d.at;
    this.deliveries.push(d);
    if (this.timer === undefined) this.arm();
  }

  private arm(): void {
    if (this.head >= this.deliveries.length) return;
    const delay = this.deliveries[this.head].at - performance.now();
    this.timer = setTimeout(() => this.deliver(), Math.max(0, delay));
  }

  private deliver(): void {
    this.timer = undefined;
    // Timers fire with ~1 ms granularity: deliver what is due within half a millisecond.
    const now = performance.now() + 0.5;
    while (this.head < this.deliveries.length && this.deliveries[this.head].at <= now) {
      const d = this.deliveries[this.head];
      this.deliveries[this.head++] = undefined as unknown as Delivery;
      if (d.data === undefined) d.pipe.deliverEnd();
      else if (d.pipe.deliver(d.data)) this.bytes += d.data.length;
    }
    if (this.head > 1024 && this.head * 2 > this.deliveries.length) {
      this.deliveries.splice(0, this.head);
      this.head = 0;
    }
    this.arm();
  }

  // A pipe paused because the link's queue is full is resumed when the queue has drained to half,
  // timed from the link's own clock (not from deliveries, which lag by the latency).
  wait(pipe: Pipe): void {
    this.waiting.add(pipe);
    if (this.drainTimer !== undefined) return;
    const due = this.freeAt - (this.queueLimit / 2 / this.bandwidth) * 1000;
    this.drainTimer = setTimeout(() => {
      this.drainTimer = undefined;
      const pipes = [...this.waiting];
      this.waiting.clear();
      for (const p of pipes) p.maybeResume();
    }, Math.max(0, due - performance.now()));
  }

  unwait(pipe: Pipe): void {
    this.waiting.delete(pipe);
  }

  close(): void {
    clearTimeout(this.timer);
    clearTimeout(this.drainTimer);
    this.timer = undefined;
    this.drainTimer = undefined;
    this.deliveries.length = 0;
    this.head = 0;
    this.waiting.clear();
  }
}

// One direction of one proxied connection: bytes read from `src`, shaped, written to `dst`.
class Pipe {
  readonly src: Socket;
  readonly dst: Socket;
  readonly shaper: Shaper;
  private readonly count: (n: number) => void;
  private readonly countRead: (n: number) => void;
  held = 0;
  paused = false;
  dead = false;
  ended = false;

  constructor(src: Socket, dst: Socket, shaper: Shaper, count: (n: number) => void, countRead: (n: number) => void) {
    this.src = src;
    this.dst = dst;
    this.shaper = shaper;
    this.count = count;
    this.countRead = countRead;
    src.on('data', (data: Buffer) => this.onData(data));
    src.on('end', () => this.end());
  }

  private onData(data: Buffer): void {
    if (this.dead) return;
    this.countRead(data.length);
    this.held += data.length;
    this.shaper.send(this, data);
    if (this.held > this.shaper.inflightLimit() || this.shaper.backlog() > this.shaper.queueLimit) {
      this.paused = true;
      this.src.pause();
      if (this.shaper.backlog() > this.shaper.queueLimit) this.shaper.wait(this);
    }
  }

  // The source finished (or closed): pass its end on after the bytes before it.
  end(): void {
    if (this.ended || this.dead) return;
    this.ended = true;
    this.shaper.send(this, undefined);
  }

  deliver(data: Buffer): boolean {
    if (this.dead || this.dst.destroyed || this.dst.writableEnded) return false;
    this.dst.write(data, () => {
      this.held -= data.length;
      this.maybeResume();
    });
    this.count(data.length);
    return true;
  }

  deliverEnd(): void {
    if (this.dead || this.dst.destroyed || this.dst.writableEnded) return;
    this.dst.end();
  }

  maybeResume(): void {
    if (!this.paused || this.dead) return;
    if (this.held > this.shaper.inflightLimit() / 2) return;
    if (this.shaper.backlog() > this.shaper.queueLimit / 2) {
      this.shaper.wait(this);
      return;
    }
    this.paused = false;
    this.src.resume();
  }

  kill(): void {
    this.dead = true;
    this.shaper.unwait(this);
  }
}

export interface ProxyOptions {
  listenHost?: string;
  // 0 for an ephemeral port (see `port` once started).
  listenPort: number;
  targetHost?: string;
  targetPort: number;
  // Shapers for each direction; made from `shape` when not given (one per direction).
  up?: Shaper;
  down?: Shaper;
  shape?: ShaperOptions;
  // Called with the local port of every upstream socket (to tell proxied from direct connections).
  onUpstream?: (localPort: number) => void;
}

export interface ProxyStats {
  // Bytes delivered client -> target and target -> client.
  bytesUp: number;
  bytesDown: number;
  // Bytes read from the client and from the target (delivered, queued, or lost to a cut).
  readUp: number;
  readDown: number;
  connections: number;
  active: number;
  refused: number;
}

interface Conn {
  client: Socket;
  upstream: Socket;
  pipes: Pipe[];
}

// The proxy: a listener whose every connection is forwarded through the two shapers.
export class ShapingProxy {
  readonly up: Shaper;
  readonly down: Shaper;
  readonly stats: ProxyStats = { bytesUp: 0, bytesDown: 0, readUp: 0, readDown: 0, connections: 0, active: 0, refused: 0 };
  private readonly o: ProxyOptions;
  private readonly server: Server;
  private readonly conns = new Set<Conn>();
  private readonly ownsShapers: boolean;
  private isCut = false;

  private constructor(o: ProxyOptions) {
    this.o = o;
    this.ownsShapers = !o.up && !o.down;
    this.up = o.up ?? new Shaper(o.shape);
    this.down = o.down ?? new Shaper(o.shape);
    this.server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (c) => this.accept(c));
  }

  static async start(o: ProxyOptions): Promise<ShapingProxy> {
    const p = new ShapingProxy(o);
    await new Promise<void>((resolve, reject) => {
      p.server.once('error', reject);
      p.server.listen(o.listenPort, o.listenHost ?? '127.0.0.1', () => {
        p.server.off('error', reject);
        resolve();
      });
    });
    return p;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  get cutOff(): boolean {
    return this.isCut;
  }

  // Partition: every connection is destroyed (what was in flight is lost) and new ones are reset
  // as soon as they are accepted, until heal().
  cut(): void {
    this.isCut = true;
    for (const c of [...this.conns]) this.destroy(c);
  }

  heal(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.ownsShapers) {
      this.up.close();
      this.down.close();
    }
  }

  private accept(client: Socket): void {
    if (this.isCut) {
      this.stats.refused++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    this.stats.connections++;
    this.stats.active++;
    client.setNoDelay(true);
    const upstream = connect({ host: this.o.targetHost ?? '127.0.0.1', port: this.o.targetPort, allowHalfOpen: true, noDelay: true });
    const conn: Conn = { client, upstream, pipes: [] };
    conn.pipes.push(new Pipe(client, upstream, this.up, (n) => (this.stats.bytesUp += n), (n) => (this.stats.readUp += n)));
    conn.pipes.push(new Pipe(upstream, client, this.down, (n) => (this.stats.bytesDown += n), (n) => (this.stats.readDown += n)));
    this.conns.add(conn);
    upstream.once('connect', () => {
      if (upstream.localPort !== undefined) this.o.onUpstream?.(upstream.localPort);
      client.resume();
    });
    let closed = 0;
    // An error (reset, refused) resets the other side at once; a clean close passes the end on
    // after the bytes still in flight, and the other side closes when its peer does.
    const onClose = (from: Pipe) => (hadError: boolean) => {
      if (++closed === 2) this.forget(conn);
      else if (hadError) this.destroy(conn);
      else from.end();
    };
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('close', onClose(conn.pipes[0]));
    upstream.on('close', onClose(conn.pipes[1]));
    client.pause();
  }

  private destroy(c: Conn): void {
    for (const p of c.pipes) p.kill();
    // A reset, not a FIN: both ends see the connection fail, as after a partition's timeout.
    for (const sock of [c.client, c.upstream]) {
      if (sock.destroyed) continue;
      if (sock.connecting || sock.pending) sock.destroy();
      else sock.resetAndDestroy();
    }
    this.forget(c);
  }

  private forget(c: Conn): void {
    if (this.conns.delete(c)) this.stats.active--;
    for (const p of c.pipes) p.kill();
  }
}

function nonNegative(name: string, n: number): number {
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`${name} must be a non-negative number, got ${n}`);
  return n;
}

// "50mbit" -> 6250000 (bytes/s). Units: bit, kbit, mbit, gbit (decimal bits); B, KB, MB, GB
// (decimal bytes); KiB, MiB, GiB; a bare number is bytes/s. 0, "none" or "inf" mean no cap.
export function parseRate(text: string): number {
  const t = text.trim();
  if (/^(none|inf|infinity|unlimited)$/i.test(t)) return 0;
  const m = /^(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)(?:\/s|ps)?$/i.exec(t);
  if (!m) throw new RangeError(`bad rate '${text}' (e.g. 50mbit, 8MB, 8MiB, 6250000)`);
  const n = Number(m[1]);
  const unit = m[2];
  const lower = unit.toLowerCase();
  const bits: Record<string, number> = { bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9 };
  if (lower in bits) return (n * bits[lower]) / 8;
  const bytes: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: KiB, mib: MiB, gib: 1024 * MiB };
  if (lower in bytes && (lower.endsWith('ib') || unit === unit.toUpperCase() || lower === '')) return n * bytes[lower];
  throw new RangeError(`bad rate unit '${unit}' in '${text}' (bit, kbit, mbit, gbit, B, KB, MB, GB, KiB, MiB, GiB)`);
}

export function formatRate(bytesPerSec: number): string {
  if (bytesPerSec <= 0) return 'uncapped';
  const mbit = (bytesPerSec * 8) / 1e6;
  return mbit >= 1 ? `${+mbit.toFixed(2)} Mbit/s` : `${+(mbit * 1000).toFixed(2)} kbit/s`;
}

function hostPort(text: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d+)$/.exec(text);
  if (!m) throw new RangeError(`bad address '${text}' (PORT or HOST:PORT)`);
  return { host: m[1] ?? '127.0.0.1', port: Number(m[2]) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      target: { type: 'string' },
      latency: { type: 'string', default: '0' },
      bandwidth: { type: 'string', default: '0' },
      burst: { type: 'string' },
      queue: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.listen || !values.target) {
    console.error('usage: node segments/shaping-proxy.ts --listen [HOST:]PORT --target [HOST:]PORT [--latency MS] [--bandwidth RATE] [--burst BYTES] [--queue BYTES]');
    process.exit(values.help ? 0 : 2);
  }
  const listen = hostPort(values.listen);
  const target = hostPort(values.target);
  const shape: ShaperOptions = {
    latencyMs: Number(values.latency),
    bandwidth: parseRate(values.bandwidth),
    ...(values.burst !== undefined ? { burst: Number(values.burst) } : {}),
    ...(values.queue !== undefined ? { queue: Number(values.queue) } : {}),
  };
  const proxy = await ShapingProxy.start({ listenHost: listen.host, listenPort: listen.port, targetHost: target.host, targetPort: target.port, shape });
  console.error(`shaping-proxy: ${listen.host}:${proxy.port} -> ${target.host}:${target.port}, ${shape.latencyMs} ms one way, ${formatRate(shape.bandwidth ?? 0)} each way`);
  console.log(JSON.stringify({ ready: true, listen: `${listen.host}:${proxy.port}`, target: `${target.host}:${target.port}` }));
  process.on('SIGUSR2', () => console.error(JSON.stringify(proxy.stats)));
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await proxy.close();
  console.error(JSON.stringify(proxy.stats));
}

if (import.meta.main) {
  main().catch((err: Error) => {
    console.error(`shaping-proxy: ${err.message}`);
    process.exit(1);
  });
}

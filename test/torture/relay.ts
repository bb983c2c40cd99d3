// A plain byte relay between two endpoints, each a loopback TCP port or a unix socket path, with
// cut() and heal() for partitions: cut resets every connection at once and refuses new ones until
// heal. Unix sockets are what cross network namespaces (they live in the filesystem), so a
// segment in its own namespace is reachable only through the relays the test controls.
import { connect, createServer, type Server, type Socket } from 'node:net';
import { existsSync, unlinkSync } from 'node:fs';

export type Endpoint = { port: number; host?: string } | { path: string };

export interface RelayStats {
  connections: number;
  refused: number;
  active: number;
  bytes: number;
}

export class Relay {
  readonly stats: RelayStats = { connections: 0, refused: 0, active: 0, bytes: 0 };
  private readonly server: Server;
  private readonly target: Endpoint;
  private readonly conns = new Set<[Socket, Socket]>();
  private isCut = false;

  private constructor(target: Endpoint) {
    this.target = target;
    this.server = createServer({ pauseOnConnect: true, allowHalfOpen: true }, (c) => this.accept(c));
  }

  static async start(listen: Endpoint, target: Endpoint): Promise<Relay> {
    const r = new Relay(target);
    if ('path' in listen && existsSync(listen.path)) unlinkSync(listen.path);
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      if ('path' in listen) r.server.listen(listen.path, () => resolve());
      else r.server.listen(listen.port, listen.host ?? '127.0.0.1', () => resolve());
    });
    return r;
  }

  get cutOff(): boolean {
    return this.isCut;
  }

  cut(): void {
    this.isCut = true;
    for (const [a, b] of [...this.conns]) {
      for (const s of [a, b]) abort(s);
    }
    this.conns.clear();
    this.stats.active = 0;
  }

  heal(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => {});
    if (this.isCut) {
      this.stats.refused++;
      abort(client);
      return;
    }
    this.stats.connections++;
    const up = 'path' in this.target
      ? connect({ path: this.target.path, allowHalfOpen: true })
      : connect({ port: this.target.port, host: this.target.host ?? '127.0.0.1', allowHalfOpen: true });
    up.on('error', () => {});
    const pair: [Socket, Socket] = [client, up];
    this.conns.add(pair);
    this.stats.active++;
    up.once('connect', () => {
      client.pipe(up);
      up.pipe(client);
      client.resume();
    });
    client.on('data', (d: Buffer) => (this.stats.bytes += d.length));
    up.on('data', (d: Buffer) => (this.stats.bytes += d.length));
    let closed = 0;
    const onClose = (other: Socket) => (hadError: boolean) => {
      if (hadError) abort(other);
      if (++closed === 2 && this.conns.delete(pair)) this.stats.active--;
    };
    client.on('close', onClose(up));
    up.on('close', onClose(client));
  }
}

// A reset (RST) where the socket is TCP, so the far end sees the failure at once; unix sockets
// and sockets still connecting are just destroyed.
function abort(s: Socket): void {
  s.on('error', () => {});
  if (s.destroyed) return;
  try {
    if (s.connecting) s.destroy();
    else s.resetAndDestroy();
  } catch {
    s.destroy();
  }
}

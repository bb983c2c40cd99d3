import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Segment } from '../segment/segment.ts';
import type { CredentialStore } from './auth/credentials.ts';
import { requestHasAuth, verifySigV4 } from './auth/sigv4.ts';
import type { S3Context } from './context.ts';
import { S3Error, toS3Error } from './errors.ts';
import { bucketAndKey, parseQuery } from './names.ts';
import { anonymousAllowed, route } from './router.ts';
import { xmlError } from './xml.ts';

export interface S3ServerOptions {
  segment: Segment;
  credentials: CredentialStore;
  host?: string;
  port?: number;
  // Host suffixes for virtual-host-style requests (`<bucket>.<domain>`).
  domains?: string[];
  now?: () => number;
  onRequest?: (entry: { id: string; method: string; path: string; status: number; ms: number; code?: string }) => void;
}

// Slow or stalled clients: headers must arrive within HEADERS_TIMEOUT_MS and a connection that
// moves no byte for IDLE_TIMEOUT_MS is closed. There is no cap on a whole request's duration: a
// 5 GiB part on a slow link is legitimate as long as it keeps moving.
const HEADERS_TIMEOUT_MS = 30_000;
const IDLE_TIMEOUT_MS = 120_000;

export class S3Server {
  readonly server: Server;
  private readonly o: Required<Omit<S3ServerOptions, 'onRequest'>> & Pick<S3ServerOptions, 'onRequest'>;

  private constructor(o: S3ServerOptions) {
    this.o = { host: '127.0.0.1', port: 9000, domains: ['localhost'], now: Date.now, ...o };
    this.server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0, keepAliveTimeout: 5_000 }, (req, res) => {
      void this.handle(req, res);
    });
    this.server.timeout = IDLE_TIMEOUT_MS;
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  static async start(o: S3ServerOptions): Promise<S3Server> {
    const s = new S3Server(o);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.server.listen(s.o.port, s.o.host, () => resolve());
    });
    return s;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      // In-flight requests get a moment, then their sockets go.
      setTimeout(() => this.server.closeAllConnections(), 2_000).unref();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('server', 'stitchfs');
    const url = req.url ?? '/';
    const qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    let code: string | undefined;
    try {
      const query = parseQuery(qi < 0 ? '' : url.slice(qi + 1));
      const { bucket, key } = bucketAndKey(req, rawPath, this.o.domains);
      const c: S3Context = {
        req, res, segment: this.o.segment, method: req.method ?? 'GET', rawPath, query, bucket, key,
        auth: undefined, requestId, now: this.o.now,
      };
      if (requestHasAuth(req.headersDistinct, query)) {
        c.auth = verifySigV4({ method: c.method, path: rawPath, query, headers: req.headersDistinct }, this.o.credentials, { now: this.o.now() });
      } else if (!(bucket && anonymousAllowed(c, this.o.segment.meta.getBucket(bucket)?.publicRead ?? false))) {
        throw new S3Error('AccessDenied', 403, 'Access Denied');
      }
      await route(c)(c);
    } catch (err) {
      const e = toS3Error(err);
      code = e.code;
      this.sendError(req, res, e, rawPath, requestId, err);
    } finally {
      this.o.onRequest?.({ id: requestId, method: req.method ?? '', path: rawPath, status: res.statusCode, ms: performance.now() - started, code });
    }
  }

  private sendError(req: IncomingMessage, res: ServerResponse, e: S3Error, resource: string, requestId: string, cause: unknown): void {
    if (e.status === 500 && !(cause instanceof S3Error) && !clientWentAway(req, res, cause)) {
      console.error(`s3: ${req.method} ${resource} failed:`, cause);
    }
    // Once the status line is out, the only honest signal left is a cut connection.
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const body = req.method === 'HEAD' ? undefined : Buffer.from(xmlError(e.code, e.message, { ...e.details, Resource: resource, RequestId: requestId }));
    // An unread request body is not drained (it may be gigabytes): the connection is closed instead.
    const close = !req.complete;
    res.writeHead(e.status, {
      'content-type': 'application/xml',
      ...(body ? { 'content-length': body.length } : {}),
      ...(close ? { connection: 'close' } : {}),
    });
    // Taken now: node detaches the socket from req/res when the response finishes (req.socket is
    // null by then), and a throw in this listener would take the whole process down.
    const socket = req.socket;
    res.end(body);
    if (close) res.once('finish', () => socket?.destroySoon());
  }
}

// A client that hung up mid-upload or mid-download is not a server failure: logging each one as
// such would let any client flood the log (and bury real faults).
function clientWentAway(req: IncomingMessage, res: ServerResponse, cause: unknown): boolean {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (req.errored != null && cause === req.errored) return true;
  return (req.destroyed || res.destroyed) && (code === 'ECONNRESET' || code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'EPIPE');
}

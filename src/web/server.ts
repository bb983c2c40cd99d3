// The web console: a small single-page app and its JSON API, plus /metrics, on their own port
// (`stitch serve --console HOST:PORT`, default 127.0.0.1:9001).
//
// Everything but the app's static files and the two sign-in steps needs a session (auth.ts);
// without one the answer is 401. /metrics also accepts `Authorization: Bearer <token>` when
// STITCH_METRICS_TOKEN is set, for Prometheus. POSTs must carry `x-stitch-console: 1` and a JSON
// body: a cross-site page cannot send either without a CORS preflight, which is never granted.
//
// Browsing is metadata only. The two things that move chunk bytes are explicit actions: download
// (reads the object, fetching what is not here) and pin (fetches every missing chunk now).
import { timingSafeEqual, createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { StitchError } from '../core/errors.ts';
import type { PeerConfig } from '../isgw/config.ts';
import { pinVersion, unpinVersion } from '../isgw/replicator.ts';
import { silentLogger, type Logger } from '../log/index.ts';
import { CONTENT_TYPE, type GatewayView, type StitchMetrics } from '../metrics/index.ts';
import type { CredentialStore } from '../s3/auth/credentials.ts';
import type { Segment } from '../segment/segment.ts';
import { loadAssets, type Asset } from './assets.ts';
import { ConsoleAuth, type Session } from './auth.ts';
import { buckets, DEFAULT_PAGE, listObjects, MAX_PAGE, objectVersions, versionDetail } from './browse.ts';
import { residencyOf } from './residency.ts';
import { StatusModel } from './status.ts';

export interface ConsoleOptions {
  segment: Segment;
  credentials: CredentialStore;
  metrics: StitchMetrics;
  gateway?: GatewayView;
  peers?: PeerConfig[];
  host?: string;
  port?: number;
  log?: Logger;
  // Shown on the segments page.
  info?: { peerId?: string; s3?: string; p2p?: string[] };
  // Bearer token accepted on /metrics (besides a session); none: sessions only.
  metricsToken?: string;
  sampleMs?: number;
}

const MAX_BODY = 16 * 1024;
const MAX_PARAM = 2048;
const MAP_CELLS = 256;

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const STATUS_OF: Record<string, number> = {
  NoSuchBucket: 404, NoSuchKey: 404, NoSuchVersion: 404, NoSuchUpload: 404,
  InvalidBucketName: 400, InvalidKey: 400, KeyTooLong: 400, InvalidVersionId: 400, InvalidArgument: 400, InvalidRange: 400,
  ChunkUnavailable: 503, SegmentLocked: 409,
};

interface Ctx {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  session: Session | undefined;
  client: string;
}

type Route = { auth: 'none' | 'session' | 'metrics'; method: 'GET' | 'POST'; handle: (c: Ctx) => Promise<unknown> | unknown };

export class ConsoleServer {
  readonly server: Server;
  private readonly o: ConsoleOptions;
  private readonly auth: ConsoleAuth;
  private readonly assets: Map<string, Asset>;
  private readonly status: StatusModel;
  private readonly log: Logger;
  private readonly routes: Record<string, Route>;

  private constructor(o: ConsoleOptions) {
    this.o = o;
    this.log = o.log ?? silentLogger;
    this.auth = new ConsoleAuth(o.credentials);
    this.assets = loadAssets();
    this.status = new StatusModel({ segment: o.segment, gateway: o.gateway, peers: o.peers, metrics: o.metrics, info: o.info, sampleMs: o.sampleMs });
    this.routes = {
      '/api/login/challenge': { auth: 'none', method: 'GET', handle: () => this.auth.challenge() },
      '/api/login': { auth: 'none', method: 'POST', handle: (c) => this.login(c) },
      '/api/logout': { auth: 'session', method: 'POST', handle: (c) => this.logout(c) },
      '/api/session': { auth: 'session', method: 'GET', handle: (c) => ({ accessKeyId: c.session!.accessKeyId, segment: o.segment.name }) },
      '/api/segments': { auth: 'session', method: 'GET', handle: () => this.status.view() },
      '/api/buckets': { auth: 'session', method: 'GET', handle: () => ({ buckets: buckets(o.segment, o.peers ?? []) }) },
      '/api/objects': {
        auth: 'session', method: 'GET',
        handle: (c) => listObjects(o.segment, {
          bucket: param(c, 'bucket', true), prefix: param(c, 'prefix') ?? '', after: param(c, 'after') || undefined,
          limit: limitParam(c), flat: flag(c, 'flat'),
        }),
      },
      '/api/object': {
        auth: 'session', method: 'GET',
        handle: (c) => objectVersions(o.segment, { bucket: param(c, 'bucket', true), key: param(c, 'key', true), after: param(c, 'after') || undefined, limit: limitParam(c) }),
      },
      '/api/version': {
        auth: 'session', method: 'GET',
        handle: (c) => versionDetail(o.segment, { bucket: param(c, 'bucket', true), key: param(c, 'key', true), versionId: param(c, 'versionId') || undefined, cells: MAP_CELLS }),
      },
      '/api/download': { auth: 'session', method: 'GET', handle: (c) => this.download(c) },
      '/api/pin': { auth: 'session', method: 'POST', handle: (c) => this.pin(c, true) },
      '/api/unpin': { auth: 'session', method: 'POST', handle: (c) => this.pin(c, false) },
      '/metrics': { auth: 'metrics', method: 'GET', handle: (c) => this.metrics(c) },
    };
    this.server = createServer({ headersTimeout: 30_000, requestTimeout: 60_000, keepAliveTimeout: 5_000 }, (req, res) => void this.handle(req, res));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      else socket.destroy();
    });
  }

  static async start(o: ConsoleOptions): Promise<ConsoleServer> {
    const s = new ConsoleServer(o);
    try {
      await new Promise<void>((resolve, reject) => {
        s.server.once('error', reject);
        s.server.listen(o.port ?? 9001, o.host ?? '127.0.0.1', () => {
          s.server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      s.status.close();
      throw err;
    }
    s.status.info.console = s.url;
    return s;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  async close(): Promise<void> {
    this.status.close();
    this.server.closeIdleConnections();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      setTimeout(() => this.server.closeAllConnections(), 2_000).unref();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let route = 'other';
    try {
      for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://console.invalid');
      } catch {
        throw new HttpError(400, 'BadRequest', 'unreadable URL');
      }
      // Only exact paths are served: no file system lookup ever sees a request path, and a path
      // that names a parent (raw or percent-encoded) matches nothing.
      const path = url.pathname;
      const asset = this.assets.get(path);
      if (asset) {
        route = 'static';
        if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'MethodNotAllowed', 'GET only');
        return this.sendAsset(req, res, asset);
      }
      const r = this.routes[path];
      if (!r) throw new HttpError(404, 'NotFound', 'no such page or endpoint');
      route = path;
      if (req.method !== r.method) {
        res.setHeader('allow', r.method);
        throw new HttpError(405, 'MethodNotAllowed', `${r.method} only`);
      }
      const c: Ctx = { req, res, url, session: this.auth.session(req.headers.cookie), client: req.socket.remoteAddress ?? '?' };
      if (r.auth === 'session' && !c.session) throw new HttpError(401, 'Unauthorized', 'sign in first');
      if (r.auth === 'metrics' && !c.session && !this.bearerOk(req)) {
        res.setHeader('www-authenticate', 'Bearer realm="stitch metrics"');
        throw new HttpError(401, 'Unauthorized', 'a console session or the metrics bearer token is required');
      }
      if (r.method === 'POST' && req.headers['x-stitch-console'] !== '1') {
        throw new HttpError(403, 'Forbidden', 'POST requests need the header x-stitch-console: 1');
      }
      const out = await r.handle(c);
      if (out !== undefined && !res.headersSent) this.json(res, 200, out);
    } catch (err) {
      this.fail(req, res, err);
    } finally {
      this.o.metrics.consoleRequests.inc({ route, status: String(res.statusCode) });
      this.log.debug({ route, method: req.method, status: res.statusCode, ms: Math.round((performance.now() - started) * 100) / 100 }, 'console request');
    }
  }

  private bearerOk(req: IncomingMessage): boolean {
    const token = this.o.metricsToken;
    const h = req.headers.authorization;
    if (!token || !h?.startsWith('Bearer ')) return false;
    const a = createHash('sha256').update(h.slice(7)).digest();
    const b = createHash('sha256').update(token).digest();
    return timingSafeEqual(a, b);
  }

  private sendAsset(req: IncomingMessage, res: ServerResponse, a: Asset): void {
    res.setHeader('etag', a.etag);
    res.setHeader('cache-control', 'no-cache');
    if (req.headers['if-none-match'] === a.etag) {
      res.writeHead(304);
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': a.type, 'content-length': a.body.length });
    res.end(req.method === 'HEAD' ? undefined : a.body);
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const bytes = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': bytes.length, 'cache-control': 'no-store' });
    res.end(bytes);
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown): void {
    let status = 500;
    let code = 'InternalError';
    let message = 'internal error';
    if (err instanceof HttpError) {
      ({ status, code, message } = err);
    } else if (err instanceof StitchError) {
      status = STATUS_OF[err.code] ?? 500;
      code = err.code;
      message = err.message;
    }
    if (status === 500) this.log.error({ err, method: req.method, url: req.url }, 'console request failed');
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    // A body left unread (it may be large) is not drained: the connection is closed instead.
    const hasBody = (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') || req.headers['transfer-encoding'] !== undefined;
    const close = hasBody && !req.complete;
    if (close) res.setHeader('connection', 'close');
    this.json(res, status, { error: code, message });
    if (close) res.once('finish', () => req.socket?.destroySoon());
  }

  private async login(c: Ctx): Promise<unknown> {
    const body = await readJson(c.req);
    const r = this.auth.login(body, c.client);
    if (!r.ok) {
      this.log.warn({ client: c.client, accessKeyId: typeof (body as { accessKeyId?: unknown })?.accessKeyId === 'string' ? (body as { accessKeyId: string }).accessKeyId.slice(0, 128) : undefined, status: r.status }, 'console sign-in refused');
      throw new HttpError(r.status, r.status === 429 ? 'TooManyRequests' : r.status === 400 ? 'BadRequest' : 'Unauthorized', r.error);
    }
    this.log.info({ client: c.client, accessKeyId: r.session.accessKeyId }, 'console sign-in');
    c.res.setHeader('set-cookie', this.auth.cookie(r.session));
    return { accessKeyId: r.session.accessKeyId, segment: this.o.segment.name };
  }

  private logout(c: Ctx): unknown {
    this.auth.logout(c.session!.id);
    c.res.setHeader('set-cookie', ConsoleAuth.clearCookie());
    return { signedOut: true };
  }

  private metrics(c: Ctx): undefined {
    const body = Buffer.from(this.o.metrics.render());
    c.res.writeHead(200, { 'content-type': CONTENT_TYPE, 'content-length': body.length, 'cache-control': 'no-store' });
    c.res.end(body);
    return undefined;
  }

  private async download(c: Ctx): Promise<undefined> {
    const bucket = param(c, 'bucket', true);
    const key = param(c, 'key', true);
    const versionId = param(c, 'versionId') || undefined;
    const r = await this.o.segment.get(bucket, key, { versionId });
    const it = r.body[Symbol.asyncIterator]();
    // The first chunk before the status line: a chunk no segment can give is still a clean error.
    const first = r.end > r.start ? await it.next() : undefined;
    const name = key.slice(key.lastIndexOf('/') + 1) || 'download';
    // Always an attachment of an opaque type: an object's own content type (text/html, say)
    // served from the console's origin would run inside the signed-in console.
    c.res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': r.end - r.start,
      'content-disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
      'content-security-policy': "default-src 'none'; sandbox",
      'cache-control': 'no-store',
      etag: `"${r.version.etag}"`,
      'x-stitch-version-id': r.version.versionId,
    });
    if (!first || first.done) {
      c.res.end();
      return undefined;
    }
    const rest = async function* () {
      yield first.value;
      for (let n = await it.next(); !n.done; n = await it.next()) yield n.value;
    };
    this.log.info({ bucket, key, versionId: r.version.versionId, bytes: r.end - r.start, accessKeyId: c.session!.accessKeyId }, 'console download');
    await pipeline(Readable.from(rest(), { objectMode: false }), c.res);
    return undefined;
  }

  private async pin(c: Ctx, pin: boolean): Promise<unknown> {
    const body = await readJson(c.req) as { bucket?: unknown; key?: unknown; versionId?: unknown };
    if (!body || typeof body !== 'object' || typeof body.bucket !== 'string' || typeof body.key !== 'string'
      || (body.versionId !== undefined && typeof body.versionId !== 'string')) {
      throw new HttpError(400, 'BadRequest', 'expected { bucket, key, versionId? }');
    }
    const seg = this.o.segment;
    const v = await seg.head(body.bucket, body.key, body.versionId ? { versionId: body.versionId } : {});
    if (v.deleted) throw new HttpError(400, 'BadRequest', 'a delete marker has no data');
    const started = performance.now();
    const out = pin
      ? { fetchedChunks: await pinVersion(seg, v.versionId) }
      : { freedBytes: await unpinVersion(seg, v.versionId) };
    const rec = seg.meta.getVersion(v.versionId);
    const residency = rec ? await residencyOf(seg, rec) : undefined;
    this.log.info({ action: pin ? 'pin' : 'unpin', bucket: body.bucket, key: body.key, versionId: v.versionId, ...out, ms: Math.round(performance.now() - started), accessKeyId: c.session!.accessKeyId }, `console ${pin ? 'pin' : 'unpin'}`);
    return { versionId: v.versionId, ...out, residency };
  }
}

function param(c: Ctx, name: string, required: true): string;
function param(c: Ctx, name: string, required?: false): string | undefined;
function param(c: Ctx, name: string, required = false): string | undefined {
  const all = c.url.searchParams.getAll(name);
  if (all.length > 1) throw new HttpError(400, 'BadRequest', `parameter '${name}' given more than once`);
  const v = all[0];
  if (v === undefined || (required && v === '')) {
    if (required) throw new HttpError(400, 'BadRequest', `parameter '${name}' is required`);
    return undefined;
  }
  if (v.length > MAX_PARAM) throw new HttpError(400, 'BadRequest', `parameter '${name}' is too long`);
  if (v.includes('\0') || !v.isWellFormed()) throw new HttpError(400, 'BadRequest', `parameter '${name}' is not valid text`);
  return v;
}

function flag(c: Ctx, name: string): boolean {
  const v = param(c, name);
  return v === '1' || v === 'true';
}

// Page size: a positive integer, clamped to MAX_PAGE (a huge one is not an error, just capped).
function limitParam(c: Ctx): number {
  const v = param(c, 'limit');
  if (v === undefined || v === '') return DEFAULT_PAGE;
  if (!/^\d{1,20}$/.test(v) || Number(v) < 1) throw new HttpError(400, 'BadRequest', "'limit' must be a positive integer");
  return Math.min(Number(v), MAX_PAGE);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') throw new HttpError(415, 'UnsupportedMediaType', 'send JSON (content-type: application/json)');
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > MAX_BODY) throw new HttpError(413, 'PayloadTooLarge', `body over ${MAX_BODY} bytes`);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const d of req as AsyncIterable<Buffer>) {
    n += d.length;
    if (n > MAX_BODY) throw new HttpError(413, 'PayloadTooLarge', `body over ${MAX_BODY} bytes`);
    parts.push(d);
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new HttpError(400, 'BadRequest', 'malformed JSON');
  }
}


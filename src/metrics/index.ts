// The process's metrics, served as Prometheus text at the console's /metrics. One registry per
// process (`metrics`), so any layer can count without being handed an object: the FUSE layer calls
// `metrics.fuseOp(name, ms, ok)`, `stitch serve` attaches the S3 server, the segment and the
// gateway. Label values come from small fixed sets (operation names, peer and origin names).
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { CID } from 'multiformats/cid';
import { isInlineCid } from '../core/cid.ts';
import { hlcToMillis } from '../core/hlc.ts';
import type { GatewayCounters } from '../isgw/counters.ts';
import type { Logger } from '../log/index.ts';
import type { ChunkSource } from '../segment/chunk-source.ts';
import type { ReadContext } from '../segment/chunk-reader.ts';
import type { Segment } from '../segment/segment.ts';
import type { VersionRecord } from '../store/meta-store.ts';
import { CONTENT_TYPE, Registry, type Counter, type Gauge, type Histogram } from './registry.ts';
import { s3Operation } from './s3-ops.ts';

export { CONTENT_TYPE } from './registry.ts';

// Seconds: from a local SSD read to a slow WAN fetch (the chunk fetch timeout is 30 s).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const LAG_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600];
const FUSE_OP = /^[a-z][a-z0-9_]{0,31}$/;

// What the console and the metrics read from the inter-segment gateway (Gateway implements it).
export interface GatewayView {
  peerStatus(): Array<{ name: string; peerId: string; connected: boolean; lastCatchUp: number | undefined; lastCatchUpEntries: number }>;
  readonly counters: Readonly<GatewayCounters>;
  readonly replicationBacklog: number;
}

const GATEWAY_COUNTERS: Array<[key: keyof GatewayCounters, name: string, help: string]> = [
  ['versionsPublished', 'stitch_isgw_versions_published_total', 'Version manifests published by gossip'],
  ['versionsReceived', 'stitch_isgw_versions_received_total', 'Version manifests received (gossip and catch-up) and applied'],
  ['versionsRejected', 'stitch_isgw_versions_rejected_total', 'Version manifests refused (bad signature, origin or bucket not allowed, malformed)'],
  ['catchUpEntries', 'stitch_isgw_catchup_entries_total', 'Change-log entries brought by catch-up'],
  ['chunksFetched', 'stitch_isgw_chunks_fetched_total', 'Chunks fetched from other segments'],
  ['chunkBytesFetched', 'stitch_isgw_chunk_bytes_fetched_total', 'Chunk bytes fetched from other segments'],
  ['chunksServed', 'stitch_isgw_chunks_served_total', 'Chunks served to other segments'],
  ['chunkBytesServed', 'stitch_isgw_chunk_bytes_served_total', 'Chunk bytes served to other segments'],
  ['chunksRejected', 'stitch_isgw_chunks_rejected_total', 'Fetched chunks that did not match their CID'],
];

interface PendingS3 {
  op: string;
  socket: Socket | null;
  mark: { r: number; w: number };
  remote: string | undefined;
}

export class StitchMetrics {
  readonly registry = new Registry();
  readonly s3Requests: Counter;
  readonly s3Seconds: Histogram;
  readonly s3BytesIn: Counter;
  readonly s3BytesOut: Counter;
  readonly chunkReads: Counter;
  readonly chunkFetches: Counter;
  readonly chunkFetchSeconds: Histogram;
  readonly fuseOps: Counter;
  readonly fuseSeconds: Histogram;
  readonly consoleRequests: Counter;
  readonly metadataLag: Gauge;
  readonly metadataLagSeconds: Histogram;
  private readonly pendingS3 = new Map<string, PendingS3>();
  private readonly socketMarks = new WeakMap<Socket, { r: number; w: number }>();
  private gateway: GatewayView | undefined;
  private segment: Segment | undefined;
  private readonly detach: Array<() => void> = [];
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 20 });

  constructor() {
    const r = this.registry;
    this.s3Requests = r.counter('stitch_s3_requests_total', 'S3 requests by operation and HTTP status', ['op', 'status']);
    this.s3Seconds = r.histogram('stitch_s3_request_duration_seconds', 'S3 request handling time by operation', ['op'], LATENCY_BUCKETS);
    this.s3BytesIn = r.counter('stitch_s3_received_bytes_total', 'Bytes received from S3 clients (on the wire: headers and body)', ['op']);
    this.s3BytesOut = r.counter('stitch_s3_sent_bytes_total', 'Bytes sent to S3 clients (on the wire: headers and body)', ['op']);
    this.chunkReads = r.counter('stitch_chunk_reads_total',
      'Chunk reads by where the bytes came from: local (hit in the local store), remote (fetched from another segment), inline (in the manifest), error', ['source']);
    this.chunkFetches = r.counter('stitch_chunk_fetches_total', 'Remote chunk fetches by result (ok, or miss: no peer had it)', ['result']);
    this.chunkFetchSeconds = r.histogram('stitch_chunk_fetch_duration_seconds', 'Latency of remote chunk fetches', ['result'], LATENCY_BUCKETS);
    this.fuseOps = r.counter('stitch_fuse_operations_total', 'FUSE operations by name and result', ['op', 'result']);
    this.fuseSeconds = r.histogram('stitch_fuse_operation_duration_seconds', 'FUSE operation time by name', ['op'], LATENCY_BUCKETS);
    this.consoleRequests = r.counter('stitch_console_requests_total', 'Web console requests by route and HTTP status', ['route', 'status']);
    this.metadataLag = r.gauge('stitch_isgw_metadata_lag_seconds',
      'Age of the last version received from each origin when it arrived (now minus its HLC time): gossip and catch-up lag', ['origin']);
    this.metadataLagSeconds = r.histogram('stitch_isgw_metadata_lag_distribution_seconds',
      'Age of received versions when they arrived, per origin', ['origin'], LAG_BUCKETS);

    r.collected('gauge', 'stitch_isgw_peer_up', 'Whether a linked segment is connected (1) or not (0)', ['peer'],
      () => (this.gateway?.peerStatus() ?? []).map((p) => [{ peer: p.name }, p.connected ? 1 : 0]));
    r.collected('gauge', 'stitch_isgw_catchup_age_seconds', 'Seconds since the last completed catch-up with each linked segment', ['peer'],
      () => (this.gateway?.peerStatus() ?? []).filter((p) => p.lastCatchUp !== undefined).map((p) => [{ peer: p.name }, (Date.now() - p.lastCatchUp!) / 1000]));
    r.collected('gauge', 'stitch_isgw_catchup_last_entries', 'Entries the last catch-up with each linked segment had to bring (what gossip missed)', ['peer'],
      () => (this.gateway?.peerStatus() ?? []).map((p) => [{ peer: p.name }, p.lastCatchUpEntries]));
    r.collected('gauge', 'stitch_replication_backlog_versions', 'Versions queued for full-mode replication', [],
      () => (this.gateway ? [[undefined, this.gateway.replicationBacklog]] : []));
    for (const [key, name, help] of GATEWAY_COUNTERS) {
      r.collected('counter', name, help, [], () => (this.gateway ? [[undefined, this.gateway.counters[key] ?? 0]] : []));
    }
    r.collected('gauge', 'stitch_segment_objects', 'Objects (keys whose current version is not a delete marker)', [],
      () => (this.segment ? [[undefined, this.segment.stats().objects]] : []));
    r.collected('gauge', 'stitch_segment_info', 'This segment (value 1; its name as a label)', ['segment'],
      () => (this.segment ? [[{ segment: this.segment.name }, 1]] : []));
    r.collected('gauge', 'stitch_segment_stored_bytes', 'Chunk bytes stored locally', [],
      () => (this.segment ? [[undefined, this.segment.meta.localChunkStats().bytes]] : []));
    r.collected('gauge', 'stitch_segment_chunks', 'Chunks stored locally', [],
      () => (this.segment ? [[undefined, this.segment.meta.localChunkStats().chunks]] : []));
    r.collected('counter', 'stitch_chunk_recovered_total', 'Chunks found missing or corrupt locally and recovered from a peer', [],
      () => (this.segment ? [[undefined, this.segment.reader.counters.recovered]] : []));
    r.collected('counter', 'stitch_chunk_corrupt_total', 'Local chunks that failed their hash on read', [],
      () => (this.segment ? [[undefined, this.segment.reader.counters.corrupt]] : []));

    const started = Date.now() / 1000 - process.uptime();
    r.collected('gauge', 'process_start_time_seconds', 'Start time of the process since the epoch, in seconds', [], () => [[undefined, Math.round(started)]]);
    r.collected('gauge', 'process_resident_memory_bytes', 'Resident memory size in bytes', [], () => [[undefined, process.memoryUsage.rss()]]);
    r.collected('counter', 'process_cpu_seconds_total', 'User and system CPU time spent, in seconds', [], () => {
      const u = process.cpuUsage();
      return [[undefined, (u.user + u.system) / 1e6]];
    });
    this.loopDelay.enable();
    r.collected('gauge', 'nodejs_eventloop_delay_p99_seconds', 'Event loop delay, 99th percentile since the last scrape', [], () => {
      const v = this.loopDelay.percentile(99) / 1e9;
      this.loopDelay.reset();
      return [[undefined, v]];
    });
  }

  render(): string {
    return this.registry.render();
  }

  // The FUSE layer's hook: one call per operation (`getattr`, `read`, `write`, ...), with its time
  // in milliseconds and whether it succeeded. Names outside [a-z0-9_] (1-32) count as `other`.
  fuseOp(name: string, ms: number, ok: boolean): void {
    const op = FUSE_OP.test(name) ? name : 'other';
    this.fuseOps.inc({ op, result: ok ? 'ok' : 'error' });
    this.fuseSeconds.observe({ op }, ms / 1000);
  }

  attachGateway(g: GatewayView | undefined): void {
    this.gateway = g;
  }

  // Segment gauges, and the age of every remote version as it arrives (the metadata lag).
  attachSegment(segment: Segment): void {
    this.segment = segment;
    const onRemote = (rec: VersionRecord) => {
      if (rec.origin === segment.name) return;
      const lag = Math.max(0, (Date.now() - hlcToMillis(rec.hlc)) / 1000);
      this.metadataLag.set({ origin: rec.origin }, lag);
      this.metadataLagSeconds.observe({ origin: rec.origin }, lag);
    };
    segment.on('remote-version', onRemote);
    this.detach.push(() => segment.off('remote-version', onRemote));
  }

  // Counts every chunk read of the segment by where its bytes came from, and times remote
  // fetches. Wraps the reader's `read` and its chunk source (set by the gateway: call after it
  // started); a fetch is attributed to the read that caused it by the context object the reader
  // passes through.
  instrumentReader(segment: Segment): void {
    const reader = segment.reader;
    const fetchedFor = new WeakSet<object>();
    const inner = reader.source;
    if (inner && !(inner as { instrumented?: boolean }).instrumented) {
      const wrapped: ChunkSource & { instrumented: boolean } = {
        instrumented: true,
        fetch: async (cid: CID, ctx: ReadContext) => {
          const t = performance.now();
          let result = 'miss';
          try {
            const bytes = await inner.fetch(cid, ctx);
            if (bytes) {
              result = 'ok';
              fetchedFor.add(ctx);
            }
            return bytes;
          } finally {
            this.chunkFetches.inc({ result });
            this.chunkFetchSeconds.observe({ result }, (performance.now() - t) / 1000);
          }
        },
      };
      reader.source = wrapped;
    }
    const own = Object.getOwnPropertyDescriptor(reader, 'read');
    if (own) return; // already wrapped
    const read = reader.read.bind(reader);
    reader.read = async (cid: CID, ctx: ReadContext): Promise<Buffer> => {
      if (isInlineCid(cid)) {
        this.chunkReads.inc({ source: 'inline' });
        return read(cid, ctx);
      }
      const mine = { ...ctx };
      try {
        const bytes = await read(cid, mine);
        this.chunkReads.inc({ source: fetchedFor.has(mine) ? 'remote' : 'local' });
        return bytes;
      } catch (err) {
        this.chunkReads.inc({ source: 'error' });
        throw err;
      }
    };
    this.detach.push(() => {
      delete (reader as { read?: unknown }).read;
    });
  }

  // Watches an S3 server: `attach` sees each request as it arrives (to name its operation and
  // mark its socket), the returned `onRequest` (S3ServerOptions.onRequest) sees it done, counts it
  // and logs it with its request id.
  s3Observer(o: { domains: readonly string[]; log?: Logger }): {
    attach: (server: Server) => void;
    onRequest: (e: { id: string; method: string; path: string; status: number; ms: number; code?: string }) => void;
  } {
    const attach = (server: Server) => {
      const listener = (req: IncomingMessage, res: ServerResponse) => {
        const id = res.getHeader('x-amz-request-id');
        if (typeof id !== 'string') return;
        const socket = req.socket;
        const op = s3Operation({ method: req.method ?? '', url: req.url ?? '/', host: req.headers.host, domains: o.domains, copySource: req.headers['x-amz-copy-source'] !== undefined });
        // Entries whose onRequest never comes (a server bug) must not pile up.
        if (this.pendingS3.size > 10_000) this.pendingS3.clear();
        this.pendingS3.set(id, { op, socket, mark: this.socketMarks.get(socket) ?? { r: 0, w: 0 }, remote: socket?.remoteAddress });
      };
      server.on('request', listener);
      this.detach.push(() => server.off('request', listener));
    };
    const onRequest = (e: { id: string; method: string; path: string; status: number; ms: number; code?: string }) => {
      const p = this.pendingS3.get(e.id);
      this.pendingS3.delete(e.id);
      const op = p?.op ?? s3Operation({ method: e.method, url: e.path });
      let bytesIn = 0;
      let bytesOut = 0;
      if (p?.socket) {
        const r = p.socket.bytesRead;
        const w = p.socket.bytesWritten;
        bytesIn = Math.max(0, r - p.mark.r);
        bytesOut = Math.max(0, w - p.mark.w);
        this.socketMarks.set(p.socket, { r, w });
      }
      this.s3Requests.inc({ op, status: String(e.status) });
      this.s3Seconds.observe({ op }, e.ms / 1000);
      this.s3BytesIn.inc({ op }, bytesIn);
      this.s3BytesOut.inc({ op }, bytesOut);
      if (o.log) {
        const line = { reqId: e.id, op, method: e.method, path: e.path, status: e.status, ms: Math.round(e.ms * 100) / 100, code: e.code, bytesIn, bytesOut, remote: p?.remote };
        if (e.status >= 500) o.log.error(line, 's3 request failed');
        // An error after the status line went out: the response was cut (often a client gone).
        else if (e.code && e.status < 400) o.log.warn(line, 's3 response cut');
        else o.log.info(line, 's3 request');
      }
    };
    return { attach, onRequest };
  }

  // Totals of S3 bytes (for the console's throughput graph).
  s3Totals(): { bytesIn: number; bytesOut: number; requests: number } {
    return { bytesIn: sumCounter(this.s3BytesIn), bytesOut: sumCounter(this.s3BytesOut), requests: sumCounter(this.s3Requests) };
  }

  // Last observed metadata lag per origin, seconds.
  lagByOrigin(): Record<string, number> {
    return Object.fromEntries(this.metadataLag.entries().map((e) => [e.labels.origin, e.value.n]));
  }

  close(): void {
    for (const d of this.detach.splice(0)) d();
    this.gateway = undefined;
    this.segment = undefined;
    this.pendingS3.clear();
  }
}

function sumCounter(c: Counter): number {
  return c.entries().reduce((n, e) => n + e.value.n, 0);
}

// The process's registry: what /metrics serves.
export const metrics = new StitchMetrics();

export const METRICS_CONTENT_TYPE = CONTENT_TYPE;

// The segments-and-links view: this segment, the segments it links to (up or down, catch-up age,
// what the last catch-up had to bring), origins known only by relay, how much remote data is not
// here yet, and recent throughput sampled from the gateway's and the S3 server's counters.
import type { PeerConfig } from '../isgw/config.ts';
import type { GatewayView, StitchMetrics } from '../metrics/index.ts';
import type { Segment } from '../segment/segment.ts';

export interface ThroughputSample {
  t: number;
  // Per second over the interval that ends at t.
  chunkBytesFetched: number;
  chunkBytesServed: number;
  versionsReceived: number;
  s3BytesIn: number;
  s3BytesOut: number;
  s3Requests: number;
}

interface Totals {
  t: number;
  chunkBytesFetched: number;
  chunkBytesServed: number;
  versionsReceived: number;
  s3BytesIn: number;
  s3BytesOut: number;
  s3Requests: number;
}

// Remote versions whose chunks are not all here, per origin. Counting walks the reference table,
// so it is cached and bounded: a bucket of millions of metadata-only versions costs one capped scan.
const NOT_LOCAL_TTL_MS = 10_000;
const NOT_LOCAL_MAX = 50_000;

export class StatusModel {
  private readonly segment: Segment;
  private readonly gateway: GatewayView | undefined;
  private readonly peers: PeerConfig[];
  private readonly metrics: StitchMetrics;
  private readonly started = Date.now();
  private readonly samples: ThroughputSample[] = [];
  private last: Totals | undefined;
  private timer: NodeJS.Timeout | undefined;
  private notLocal: { at: number; byOrigin: Record<string, { versions: number; bytes: number }>; capped: boolean } | undefined;
  readonly info: { peerId?: string; s3?: string; p2p?: string[]; console?: string };

  constructor(o: {
    segment: Segment; gateway?: GatewayView; peers?: PeerConfig[]; metrics: StitchMetrics;
    info?: { peerId?: string; s3?: string; p2p?: string[] }; sampleMs?: number; keepSamples?: number;
  }) {
    this.segment = o.segment;
    this.gateway = o.gateway;
    this.peers = o.peers ?? [];
    this.metrics = o.metrics;
    this.info = { ...o.info };
    const every = o.sampleMs ?? 5_000;
    const keep = o.keepSamples ?? 120;
    this.sample(keep);
    this.timer = setInterval(() => this.sample(keep), every);
    this.timer.unref();
  }

  close(): void {
    clearInterval(this.timer);
  }

  private totals(): Totals {
    const c = this.gateway?.counters;
    const s3 = this.metrics.s3Totals();
    return {
      t: Date.now(),
      chunkBytesFetched: c?.chunkBytesFetched ?? 0,
      chunkBytesServed: c?.chunkBytesServed ?? 0,
      versionsReceived: c?.versionsReceived ?? 0,
      s3BytesIn: s3.bytesIn,
      s3BytesOut: s3.bytesOut,
      s3Requests: s3.requests,
    };
  }

  private sample(keep: number): void {
    const now = this.totals();
    const prev = this.last;
    this.last = now;
    if (!prev) return;
    const secs = Math.max(0.001, (now.t - prev.t) / 1000);
    const rate = (k: keyof Omit<Totals, 't'>) => Math.max(0, (now[k] - prev[k]) / secs);
    this.samples.push({
      t: now.t,
      chunkBytesFetched: rate('chunkBytesFetched'), chunkBytesServed: rate('chunkBytesServed'), versionsReceived: rate('versionsReceived'),
      s3BytesIn: rate('s3BytesIn'), s3BytesOut: rate('s3BytesOut'), s3Requests: rate('s3Requests'),
    });
    if (this.samples.length > keep) this.samples.splice(0, this.samples.length - keep);
  }

  private notLocalByOrigin(): NonNullable<StatusModel['notLocal']> {
    if (this.notLocal && Date.now() - this.notLocal.at < NOT_LOCAL_TTL_MS) return this.notLocal;
    const byOrigin: Record<string, { versions: number; bytes: number }> = {};
    let seen = 0;
    let capped = false;
    outer: for (const b of this.segment.listBuckets()) {
      for (const vid of this.segment.meta.remoteVersionsMissingChunks(b.name, this.segment.name)) {
        if (seen++ >= NOT_LOCAL_MAX) {
          capped = true;
          break outer;
        }
        const v = this.segment.meta.getVersion(vid);
        if (!v) continue;
        const o = (byOrigin[v.origin] ??= { versions: 0, bytes: 0 });
        o.versions++;
        o.bytes += v.size;
      }
    }
    this.notLocal = { at: Date.now(), byOrigin, capped };
    return this.notLocal;
  }

  view(): unknown {
    const seg = this.segment;
    const status = new Map((this.gateway?.peerStatus() ?? []).map((p) => [p.name, p]));
    const lag = this.metrics.lagByOrigin();
    const vector = seg.sequenceVector();
    const notLocal = this.notLocalByOrigin();
    const now = Date.now();
    const peers = this.peers.map((p) => {
      const s = status.get(p.name);
      const linked = s !== undefined;
      return {
        name: p.name,
        peerId: p.peerId,
        addrs: p.addrs ?? [],
        linked,
        connected: s?.connected ?? false,
        lastCatchUp: s?.lastCatchUp ?? null,
        catchUpAgeSeconds: s?.lastCatchUp !== undefined ? (now - s.lastCatchUp) / 1000 : null,
        lastCatchUpEntries: s?.lastCatchUpEntries ?? 0,
        metadataLagSeconds: lag[p.name] ?? null,
        knownSeq: vector[p.name] ?? 0,
        notLocal: notLocal.byOrigin[p.name] ?? { versions: 0, bytes: 0 },
        links: Object.entries(p.link ?? {}).map(([bucket, pol]) => ({ bucket, mode: pol.mode, direction: pol.direction })),
      };
    });
    const named = new Set([seg.name, ...this.peers.map((p) => p.name)]);
    // Origins in the change log that are not configured peers: segments whose versions came here
    // relayed (a line A-B-C shows C on A).
    const relayed = Object.entries(vector).filter(([o]) => !named.has(o)).map(([name, seq]) => ({
      name, knownSeq: seq, metadataLagSeconds: lag[name] ?? null, notLocal: notLocal.byOrigin[name] ?? { versions: 0, bytes: 0 },
    }));
    return {
      self: {
        name: seg.name, ...this.info, uptimeSeconds: (now - this.started) / 1000, stats: seg.stats(), knownSeq: vector[seg.name] ?? 0,
      },
      peers,
      relayed,
      notLocalCapped: notLocal.capped,
      replicationBacklog: this.gateway?.replicationBacklog ?? 0,
      counters: this.gateway?.counters ?? {},
      throughput: this.samples,
    };
  }
}

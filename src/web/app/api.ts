// The console's JSON API, seen from the browser. Types mirror src/web/browse.ts and status.ts.
import { loginProof } from './sha256.ts';

export type ResidencyState = 'local' | 'partial' | 'metadata-only' | 'none';

export interface Residency {
  state: ResidencyState;
  size: number;
  localBytes: number;
  unknownBytes: number;
  chunks: number;
  localChunks: number;
  manifest: 'inline' | 'tree';
  exact: boolean;
}

export interface VersionRow {
  key: string;
  versionId: string;
  size: number;
  etag: string;
  mtime: number;
  hlc: number;
  hlcTime: number;
  hlcLogical: number;
  origin: string;
  deleted: boolean;
  isLatest?: boolean;
  residency: Residency;
}

export interface Listing {
  bucket: string;
  prefix: string;
  delimiter: string | null;
  limit: number;
  prefixes: string[];
  items: VersionRow[];
  truncated: boolean;
  next: string | null;
}

export interface ObjectVersions {
  bucket: string;
  key: string;
  head: { versionId: string; deleted: boolean } | null;
  versions: VersionRow[];
  truncated: boolean;
  next: string | null;
}

export interface VersionDetail {
  version: VersionRow & { contentType: string; meta: Record<string, string>; headers: Record<string, string>; manifest: 'inline' | 'tree' };
  map: Array<{ local: number; unknown: number }>;
  chunks: Array<{ cid: string; offset: number; length: number; local: boolean | null }>;
  chunksListed: number;
}

export interface Bucket {
  name: string;
  created: number;
  versioning: string;
  publicRead: boolean;
  links: Array<{ peer: string; mode: string; direction: string }>;
}

export interface NotLocal {
  versions: number;
  bytes: number;
}

export interface PeerView {
  name: string;
  peerId: string;
  addrs: string[];
  linked: boolean;
  connected: boolean;
  lastCatchUp: number | null;
  catchUpAgeSeconds: number | null;
  lastCatchUpEntries: number;
  metadataLagSeconds: number | null;
  knownSeq: number;
  notLocal: NotLocal;
  links: Array<{ bucket: string; mode: string; direction: string }>;
}

export interface Throughput {
  t: number;
  chunkBytesFetched: number;
  chunkBytesServed: number;
  versionsReceived: number;
  s3BytesIn: number;
  s3BytesOut: number;
  s3Requests: number;
}

export interface SegmentsView {
  self: {
    name: string; peerId?: string; s3?: string; p2p?: string[]; console?: string; uptimeSeconds: number; knownSeq: number;
    stats: { objects: number; versions: number; logicalBytes: number; storedBytes: number; chunks: number; dedupRatio: number; buckets: number };
  };
  peers: PeerView[];
  relayed: Array<{ name: string; knownSeq: number; metadataLagSeconds: number | null; notLocal: NotLocal }>;
  notLocalCapped: boolean;
  replicationBacklog: number;
  counters: Record<string, number>;
  throughput: Throughput[];
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// Called when any request comes back 401: the app shows the sign-in page.
let onUnauthorized: () => void = () => {};
export function whenSignedOut(fn: () => void): void {
  onUnauthorized = fn;
}

async function call<T>(method: 'GET' | 'POST', path: string, query?: Record<string, string | number | boolean | undefined>, body?: unknown): Promise<T> {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined && v !== '' && v !== false) qs.set(k, String(v));
  const url = qs.size > 0 ? `${path}?${qs}` : path;
  const res = await fetch(url, {
    method,
    credentials: 'same-origin',
    headers: method === 'POST' ? { 'content-type': 'application/json', 'x-stitch-console': '1' } : {},
    body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
  });
  const data = await res.json().catch(() => ({})) as { error?: string; message?: string };
  if (!res.ok) {
    if (res.status === 401 && path !== '/api/login') onUnauthorized();
    throw new ApiError(res.status, data.error ?? 'Error', data.message ?? res.statusText);
  }
  return data as T;
}

export const api = {
  session: () => call<{ accessKeyId: string; segment: string }>('GET', '/api/session'),
  async login(accessKeyId: string, secret: string): Promise<{ accessKeyId: string; segment: string }> {
    const { nonce } = await call<{ nonce: string }>('GET', '/api/login/challenge');
    return call('POST', '/api/login', undefined, { accessKeyId, nonce, proof: loginProof(secret, accessKeyId, nonce) });
  },
  logout: () => call<unknown>('POST', '/api/logout'),
  segments: () => call<SegmentsView>('GET', '/api/segments'),
  buckets: () => call<{ buckets: Bucket[] }>('GET', '/api/buckets'),
  objects: (q: { bucket: string; prefix?: string; after?: string; limit?: number; flat?: boolean }) => call<Listing>('GET', '/api/objects', q),
  object: (q: { bucket: string; key: string; after?: string; limit?: number }) => call<ObjectVersions>('GET', '/api/object', q),
  version: (q: { bucket: string; key: string; versionId?: string }) => call<VersionDetail>('GET', '/api/version', q),
  pin: (q: { bucket: string; key: string; versionId?: string }) => call<{ versionId: string; fetchedChunks: number; residency: Residency }>('POST', '/api/pin', undefined, q),
  unpin: (q: { bucket: string; key: string; versionId?: string }) => call<{ versionId: string; freedBytes: number; residency: Residency }>('POST', '/api/unpin', undefined, q),
  downloadUrl: (q: { bucket: string; key: string; versionId?: string }) => {
    const qs = new URLSearchParams({ bucket: q.bucket, key: q.key });
    if (q.versionId) qs.set('versionId', q.versionId);
    return `/api/download?${qs}`;
  },
};

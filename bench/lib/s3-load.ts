// The client side of bench/s3.ts: one @aws-sdk/client-s3 client per system, configured the same
// for all, and the four workloads (big multipart PUT, big streamed GET, small PUTs and GETs from
// many concurrent clients). Every failure is counted and reported, never retried (maxAttempts 1).
import { createReadStream } from 'node:fs';
import { Agent } from 'node:http';
import { CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Keystream, MiB } from './data.ts';
import type { Endpoint } from './s3-peers.ts';

export const CLIENT_DESCRIPTION =
  'one S3Client per system in the bench process: keep-alive http.Agent, path-style, ' +
  "requestChecksumCalculation/responseChecksumValidation 'WHEN_REQUIRED' (no CRC32 trailers), " +
  'maxAttempts 1 (no retries), SigV4 over plain http (payload SHA-256 signed)';

export interface Client {
  s3: S3Client;
  agent: Agent;
  close(): void;
}

export function makeClient(e: Endpoint, maxSockets: number): Client {
  const agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  const s3 = new S3Client({
    endpoint: e.endpoint,
    region: e.region,
    credentials: { accessKeyId: e.accessKeyId, secretAccessKey: e.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 1,
    requestHandler: { httpAgent: agent, requestTimeout: 120_000, connectionTimeout: 10_000 },
  });
  return {
    s3,
    agent,
    close: () => {
      s3.destroy();
      agent.destroy();
    },
  };
}

export async function createBucket(c: Client, bucket: string): Promise<void> {
  await c.s3.send(new CreateBucketCommand({ Bucket: bucket }));
}

// One small PUT, one single-part multipart upload and GETs of both, before anything is timed:
// connections open, and a server that sets things up lazily (radosgw creates its data and
// multipart pools on first use) does so outside the measurements.
export async function warmUp(c: Client, bucket: string): Promise<void> {
  const body = Buffer.alloc(4096, 1);
  await c.s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'warmup/small', Body: body }));
  const mp = await c.s3.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'warmup/multipart' }));
  const part = await c.s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'warmup/multipart', UploadId: mp.UploadId, PartNumber: 1, Body: body }));
  await c.s3.send(new CompleteMultipartUploadCommand({
    Bucket: bucket, Key: 'warmup/multipart', UploadId: mp.UploadId,
    MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
  }));
  for (const Key of ['warmup/small', 'warmup/multipart']) {
    const res = await c.s3.send(new GetObjectCommand({ Bucket: bucket, Key }));
    await res.Body!.transformToByteArray();
  }
}

export interface Transfer {
  bytes: number;
  secs: number;
}

// Multipart upload of a file, read as a stream, in partSize parts with queueSize parts in flight.
export async function putFile(c: Client, bucket: string, key: string, file: string, size: number, partSize: number, queueSize: number, timeoutMs: number): Promise<Transfer> {
  const abortController = new AbortController();
  const t = setTimeout(() => abortController.abort(new Error(`timed out after ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    const t0 = performance.now();
    const up = new Upload({
      client: c.s3,
      params: { Bucket: bucket, Key: key, Body: createReadStream(file, { highWaterMark: MiB }), ContentLength: size },
      partSize,
      queueSize,
      leavePartsOnError: true,
      abortController,
    });
    await up.done();
    const secs = (performance.now() - t0) / 1000;
    const head = await c.s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    if (head.ContentLength !== size) throw new Error(`HEAD after PUT says ${head.ContentLength} bytes, not ${size}`);
    return { bytes: size, secs };
  } finally {
    clearTimeout(t);
  }
}

// GET of a whole object, streamed and discarded (bytes counted).
export async function getToSink(c: Client, bucket: string, key: string, expect: number, timeoutMs: number): Promise<Transfer> {
  const t0 = performance.now();
  const res = await c.s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }), { abortSignal: AbortSignal.timeout(timeoutMs) });
  let bytes = 0;
  for await (const chunk of res.Body as AsyncIterable<Uint8Array>) bytes += chunk.length;
  const secs = (performance.now() - t0) / 1000;
  if (bytes !== expect) throw new Error(`GET returned ${bytes} bytes, not ${expect}`);
  return { bytes, secs };
}

export interface OpsResult {
  ops: number;
  errors: number;
  firstError?: string;
  secs: number;
  // Per successful op, sorted ascending, in ms.
  latencies: number[];
}

export function opsPerSec(r: OpsResult): number {
  return r.ops / r.secs;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

interface OpsSpec {
  clients: number;
  seconds: number;
  maxOps: number;
}

// `clients` concurrent loops issuing op(i) for i = 0, 1, ... until maxOps ops were issued or
// `seconds` passed; the time counted is until the last op in flight finished.
async function closedLoop(spec: OpsSpec, op: (i: number) => Promise<void>): Promise<OpsResult> {
  const latencies: number[] = [];
  let issued = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + spec.seconds * 1000;
  const worker = async (): Promise<void> => {
    while (issued < spec.maxOps && performance.now() < deadline) {
      const i = issued++;
      const s = performance.now();
      try {
        await op(i);
        latencies.push(performance.now() - s);
      } catch (err) {
        errors++;
        firstError ??= errorText(err);
      }
    }
  };
  await Promise.all(Array.from({ length: spec.clients }, worker));
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, errors, firstError, secs, latencies };
}

// Small PUTs of distinct random bodies (no two alike, so content addressing can't dedup them).
// Returns the keys written successfully, in the order written.
export async function smallPuts(c: Client, bucket: string, prefix: string, objectSize: number, spec: OpsSpec): Promise<OpsResult & { keys: string[] }> {
  const ks = new Keystream(`s3 bench small ${prefix}`);
  const keys: string[] = [];
  const r = await closedLoop(spec, async (i) => {
    const key = `${prefix}/${String(i).padStart(7, '0')}`;
    await c.s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: ks.next(objectSize), ContentLength: objectSize }));
    keys.push(key);
  });
  return { ...r, keys };
}

// Small GETs over the given keys (in a shuffled order, wrapping around), bodies read in full.
export async function smallGets(c: Client, bucket: string, keys: string[], objectSize: number, spec: OpsSpec): Promise<OpsResult> {
  if (keys.length === 0) throw new Error('no objects to read (the PUT phase wrote none)');
  const order = shuffled(keys);
  return await closedLoop(spec, async (i) => {
    const res = await c.s3.send(new GetObjectCommand({ Bucket: bucket, Key: order[i % order.length] }));
    const body = await res.Body!.transformToByteArray();
    if (body.length !== objectSize) throw new Error(`GET returned ${body.length} bytes, not ${objectSize}`);
  });
}

function shuffled<T>(xs: T[]): T[] {
  const out = xs.slice();
  let seed = 0x9e3779b9;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export function errorText(err: unknown): string {
  if (err instanceof Error) {
    const meta = (err as { $metadata?: { httpStatusCode?: number } }).$metadata;
    const status = meta?.httpStatusCode ? ` (HTTP ${meta.httpStatusCode})` : '';
    const name = err.name && err.name !== 'Error' ? `${err.name}: ` : '';
    return `${name}${err.message}${status}`.replace(/\s+/g, ' ');
  }
  return String(err);
}

// The README walk-through on the local world (segments/world.ts) run as a child process: make a
// bucket and put a file on us-west, see it listed on ap-south two shaped links away, read it
// there, then stop the world with `world.ts stop`.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, HeadBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const WORLD = join(ROOT, 'segments/world.ts');
const KEY = { accessKeyId: 'STITCHWORLDWALK00001', secretAccessKey: 'stitch-world-walkthrough-secret-0123456789' };
// Small latencies keep the test quick; the sum is what a version crosses from us-west to ap-south.
const LATENCY = [5, 10];

interface Ready {
  ready: true;
  pid: number;
  segments: Array<{ name: string; s3: string; peerId: string }>;
}

let dir: string;
let child: ChildProcess;
let ready: Ready;
let stderr = '';
const clients = new Map<string, S3Client>();

function s3(name: string): S3Client {
  let c = clients.get(name);
  if (!c) {
    const seg = ready.segments.find((s) => s.name === name)!;
    c = new S3Client({ endpoint: seg.s3, region: 'us-east-1', credentials: KEY, forcePathStyle: true });
    clients.set(name, c);
  }
  return c;
}

async function until<T>(fn: () => Promise<T | undefined>, timeoutMs: number, what: string, everyMs = 10): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stitch-world-'));
  // Ports below the ephemeral range, away from the default world (9101-9312).
  const offset = 11_000 + 100 * Math.floor(Math.random() * 120);
  child = spawn(NODE, [WORLD, '--dir', dir, '--latency', LATENCY.join(','), '--port-offset', String(offset), '--json'], {
    cwd: ROOT,
    env: { ...process.env, STITCH_ACCESS_KEY_ID: KEY.accessKeyId, STITCH_SECRET_ACCESS_KEY: KEY.secretAccessKey },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => (stderr += d));
  ready = await new Promise<Ready>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`world not ready after 90 s:\n${stderr}`)), 90_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return;
      clearTimeout(t);
      resolve(JSON.parse(line) as Ready);
    });
    child.once('exit', (code) => reject(new Error(`world exited (${code}):\n${stderr}`)));
  });
}, 120_000);

afterAll(async () => {
  for (const c of clients.values()) c.destroy();
  if (child && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('local world walk-through', () => {
  it('puts on us-west, lists and reads on ap-south, then stops', async () => {
    expect(ready.segments.map((s) => s.name)).toEqual(['us-west', 'eu-central', 'ap-south']);

    // aws s3 mb s3://demo on us-west; ap-south learns the bucket through eu-central.
    await s3('us-west').send(new CreateBucketCommand({ Bucket: 'demo' }));
    await until(() => s3('ap-south').send(new HeadBucketCommand({ Bucket: 'demo' })), 10_000, 'the bucket on ap-south');
    // Let ap-south's subscription to the bucket reach eu-central before the put's gossip does.
    await new Promise((r) => setTimeout(r, 4 * (LATENCY[0] + LATENCY[1]) + 200));

    // aws s3 cp hello.bin s3://demo/ on us-west.
    const body = randomBytes(3 * 1024 * 1024 + 17);
    await s3('us-west').send(new PutObjectCommand({ Bucket: 'demo', Key: 'hello.bin', Body: body }));
    const acked = performance.now();

    // aws s3 ls s3://demo/ on ap-south: listed within 1 s plus the links' latency.
    const listed = await until(async () => {
      const r = await s3('ap-south').send(new ListObjectsV2Command({ Bucket: 'demo' }));
      return r.Contents?.find((o) => o.Key === 'hello.bin');
    }, 10_000, 'hello.bin listed on ap-south');
    const lagMs = performance.now() - acked;
    expect(lagMs).toBeLessThan(1000 + LATENCY[0] + LATENCY[1]);
    expect(listed.Size).toBe(body.length);

    // aws s3 cp s3://demo/hello.bin . on ap-south: fetched lazily through eu-central.
    const got = await s3('ap-south').send(new GetObjectCommand({ Bucket: 'demo', Key: 'hello.bin' }));
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    expect(bytes.length).toBe(body.length);
    expect(bytes.equals(body)).toBe(true);

    // node segments/world.ts stop: the world exits cleanly and removes its pid file.
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await promisify(execFile)(NODE, [WORLD, 'stop', '--dir', dir], { cwd: ROOT });
    expect(await exited).toBe(0);
    expect(existsSync(join(dir, 'world.pid'))).toBe(false);
  });
});

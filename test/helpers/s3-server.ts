// A real `stitch serve` child process for the S3 integration tests: fresh temp data dir, test
// credentials from the environment, ready when it prints its JSON line on stdout.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';

export const ROOT = resolve(import.meta.dirname, '../..');
export const NODE = join(ROOT, 'node_modules/.bin/node');
export const MAIN = join(ROOT, 'src/cli/main.ts');

export const ACCESS_KEY_ID = 'STITCHTESTKEY0000001';
export const SECRET_ACCESS_KEY = 'stitch-test-secret-0123456789abcdefghijklm';
export const REGION = 'us-east-1';

export const KiB = 1024;
export const MiB = 1024 * 1024;

export interface S3ServerProcess {
  endpoint: string;
  dataDir: string;
  pid: number;
  child: ChildProcess;
  // Everything the server wrote on stderr so far (for diagnosing failures).
  stderr(): string;
  alive(): boolean;
  // SIGTERM, wait for exit; removes the data dir unless keepData.
  stop(opts?: { keepData?: boolean }): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

// `stitch serve` also starts the inter-segment gateway, by default on a fixed port (9010): test
// servers run side by side, so it gets an ephemeral port too (when this build has the option).
let p2pOption: Promise<boolean> | undefined;
function serveHasP2pOption(): Promise<boolean> {
  p2pOption ??= promisify(execFile)(NODE, [MAIN, 'serve', '--help'], { cwd: ROOT })
    .then(({ stdout }) => stdout.includes('--p2p'), () => false);
  return p2pOption;
}

export async function startS3Server(opts: { dataDir?: string; env?: NodeJS.ProcessEnv } = {}): Promise<S3ServerProcess> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'stitch-s3it-'));
  const args = [MAIN, '--data', dataDir, 'serve', '--s3', '127.0.0.1:0'];
  if (await serveHasP2pOption()) args.push('--p2p', '/ip4/127.0.0.1/tcp/0');
  const child = spawn(NODE, args, {
    cwd: ROOT,
    env: {
      ...process.env,
      STITCH_ACCESS_KEY_ID: ACCESS_KEY_ID,
      STITCH_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    err += d;
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
    child.once('exit', (code, signal) => res({ code, signal }));
  });
  let exitedYet = false;
  // Never outlive the test process, whatever happens to it.
  const reap = () => {
    if (!exitedYet) child.kill('SIGKILL');
  };
  process.once('exit', reap);
  void exited.then(() => {
    exitedYet = true;
    process.off('exit', reap);
  });

  const endpoint = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`stitch serve not ready after 30 s; stderr:\n${err}`)), 30_000);
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { ready?: boolean; s3?: string };
        if (msg.ready && msg.s3) {
          clearTimeout(timer);
          res(msg.s3);
        }
      } catch {
        // not the ready line
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      rej(new Error(`stitch serve exited (${code ?? signal}) before ready; stderr:\n${err}`));
    });
  }).catch(async (e: unknown) => {
    reap();
    await exited;
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  });

  return {
    endpoint,
    dataDir,
    pid: child.pid!,
    child,
    stderr: () => err,
    alive: () => {
      if (exitedYet) return false;
      try {
        process.kill(child.pid!, 0);
        return true;
      } catch {
        return false;
      }
    },
    async stop(o = {}) {
      if (!exitedYet) child.kill('SIGTERM');
      const kill = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const r = await exited;
      clearTimeout(kill);
      if (!o.keepData && !opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
      return r;
    },
  };
}

export function s3client(endpoint: string, o: { accessKeyId?: string; secretAccessKey?: string; maxAttempts?: number } = {}): S3Client {
  return new S3Client({
    endpoint,
    region: REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: o.accessKeyId ?? ACCESS_KEY_ID, secretAccessKey: o.secretAccessKey ?? SECRET_ACCESS_KEY },
    // Failures must surface, not be retried into passing.
    maxAttempts: o.maxAttempts ?? 1,
  });
}

// `stitch <args> --data DIR --json` (read-only commands beside a running server are fine).
export async function stitchJson<T>(dataDir: string, ...args: string[]): Promise<T> {
  const { stdout } = await promisify(execFile)(NODE, [MAIN, '--data', dataDir, '--json', ...args], { cwd: ROOT });
  return JSON.parse(stdout) as T;
}

// Incompressible bytes, distinct on every call (so no test dedups against another's data).
export function randomData(size: number): Buffer {
  return randomBytes(size);
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const md5hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

// S3's multipart ETag: md5 of the concatenated binary md5s, dash, part count.
export function multipartEtag(parts: Uint8Array[]): string {
  const md5s = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()));
  return `${createHash('md5').update(md5s).digest('hex')}-${parts.length}`;
}

// The error an SDK v3 call fails with: its S3 code and HTTP status.
export async function s3Failure(p: Promise<unknown>): Promise<{ name: string; status: number | undefined; err: Error & { $metadata?: { httpStatusCode?: number }; Code?: string } }> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number }; Code?: string };
    return { name: err.Code ?? err.name, status: err.$metadata?.httpStatusCode, err };
  }
  throw new Error('expected the S3 call to fail, it succeeded');
}

// For afterAll: stops the server whatever state it is in (no process or data dir is left behind),
// then fails if it died during the tests or did not exit cleanly on SIGTERM.
export async function stopChecked(server: S3ServerProcess | undefined): Promise<void> {
  if (!server) return;
  const alive = server.alive();
  const r = await server.stop();
  if (!alive) throw new Error(`the server died during the tests; stderr:\n${server.stderr().slice(-4000)}`);
  if (r.code !== 0) {
    throw new Error(`the server did not exit cleanly on SIGTERM (${r.code ?? r.signal}); stderr:\n${server.stderr().slice(-4000)}`);
  }
}

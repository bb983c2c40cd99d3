// Shell helpers for tests that drive a FUSE mount served by the test process itself. Everything
// here is asynchronous: a synchronous call into our own mount would block the JS thread that has
// to answer it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '../..');
// Children run TypeScript directly, which needs the pinned Node 24 whatever runs the tests.
const PINNED_NODE = path.join(ROOT, 'node_modules/.bin/node');
const NODE = existsSync(PINNED_NODE) ? PINNED_NODE : process.execPath;

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// Runs `sh -c script`, never rejecting: tests look at code and stderr.
export function sh(script: string, opts: { timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', script], { maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 120_000 }, (err, stdout, stderr) => {
      const e = err as (Error & { code?: number | string; signal?: NodeJS.Signals }) | null;
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, signal: e?.signal ?? null, stdout, stderr });
    });
  });
}

export async function mountedAt(mountpoint: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === mountpoint);
}

// Lazily detaches whatever is mounted there (a leftover of a crashed run); quiet if nothing is.
export async function forceUnmount(mountpoint: string): Promise<void> {
  for (let i = 0; i < 5 && (await mountedAt(mountpoint)); i++) await sh(`umount -l '${mountpoint}'`);
}

export function startChild(args: string[]): { child: ChildProcess; ready: Promise<void>; exited: Promise<RunResult> } {
  const child = spawn(NODE, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d;
      if (stdout.includes('ready\n')) resolve();
    });
    child.on('exit', () => reject(new Error(`child exited before ready: ${stderr}`)));
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const exited = new Promise<RunResult>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  ready.catch(() => {});
  return { child, ready, exited };
}

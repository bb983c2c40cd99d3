import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const ROOT = join(import.meta.dirname, '..', '..');

export const TEST_KEY = { id: 'STITCHBENCHKEY000001', secret: 'stitch-bench-secret-key-000000000000000' };

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface StitchServer {
  endpoint: string;
  pid: number;
  dataDir: string;
  // Peak resident set of the server process so far, from the kernel's own high-water mark.
  peakRssMiB(): number;
  rssMiB(): number;
  stop(): Promise<void>;
}

function statusField(pid: number, field: string): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${field}:`));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : NaN;
}

// A real `stitch serve` child on loopback with a fresh data dir and a known key.
export async function startStitch(dir = tmpdir()): Promise<StitchServer> {
  const dataDir = mkdtempSync(join(dir, 'stitch-bench-'));
  const s3Port = await freePort();
  const p2pPort = await freePort();
  const child: ChildProcess = spawn(
    join(ROOT, 'node_modules', '.bin', 'node'),
    [join(ROOT, 'src', 'cli', 'main.ts'), '--data', dataDir, 'serve', '--s3', `127.0.0.1:${s3Port}`, '--p2p', `/ip4/127.0.0.1/tcp/${p2pPort}`],
    { env: { ...process.env, STITCH_ACCESS_KEY_ID: TEST_KEY.id, STITCH_SECRET_ACCESS_KEY: TEST_KEY.secret }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const ready = await new Promise<{ s3: string }>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      try {
        const msg = JSON.parse(line) as { ready?: boolean; s3: string };
        if (msg.ready) resolve(msg);
      } catch {
        // not the readiness line
      }
    });
    child.once('exit', (code) => reject(new Error(`stitch serve exited with ${code} before it was ready`)));
  });
  const pid = child.pid!;
  return {
    endpoint: ready.s3,
    pid,
    dataDir,
    peakRssMiB: () => statusField(pid, 'VmHWM'),
    rssMiB: () => statusField(pid, 'VmRSS'),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

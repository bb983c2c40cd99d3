// Timing, the machine description for table headers, and small filesystem helpers for benchmarks.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function timed<T>(fn: () => Promise<T> | T): Promise<{ secs: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { secs: (performance.now() - t0) / 1000, value };
}

// MB/s in decimal megabytes, as disks and networks are quoted.
export function mbps(bytes: number, secs: number): number {
  return bytes / 1e6 / secs;
}

// Runs a command, throwing with its stderr when it fails.
export function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr.toString().trim()}`);
}

// Global sync(1): flushes every dirty page of the machine, not only ours.
export function syncAll(): void {
  run('sync', []);
}

export function machine(): string {
  let cpu = 'unknown cpu';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {
    // not Linux
  }
  return `${availableParallelism()} cores, ${cpu}`;
}

// "ext4 on /dev/vda" for the filesystem holding path.
export function fsType(path: string): string {
  const r = spawnSync('findmnt', ['-n', '-o', 'FSTYPE,SOURCE', '-T', path]);
  const [type, source] = r.status === 0 ? r.stdout.toString().trim().split(/\s+/) : [];
  return type ? `${type} on ${source}` : 'unknown fs';
}

// Total size and count of regular files under dir.
export function duFiles(dir: string): { bytes: number; files: number; largest: number } {
  let bytes = 0;
  let files = 0;
  let largest = 0;
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const size = statSync(p).size;
        bytes += size;
        files++;
        largest = Math.max(largest, size);
      }
    }
  };
  walk(dir);
  return { bytes, files, largest };
}

// Version of an installed package, looked up the way Node would from `from` (nested first).
export function packageVersion(name: string, from = REPO_ROOT): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const p = join(dir, 'node_modules', name, 'package.json');
    if (existsSync(p)) return (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
    if (dirname(dir) === dir) return '?';
  }
}

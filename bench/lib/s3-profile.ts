// Top functions by self time in a V8 .cpuprofile (as written by node --cpu-prof).
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { REPO_ROOT } from './sys.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

// A time window in microseconds of CLOCK_MONOTONIC, the clock of both V8's profiler and
// process.hrtime(), so a window taken in one process selects samples of another.
export interface Window {
  startUs: number;
  endUs: number;
}

export function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

export interface HotSpot {
  name: string;
  ms: number;
  // Share of the busy (non-idle) time.
  share: number;
}

export function hotSpots(file: string, top = 10, window?: Window): { busyMs: number; idleMs: number; spots: HotSpot[] } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (window && (t < window.startUs || t >= window.endUs)) continue;
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    const f = byId.get(p.samples[i])?.callFrame;
    if (!f) continue;
    if (f.functionName === '(idle)') {
      idle += dt;
      continue;
    }
    busy += dt;
    const where = f.url ? ` ${shortUrl(f.url)}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const spots = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, ms]) => ({ name, ms, share: busy > 0 ? ms / busy : 0 }));
  return { busyMs: busy, idleMs: idle, spots };
}

function shortUrl(url: string): string {
  const path = url.startsWith('file://') ? new URL(url).pathname : url;
  return path.startsWith(REPO_ROOT) ? relative(REPO_ROOT, path) : path.replace(/^.*node_modules\//, '');
}

// `stitch` commands as child processes, for the mount tests that kill, signal and restart them.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ROOT } from './mount-tools.ts';
import { sh, type RunResult } from './mount-tools.ts';

export const NODE = `${ROOT}/node_modules/.bin/node`;
export const MAIN = `${ROOT}/src/cli/main.ts`;

export interface StitchChild {
  child: ChildProcess;
  // The JSON line it printed when ready.
  ready: Record<string, unknown>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr(): string;
}

// Starts `stitch --data DIR ARGS...` and waits for its {"ready":true,...} line on stdout.
export async function startStitch(dataDir: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<StitchChild> {
  const child = spawn(NODE, [MAIN, '--data', dataDir, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stitch ${args[0]} not ready after 30 s: ${err}`)), 30_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.ready) {
          clearTimeout(timer);
          resolve(msg);
        }
      } catch {
        // another line
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`stitch ${args[0]} exited (${code ?? signal}) before ready: ${err}`));
    });
  });
  return { child, ready, exited, stderr: () => err };
}

// `stitch --data DIR ARGS...` to completion.
export function stitch(dataDir: string, ...args: string[]): Promise<RunResult> {
  return sh(`'${NODE}' '${MAIN}' --data '${dataDir}' ${args.map((a) => `'${a}'`).join(' ')}`);
}

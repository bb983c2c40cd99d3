// rsync as the reference for syncing a changed file: a daemon on loopback serving a temp module,
// pulled with `rsync --stats` (delta-transfer: the receiver sends block checksums of its copy, the
// sender answers with literal data and block matches). Bytes are rsync's own "Total bytes
// sent/received" (application bytes, no TCP/IP headers), from the client's side.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

export interface RsyncStats {
  // Client -> daemon (block checksums, file list requests) and daemon -> client (literal data, tokens).
  sent: number;
  received: number;
  literal: number;
  matched: number;
  secs: number;
}

export function rsyncVersion(): string {
  const r = spawnSync('rsync', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? (/version\s+(\S+)/.exec(r.stdout)?.[1] ?? '?') : 'missing';
}

export class RsyncDaemon {
  readonly module = 'geo';
  readonly srcDir: string;
  private readonly child: ChildProcess;
  readonly port: number;

  private constructor(child: ChildProcess, port: number, srcDir: string) {
    this.child = child;
    this.port = port;
    this.srcDir = srcDir;
  }

  // Serves dir/src read-only as module `geo` on 127.0.0.1:port.
  static async start(dir: string, port: number): Promise<RsyncDaemon> {
    const srcDir = join(dir, 'src');
    mkdirSync(srcDir, { recursive: true });
    const conf = join(dir, 'rsyncd.conf');
    writeFileSync(conf, [
      `pid file = ${join(dir, 'rsyncd.pid')}`,
      'use chroot = no',
      `uid = ${process.getuid?.() ?? 0}`,
      `gid = ${process.getgid?.() ?? 0}`,
      `log file = ${join(dir, 'rsyncd.log')}`,
      '[geo]',
      `  path = ${srcDir}`,
      '  read only = yes',
      '',
    ].join('\n'));
    const child = spawn('rsync', ['--daemon', '--no-detach', `--config=${conf}`, `--port=${port}`, '--address=127.0.0.1'], { stdio: 'ignore' });
    const d = new RsyncDaemon(child, port, srcDir);
    const until = Date.now() + 10_000;
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const s = connect({ port, host: '127.0.0.1' }, () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      });
      if (ok) return d;
      if (child.exitCode !== null || Date.now() > until) {
        d.stop();
        throw new Error(`rsync daemon did not start on port ${port} (see ${join(dir, 'rsyncd.log')})`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  // Pulls module file `name` to `dest` (delta transfer against dest if it exists).
  pull(name: string, dest: string): RsyncStats {
    const t0 = performance.now();
    const r = spawnSync('rsync', ['-t', '--no-whole-file', '--stats', `rsync://127.0.0.1:${this.port}/${this.module}/${name}`, dest], { encoding: 'utf8' });
    const secs = (performance.now() - t0) / 1000;
    if (r.status !== 0) throw new Error(`rsync exited ${r.status}: ${r.stderr.trim()}`);
    const num = (label: string) => {
      const m = new RegExp(`${label}:\\s*([\\d,]+)`).exec(r.stdout);
      if (!m) throw new Error(`rsync --stats: no '${label}' in:\n${r.stdout}`);
      return Number(m[1].replaceAll(',', ''));
    };
    return { sent: num('Total bytes sent'), received: num('Total bytes received'), literal: num('Literal data'), matched: num('Matched data'), secs };
  }

  stop(): void {
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
  }
}

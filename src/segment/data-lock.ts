import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { StitchError } from '../core/errors.ts';

// One writing process per data directory: the in-process guards (GC against in-flight puts,
// change-log sequence numbers) assume it. Readers need no lock: SQLite WAL serves them alongside.
// Lock files this process holds: a LOCK naming our own pid is stale (a previous process that had
// the same pid, as PID 1 in a container does) unless it is in here, i.e. a second writable open
// of the same directory in this process, which would run two sets of in-process guards.
const heldHere = new Set<string>();

export class DataLock {
  private readonly path: string;
  private released = false;
  private constructor(path: string) {
    this.path = path;
  }

  static acquire(dataDir: string): DataLock {
    const path = resolve(join(dataDir, 'LOCK'));
    if (heldHere.has(path)) {
      throw new StitchError('SegmentLocked', `segment ${dataDir} is already open for writing in this process`);
    }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
        heldHere.add(path);
        return new DataLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const pid = Number(readFileSync(path, 'utf8'));
        if (pid && pid !== process.pid && alive(pid)) {
          throw new StitchError('SegmentLocked', `segment ${dataDir} is in use by process ${pid} (stop it first, or use its S3 endpoint)`);
        }
        // Left by a process that died (kill -9): safe to take over.
        unlinkSync(path);
      }
    }
    throw new StitchError('SegmentLocked', `could not lock ${dataDir}`);
  }

  // Idempotent: a second release must not remove a LOCK another open has taken since.
  release(): void {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.path);
    try {
      unlinkSync(this.path);
    } catch {
      // Already gone: nothing to release.
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

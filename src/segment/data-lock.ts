import { openSync, readFileSync, unlinkSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { StitchError } from '../core/errors.ts';

// One writing process per data directory: the in-process guards (GC against in-flight puts,
// change-log sequence numbers) assume it. Readers need no lock: SQLite WAL serves them alongside.
export class DataLock {
  private readonly path: string;
  private constructor(path: string) {
    this.path = path;
  }

  static acquire(dataDir: string): DataLock {
    const path = join(dataDir, 'LOCK');
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx');
        writeSync(fd, String(process.pid));
        closeSync(fd);
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

  release(): void {
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

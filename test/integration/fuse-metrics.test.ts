import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metrics } from '../../src/metrics/index.ts';
import { mountSegment, run, type MountedSegment } from '../helpers/fuse-mount.ts';

// The console's /metrics lists FUSE operations: every handler the mount serves is counted by name
// and result, through the one wrapper the mount installs.
function count(op: string, result: 'ok' | 'error'): number {
  const line = metrics.render().split('\n').find((l) => l.startsWith(`stitch_fuse_operations_total{op="${op}",result="${result}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('FUSE operations in /metrics', () => {
  let m: MountedSegment;
  beforeAll(async () => {
    m = await mountSegment();
  });
  afterAll(async () => {
    await m?.cleanup();
  });

  it('counts served operations by name, and failures as errors', async () => {
    const writes = count('write', 'ok');
    const creates = count('create', 'ok');
    const rmdirErrors = count('rmdir', 'error');
    await run(`printf 'hello' > '${m.mnt}/bkt/one.txt' && cat '${m.mnt}/bkt/one.txt' >/dev/null
      mkdir '${m.mnt}/bkt/d' && touch '${m.mnt}/bkt/d/f' && ! rmdir '${m.mnt}/bkt/d' 2>/dev/null`);
    expect(count('write', 'ok')).toBeGreaterThan(writes);
    expect(count('create', 'ok')).toBeGreaterThan(creates);
    // rmdir of a non-empty directory is answered ENOTEMPTY: an error of rmdir.
    expect(count('rmdir', 'error')).toBeGreaterThan(rmdirErrors);
  });
});

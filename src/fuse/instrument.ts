import type { FuseOperations } from '../native/fuse-types.ts';
import { metrics } from '../metrics/index.ts';

const OPS = [
  'init', 'destroy', 'lookup', 'forget', 'getattr', 'setattr', 'readlink', 'mknod', 'mkdir', 'unlink', 'rmdir',
  'symlink', 'rename', 'link', 'open', 'read', 'write', 'flush', 'release', 'fsync', 'opendir', 'readdir',
  'releasedir', 'fsyncdir', 'statfs', 'access', 'create', 'fallocate',
] as const;

// The filesystem's handlers, each counted in /metrics by name, result and time. Only the handlers
// the filesystem implements are passed on: the binding registers exactly those with libfuse.
export function instrumented(fs: FuseOperations): FuseOperations {
  const out: Record<string, unknown> = {};
  const source = fs as unknown as Record<string, unknown>;
  for (const name of OPS) {
    const fn = source[name];
    if (typeof fn !== 'function') continue;
    out[name] = (...args: unknown[]) => {
      const started = performance.now();
      const done = (ok: boolean) => metrics.fuseOp(name, performance.now() - started, ok);
      let result: unknown;
      try {
        result = (fn as (...a: unknown[]) => unknown).apply(fs, args);
      } catch (err) {
        done(false);
        throw err;
      }
      if (result instanceof Promise) {
        return result.then((v) => (done(true), v), (err) => (done(false), Promise.reject(err)));
      }
      done(true);
      return result;
    };
  }
  return out as FuseOperations;
}

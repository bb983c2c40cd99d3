import { createRequire } from 'node:module';
import { JsCutScanner, type CutScanner, type ScannerConfig, type ScanState } from '../core/chunker.ts';

// The C hot loop of JsCutScanner (native/cdc), about three times its speed on random data; same cut points, which the
// tests check against the JS reference. The JS scanner stays the fallback, so a machine without a
// compiler still chunks (more slowly) and writes the same objects.

interface CdcAddon {
  configure(gear: Int32Array, min: number, avg: number, max: number, maskS: number, maskL: number): object;
  scan(handle: object, buf: Uint8Array, start: number, state: ScanState): number;
}

let addon: CdcAddon | null | undefined;
let loadError: unknown = null;

function load(): CdcAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)('../../native/cdc/build/Release/cdc.node') as CdcAddon;
    } catch (err) {
      addon = null;
      loadError = err;
    }
  }
  return addon;
}

// Why the addon is unavailable (null when it loaded or was not tried yet): for logs and test failures.
export function nativeCdcLoadError(): unknown {
  load();
  return loadError;
}

export function nativeCutScanner(config: ScannerConfig): CutScanner | null {
  const cdc = load();
  if (cdc === null) return null;
  const { gear, min, avg, max, maskS, maskL } = config;
  const handle = cdc.configure(gear, min, avg, max, maskS, maskL);
  const scan = cdc.scan;
  return { scan: (buf, start, state) => scan(handle, buf, start, state) };
}

export function cutScannerFor(config: ScannerConfig): CutScanner {
  return nativeCutScanner(config) ?? new JsCutScanner(config);
}

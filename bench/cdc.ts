// JS vs native FastCDC cut-point scanning over random data, default chunk sizes.
// Run: node_modules/.bin/node bench/cdc.ts [MiB]
import { randomFillSync } from 'node:crypto';
import { JsCutScanner, cutPoints, newScanState, scannerConfig, type CutScanner } from '../src/core/chunker.ts';
import { nativeCdcLoadError, nativeCutScanner } from '../src/native/cdc.ts';

const MiB = 1024 * 1024;
const size = Number(process.argv[2] ?? 512) * MiB;
const ROUNDS = 3;

const data = randomFillSync(new Uint8Array(size));
const config = scannerConfig();

// The ingest path feeds pieces, not one big buffer; this shows what the per-call overhead costs.
function cutsInPieces(scanner: CutScanner, piece: number): number {
  const state = newScanState();
  let cuts = 0;
  for (let o = 0; o < data.length; o += piece) {
    const buf = data.subarray(o, o + piece);
    for (let start = 0; start < buf.length; ) {
      const cut = scanner.scan(buf, start, state);
      if (cut < 0) break;
      cuts++;
      start = cut;
    }
  }
  return cuts + (state[0] > 0 ? 1 : 0);
}

function best(run: () => number): { mbps: number; chunks: number } {
  let bestMs = Infinity;
  let chunks = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t0 = performance.now();
    chunks = run();
    bestMs = Math.min(bestMs, performance.now() - t0);
  }
  return { mbps: size / 1e6 / (bestMs / 1000), chunks };
}

const js = new JsCutScanner(config);
const native = nativeCutScanner(config);
const rows: [string, { mbps: number; chunks: number }][] = [
  ['JsCutScanner', best(() => cutPoints(data, js).length)],
];
if (native === null) {
  console.log(`native addon not available: ${String(nativeCdcLoadError())}`);
} else {
  rows.push(['native', best(() => cutPoints(data, native).length)]);
  rows.push(['native, 64 KiB pieces', best(() => cutsInPieces(native, 64 * 1024))]);
}

console.log(`FastCDC scan, ${size / MiB} MiB random data, min/avg/max ${config.min / 1024}/${config.avg / 1024}/${config.max / 1024} KiB, best of ${ROUNDS}`);
console.log(`${'scanner'.padEnd(24)}${'MB/s'.padStart(8)}${'chunks'.padStart(9)}${'vs JS'.padStart(8)}`);
for (const [name, r] of rows) {
  console.log(`${name.padEnd(24)}${r.mbps.toFixed(0).padStart(8)}${String(r.chunks).padStart(9)}${(r.mbps / rows[0][1].mbps).toFixed(2).padStart(7)}x`);
}

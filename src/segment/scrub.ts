import { parseCid, verifyChunk } from '../core/cid.ts';
import type { Segment } from './segment.ts';

export interface ScrubReport {
  checked: number;
  bytes: number;
  missing: string[];
  corrupt: string[];
  repaired: string[];
}

// Reads back every chunk this segment believes it holds and checks it against its CID. With
// `repair`, each damaged one is asked of the chunk source (another segment) and rewritten.
export async function scrub(segment: Segment, opts: { repair?: boolean } = {}): Promise<ScrubReport> {
  const report: ScrubReport = { checked: 0, bytes: 0, missing: [], corrupt: [], repaired: [] };
  for (const { cid: name } of segment.meta.localChunks()) {
    const cid = parseCid(name);
    const bytes = await segment.store.get(cid);
    report.checked++;
    if (bytes && verifyChunk(cid, bytes)) {
      report.bytes += bytes.length;
      continue;
    }
    (bytes ? report.corrupt : report.missing).push(name);
    if (opts.repair && segment.reader.source) {
      try {
        await segment.reader.read(cid, { bucket: '', key: '', vid: '' });
        report.repaired.push(name);
      } catch {
        // Stays listed as damaged: no source had good bytes.
      }
    }
  }
  return report;
}

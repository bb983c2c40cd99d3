import type { Segment } from './segment.ts';

// A chunk younger than this is never collected even when unreferenced: it may belong to a write
// that another process (a second stitch process of the same segment, a restore tool) has not
// committed yet. An hour is far longer than any single put takes.
export const DEFAULT_GC_GRACE_MS = 60 * 60 * 1000;

export interface GcReport {
  scanned: number;
  deleted: number;
  freedBytes: number;
  kept: number;
}

// Mark and sweep. The mark set is a snapshot; before each removal the chunk is checked again,
// synchronously, against committed references and the in-flight guard, so a put that commits or
// starts reusing a chunk during the sweep is never robbed of it.
export async function collectGarbage(segment: Segment, graceMs = DEFAULT_GC_GRACE_MS): Promise<GcReport> {
  const marked = new Set<string>(segment.meta.referencedCids());
  const report: GcReport = { scanned: 0, deleted: 0, freedBytes: 0, kept: 0 };
  const cutoff = Date.now() - graceMs;
  for await (const chunk of segment.store.list()) {
    report.scanned++;
    if (marked.has(chunk.cid) || chunk.mtimeMs > cutoff) {
      report.kept++;
      continue;
    }
    if (segment.guard.isHeld(chunk.cid) || segment.meta.isReferenced(chunk.cid)) {
      report.kept++;
      continue;
    }
    segment.store.deleteSync(chunk.cid);
    segment.meta.removeLocalChunk(chunk.cid);
    report.deleted++;
    report.freedBytes += chunk.size;
  }
  return report;
}

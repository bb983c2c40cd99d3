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
    // Inventory first, then the file: a crash in between leaves an unlisted orphan file (garbage,
    // rewritten by the next put of it), never a listed chunk without a file, which puts would
    // dedup against (isLocal) and commit versions that cannot be read.
    segment.meta.removeLocalChunk(chunk.cid);
    segment.store.deleteSync(chunk.cid);
    report.deleted++;
    report.freedBytes += chunk.size;
  }
  return report;
}

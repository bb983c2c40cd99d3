import type { Command } from 'commander';
import { residencyOf, type Residency } from '../../web/residency.ts';
import { print, withSegment, type GlobalOptions } from '../open.ts';
import { parseTarget } from '../target.ts';

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

// Residency in a listing: exact for inline manifests (one indexed query), a small budget of local
// reads for manifest trees (the rest reported as unknown); never a fetch from a peer.
const BUDGET = { maxChecks: 256, maxBlocks: 4 };

// `--segment NAME`: what NAME holds, as far as this segment can know from its own metadata:
//  - versions whose origin is NAME: an origin keeps the data of its own versions (its chunks are
//    stored before the version exists; unpin and GC never drop chunks its own versions use);
//  - when NAME is this segment, also versions of other origins whose chunks are here, fully or
//    partly (pinned, replicated, or read before).
// Copies that another segment keeps of a third segment's data are not knowable here: segments
// gossip versions, not where chunks are cached.
function holds(name: string, self: string, origin: string, r: Residency): boolean {
  if (origin === name) return true;
  return name === self && (r.state === 'local' || r.state === 'partial');
}

export function registerLs(program: Command, g: () => GlobalOptions): void {
  program.command('ls')
    .argument('[target]', 'BUCKET[/PREFIX]; buckets when omitted')
    .option('-r, --recursive', 'every key under the prefix, not folded at /')
    .option('--versions', 'every version, newest first, with delete markers')
    .option('--segment <name>', 'only what segment NAME holds: versions it wrote, and (for this segment) versions whose data is here; implies -r')
    .description('list buckets, objects or versions, with where their data is (residency) and which segment wrote them (origin)')
    .action(async (target: string | undefined, o: { recursive?: boolean; versions?: boolean; segment?: string }) => {
      await withSegment(g(), 'read', async (s) => {
        if (!target) {
          const buckets = s.listBuckets();
          print(g(), buckets, () => buckets.map((b) => `${iso(b.created)}  ${b.name}`).join('\n'));
          return;
        }
        const { bucket, key: prefix } = parseTarget(target, false);
        const delimiter = o.recursive || o.segment !== undefined ? undefined : '/';
        const rows: unknown[] = [];
        const lines: string[] = [];
        let after: string | undefined;
        let afterVersion: string | undefined;
        // Page through the whole listing; each page is one bounded range scan.
        for (;;) {
          const page = o.versions
            ? s.versions(bucket, { prefix, delimiter, after, afterVersion })
            : s.list(bucket, { prefix, delimiter, after });
          for (const p of page.commonPrefixes) {
            rows.push({ prefix: p });
            lines.push(`${' '.repeat(58)}PRE ${p}`);
          }
          for (const v of page.items) {
            const rec = s.meta.getVersion(v.versionId);
            if (!rec) continue;
            const residency = await residencyOf(s, rec, BUDGET);
            if (o.segment !== undefined && !holds(o.segment, s.name, v.origin, residency)) continue;
            rows.push({ ...v, residency });
            const flags = o.versions ? ` ${v.deleted ? '(delete marker)' : ''}${'isLatest' in v && v.isLatest ? ' (latest)' : ''} ${v.versionId}` : '';
            const state = residency.state === 'none' ? '-' : residency.state + (residency.exact ? '' : '?');
            lines.push(`${iso(v.mtime)} ${String(v.size).padStart(12)} ${state.padEnd(14)} ${v.origin.padEnd(10)} ${v.key}${flags}`);
          }
          if (!page.truncated) break;
          after = page.next;
          afterVersion = page.nextVersion;
        }
        // Column names for a person at a terminal; scripts reading a pipe get the rows alone.
        if (process.stdout.isTTY && lines.length > 0) lines.unshift(`${'MODIFIED'.padEnd(19)} ${'SIZE'.padStart(12)} ${'RESIDENCY'.padEnd(14)} ${'ORIGIN'.padEnd(10)} KEY`);
        print(g(), rows, () => lines.join('\n'));
      });
    });
}

import type { Command } from 'commander';
import { print, withSegment, type GlobalOptions } from '../open.ts';
import { parseTarget } from '../target.ts';

const iso = (ms: number) => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

export function registerLs(program: Command, g: () => GlobalOptions): void {
  program.command('ls')
    .argument('[target]', 'BUCKET[/PREFIX]; buckets when omitted')
    .option('-r, --recursive', 'every key under the prefix, not folded at /')
    .option('--versions', 'every version, newest first, with delete markers')
    .description('list buckets, objects or versions')
    .action(async (target: string | undefined, o: { recursive?: boolean; versions?: boolean }) => {
      await withSegment(g(), 'read', async (s) => {
        if (!target) {
          const buckets = s.listBuckets();
          print(g(), buckets, () => buckets.map((b) => `${iso(b.created)}  ${b.name}`).join('\n'));
          return;
        }
        const { bucket, key: prefix } = parseTarget(target, false);
        const delimiter = o.recursive ? undefined : '/';
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
            lines.push(`${' '.repeat(30)}PRE ${p}`);
          }
          for (const v of page.items) {
            rows.push(v);
            const flags = o.versions ? ` ${v.deleted ? '(delete marker)' : ''}${'isLatest' in v && v.isLatest ? ' (latest)' : ''} ${v.versionId}` : '';
            lines.push(`${iso(v.mtime)} ${String(v.size).padStart(12)} ${v.key}${flags}`);
          }
          if (!page.truncated) break;
          after = page.next;
          afterVersion = page.nextVersion;
        }
        print(g(), rows, () => lines.join('\n'));
      });
    });
}

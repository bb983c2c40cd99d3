import type { Command } from 'commander';
import { isStitchError } from '../../core/errors.ts';
import { adminCall } from '../../isgw/admin.ts';
import type { ScrubReport } from '../../segment/scrub.ts';
import { EXIT } from '../exit-codes.ts';
import { print, withSegment, type GlobalOptions } from '../open.ts';

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

export function registerAdmin(program: Command, g: () => GlobalOptions): void {
  program.command('stat')
    .description('objects, versions, logical and stored bytes, chunks, dedup ratio')
    .action(async () => {
      const st = await withSegment(g(), 'read', async (s) => s.stats());
      print(g(), st, () => [
        `segment       ${st.name}`,
        `buckets       ${st.buckets}`,
        `objects       ${st.objects}`,
        `versions      ${st.versions}`,
        `logical       ${mib(st.logicalBytes)}`,
        `stored        ${mib(st.storedBytes)} in ${st.chunks} chunks`,
        `dedup ratio   ${st.dedupRatio.toFixed(2)}x`,
      ].join('\n'));
    });

  program.command('fsck')
    .option('--repair', 'fetch damaged chunks from another segment and rewrite them')
    .description('verify every stored chunk against its hash')
    .action(async (o: { repair?: boolean }) => {
      const r = o.repair ? await repair(g()) : await withSegment(g(), 'read', (s) => s.scrub());
      const damaged = r.missing.length + r.corrupt.length - r.repaired.length;
      print(g(), r, () => [
        `checked ${r.checked} chunks (${mib(r.bytes)} verified)`,
        ...r.missing.map((c) => `missing  ${c}`),
        ...r.corrupt.map((c) => `corrupt  ${c}`),
        ...r.repaired.map((c) => `repaired ${c}`),
        damaged === 0 ? 'clean' : `${damaged} damaged chunk(s) remain${o.repair ? '' : ' (try --repair)'}`,
      ].join('\n'));
      if (damaged > 0) process.exitCode = EXIT.data;
    });

  program.command('gc')
    .option('--grace <seconds>', 'keep unreferenced chunks younger than this', '3600')
    .description('remove chunks that no retained version references')
    .action(async (o: { grace: string }) => {
      const grace = Number(o.grace);
      if (!Number.isFinite(grace) || grace < 0) throw new Error(`--grace takes a number of seconds, not '${o.grace}'`);
      const r = await withSegment(g(), 'write', (s) => s.gc(grace * 1000));
      print(g(), r, () => `scanned ${r.scanned} chunks, removed ${r.deleted} (${mib(r.freedBytes)}), kept ${r.kept}`);
    });
}

// A repair needs a source of good chunks (another segment, through the gateway), which only a
// running server has: beside one, the repair runs in it (admin socket); on a stopped segment it
// runs here, and can only report what no source restores.
async function repair(g: GlobalOptions): Promise<ScrubReport> {
  try {
    return await withSegment(g, 'write', (s) => s.scrub({ repair: true }));
  } catch (err) {
    if (!isStitchError(err, 'SegmentLocked')) throw err;
    return (await adminCall(g.data, 'POST', '/fsck', { repair: true }).catch(() => {
      throw err;
    })) as ScrubReport;
  }
}

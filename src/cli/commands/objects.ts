import { createReadStream, createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Command } from 'commander';
import { print, withSegment, type GlobalOptions } from '../open.ts';
import { transferBar } from '../progress.ts';
import { parseTarget, parseTime } from '../target.ts';

// Large reads from files: fewer, bigger pieces into the chunker (a chunk averages 256 KiB).
const FILE_READ_BYTES = 1024 * 1024;

export function registerObjects(program: Command, g: () => GlobalOptions): void {
  program.command('put')
    .argument('<target>', 'BUCKET/KEY')
    .argument('<file>', "file to store, or '-' for standard input")
    .option('--content-type <type>', 'Content-Type to record')
    .option('--meta <pairs...>', 'user metadata as name=value')
    .description('store a file as a new version of an object')
    .action(async (target: string, file: string, o: { contentType?: string; meta?: string[] }) => {
      const { bucket, key } = parseTarget(target, true);
      const total = file === '-' ? undefined : (await stat(file)).size;
      const body = file === '-' ? process.stdin : createReadStream(file, { highWaterMark: FILE_READ_BYTES });
      const meta = Object.fromEntries((o.meta ?? []).map((p) => {
        const i = p.indexOf('=');
        return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      }));
      const bar = transferBar(total, 'put');
      const v = await withSegment(g(), 'write', (s) =>
        s.put(bucket, key, body, { contentType: o.contentType, meta, size: total, onProgress: bar.update }),
      ).finally(() => bar.stop());
      print(g(), v, () => `${bucket}/${key} ${v.size} bytes etag ${v.etag} version ${v.versionId}`);
    });

  program.command('get')
    .argument('<target>', 'BUCKET/KEY')
    .argument('[file]', "where to write it, or '-' for standard output", '-')
    .option('--version <id>', 'a specific version id')
    .option('--at <time>', 'the version that was current at this time (ISO 8601 or epoch ms)')
    .description('read an object (the current version unless told otherwise)')
    .action(async (target: string, file: string, o: { version?: string; at?: string }) => {
      const { bucket, key } = parseTarget(target, true);
      await withSegment(g(), 'read', async (s) => {
        const r = await s.get(bucket, key, { versionId: o.version, at: o.at === undefined ? undefined : parseTime(o.at) });
        const bar = transferBar(r.end - r.start, 'get');
        let done = 0;
        const counted = Readable.from((async function* () {
          for await (const piece of r.body) {
            done += piece.length;
            bar.update(done);
            yield piece;
          }
        })());
        try {
          if (file === '-') {
            await pipeline(counted, process.stdout);
            return;
          }
          // Written beside the target and renamed: a failed read never leaves a partial file.
          const tmp = `${file}.stitch-partial`;
          try {
            await pipeline(counted, createWriteStream(tmp));
            await rename(tmp, file);
          } catch (err) {
            await unlink(tmp).catch(() => {});
            throw err;
          }
        } finally {
          bar.stop();
        }
      });
    });

  program.command('rm')
    .argument('<target>', 'BUCKET/KEY')
    .option('--version <id>', 'remove this version for good instead of adding a delete marker')
    .description('delete an object (adds a delete marker; older versions stay readable)')
    .action(async (target: string, o: { version?: string }) => {
      const { bucket, key } = parseTarget(target, true);
      const out = await withSegment(g(), 'write', async (s) =>
        o.version ? s.deleteVersion(bucket, key, o.version) : s.delete(bucket, key),
      );
      print(g(), out, () => (o.version ? `removed version ${o.version} of ${bucket}/${key}` : `delete: ${bucket}/${key} (marker ${out.versionId})`));
    });
}

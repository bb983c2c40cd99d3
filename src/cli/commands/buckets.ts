import type { Command } from 'commander';
import { print, withSegment, type GlobalOptions } from '../open.ts';

export function registerBuckets(program: Command, g: () => GlobalOptions): void {
  program.command('mb')
    .argument('<bucket>', 'name of the new bucket')
    .option('--public-read', 'let anonymous S3 clients read it')
    .description('make a bucket')
    .action(async (bucket: string, o: { publicRead?: boolean }) => {
      const rec = await withSegment(g(), 'write', async (s) => s.createBucket(bucket, { publicRead: o.publicRead }));
      print(g(), rec, () => `make_bucket: ${bucket}`);
    });

  program.command('rb')
    .argument('<bucket>', 'an empty bucket')
    .description('remove an empty bucket')
    .action(async (bucket: string) => {
      await withSegment(g(), 'write', async (s) => s.deleteBucket(bucket));
      print(g(), { removed: bucket }, () => `remove_bucket: ${bucket}`);
    });
}

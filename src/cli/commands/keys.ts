import type { Command } from 'commander';
import { KeyRing } from '../../s3/keys.ts';
import { print, withSegment, type GlobalOptions } from '../open.ts';

export function registerKeys(program: Command, g: () => GlobalOptions): void {
  const key = program.command('key').description('S3 access keys of this segment');
  key.command('create')
    .description('create an access key (the secret is shown once)')
    .action(async () => {
      const k = await withSegment(g(), 'write', async (s) => new KeyRing(s.meta).create());
      print(g(), k, () => `access key id:     ${k.id}\nsecret access key: ${k.secret}`);
    });
  key.command('ls')
    .description('list access key ids')
    .action(async () => {
      const keys = await withSegment(g(), 'read', async (s) => new KeyRing(s.meta).list());
      print(g(), keys.map(({ id, created }) => ({ id, created })), () => keys.map((k) => `${k.id}  ${new Date(k.created).toISOString()}`).join('\n'));
    });
  key.command('rm')
    .argument('<id>', 'access key id')
    .description('remove an access key')
    .action(async (id: string) => {
      await withSegment(g(), 'write', async (s) => new KeyRing(s.meta).remove(id));
      print(g(), { removed: id }, () => `removed ${id}`);
    });
}

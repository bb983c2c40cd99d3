import { Command, CommanderError } from 'commander';
import { EXIT, exitCodeFor } from './exit-codes.ts';
import type { GlobalOptions } from './open.ts';
import { registerAdmin } from './commands/admin.ts';
import { registerBuckets } from './commands/buckets.ts';
import { registerLs } from './commands/ls.ts';
import { registerObjects } from './commands/objects.ts';
import { registerServe } from './commands/serve.ts';
import { registerKeys } from './commands/keys.ts';
import { registerLinks } from './commands/links.ts';
import { registerMount } from './commands/mount.ts';

const program = new Command('stitch')
  .description('stitchfs: a content-addressed, geo-distributed filesystem')
  .option('--data <dir>', 'segment data directory', process.env.STITCH_DATA ?? './data')
  .option('--json', 'print results as JSON')
  .option('--config <file>', 'segment configuration file (default <data>/segment.json)')
  .showHelpAfterError()
  .exitOverride();

const globals = (): GlobalOptions & { config?: string } => program.opts<GlobalOptions & { config?: string }>();
registerServe(program, globals);
registerBuckets(program, globals);
registerObjects(program, globals);
registerLs(program, globals);
registerAdmin(program, globals);
registerKeys(program, globals);
registerLinks(program, globals);
registerMount(program, globals);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.stderr.write(`stitch: ${(err as Error).message}\n`);
    process.exitCode = exitCodeFor(err);
  }
}

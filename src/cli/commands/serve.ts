import type { Command } from 'commander';
import { Segment } from '../../segment/segment.ts';
import type { GlobalOptions } from '../open.ts';

export function registerServe(program: Command, g: () => GlobalOptions): void {
  program.command('serve')
    .option('--name <name>', 'name of a new segment (an existing one keeps its name)')
    .description('serve the segment until interrupted')
    .action(async (o: { name?: string }) => {
      const segment = await Segment.open({ dataDir: g().data, name: o.name });
      const st = segment.stats();
      console.error(`stitch: segment '${segment.name}' serving ${g().data} (${st.objects} objects, ${st.buckets} buckets)`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await segment.close();
      console.error('stitch: stopped');
    });
}

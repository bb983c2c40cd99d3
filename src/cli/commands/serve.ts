import type { Command } from 'commander';
import { Segment } from '../../segment/segment.ts';
import { KeyRing } from '../../s3/keys.ts';
import { S3Server } from '../../s3/server.ts';
import type { GlobalOptions } from '../open.ts';
import { parseHostPort } from '../target.ts';

export function registerServe(program: Command, g: () => GlobalOptions): void {
  program.command('serve')
    .option('--name <name>', 'name of a new segment (an existing one keeps its name)')
    .option('--s3 <host:port>', 'S3 gateway address', '127.0.0.1:9000')
    .option('--s3-domain <domain...>', 'domains for virtual-host-style requests (<bucket>.<domain>)', ['localhost'])
    .description('serve the segment (S3 gateway) until interrupted')
    .action(async (o: { name?: string; s3: string; s3Domain: string[] }) => {
      const segment = await Segment.open({ dataDir: g().data, name: o.name });
      const keys = new KeyRing(segment.meta);
      const { host, port } = parseHostPort(o.s3);
      let s3: S3Server;
      try {
        s3 = await S3Server.start({ segment, credentials: keys, host, port, domains: o.s3Domain });
      } catch (err) {
        await segment.close();
        throw err;
      }
      const st = segment.stats();
      console.error(`stitch: segment '${segment.name}' in ${g().data}: ${st.objects} objects in ${st.buckets} buckets`);
      console.error(`stitch: S3 gateway on ${s3.url}`);
      if (keys.list().length === 0 && !process.env.STITCH_ACCESS_KEY_ID) {
        console.error("stitch: no access keys yet: create one with 'stitch key create' or set STITCH_ACCESS_KEY_ID and STITCH_SECRET_ACCESS_KEY");
      }
      // Printed on stdout for scripts and tests that wait for readiness.
      console.log(JSON.stringify({ ready: true, s3: s3.url, segment: segment.name }));
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve);
        process.once('SIGTERM', resolve);
      });
      await s3.close();
      await segment.close();
      console.error('stitch: stopped');
    });
}

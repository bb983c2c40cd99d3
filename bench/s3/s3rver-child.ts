// s3rver in its own process for bench/s3.ts: serves <dir> on 127.0.0.1:<port> (silent: no
// per-request log), prints {"ready":true,...} on stdout, and stops on SIGTERM/SIGINT.
// s3rver itself is loaded from the npm prefix where bench/lib/s3-peers.ts installed it.
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    port: { type: 'string' },
    prefix: { type: 'string' },
  },
});
if (!args.dir || !args.port || !args.prefix) {
  console.error('usage: s3rver-child.ts --dir DIR --port N --prefix NPM_PREFIX');
  process.exit(2);
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}
type S3rverClass = new (o: Record<string, unknown>) => S3rverInstance;

const require = createRequire(join(args.prefix, 'package.json'));
const S3rver = require('s3rver') as S3rverClass;
const server = new S3rver({ address: '127.0.0.1', port: Number(args.port), directory: args.dir, silent: true });
const addr = await server.run();
console.log(JSON.stringify({ ready: true, s3: `http://${addr.address}:${addr.port}` }));

const stop = (): void => {
  server.close().then(() => process.exit(0), () => process.exit(1));
  setTimeout(() => process.exit(0), 2_000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);

// Starting the console from `stitch serve`: where it listens, and what happens when the default
// address is taken (several segments on one machine, tests): an address asked for explicitly
// (--console or $STITCH_CONSOLE) must work or serve fails; the default one is skipped with a
// warning, so a second segment still serves S3 and the gateway.
import { StitchError } from '../core/errors.ts';
import type { Logger } from '../log/index.ts';
import { ConsoleServer, type ConsoleOptions } from './server.ts';

export const DEFAULT_CONSOLE = '127.0.0.1:9001';

export { ConsoleServer } from './server.ts';

export async function startConsole(
  o: Omit<ConsoleOptions, 'host' | 'port'> & { option: string | boolean | undefined; env?: string; log: Logger },
): Promise<ConsoleServer | undefined> {
  if (o.option === false || o.env === 'off') return undefined;
  const explicit = typeof o.option === 'string' ? o.option : o.env || undefined;
  const { host, port } = parseHostPort(explicit ?? DEFAULT_CONSOLE);
  try {
    const web = await ConsoleServer.start({ ...o, host, port });
    return web;
  } catch (err) {
    if (explicit || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    o.log.warn({ address: DEFAULT_CONSOLE }, `web console not started: ${DEFAULT_CONSOLE} is in use (pass --console HOST:PORT)`);
    return undefined;
  }
}

function parseHostPort(text: string): { host: string; port: number } {
  const m = text.match(/^\[?([^\]]*?)\]?:(\d+)$/);
  if (!m || Number(m[2]) > 65535) throw new StitchError('InvalidArgument', `--console: expected HOST:PORT, got '${text}'`);
  return { host: m[1] || '127.0.0.1', port: Number(m[2]) };
}

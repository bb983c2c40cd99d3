// The console's single-page app: the files of src/web/app, served from memory. TypeScript
// modules are made browser JavaScript by Node's own type stripping (erasable syntax only, so no
// bundler and no build step); imports keep their `.ts` names and are served under them. Nothing
// comes from a CDN: the console works offline.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { stripTypeScriptTypes } from 'node:module';
import { join } from 'node:path';

export interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

const TYPES: Record<string, string> = {
  '.ts': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
};

export const APP_DIR = join(import.meta.dirname, 'app');
const NAME = /^[a-z0-9][a-z0-9-]*\.(ts|css|html|svg)$/;

// Every asset, by the URL path it is served at. Built once (a few ms), then served from memory.
export function loadAssets(dir: string = APP_DIR): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const name of readdirSync(dir)) {
    if (!NAME.test(name)) continue;
    const ext = name.slice(name.lastIndexOf('.'));
    let body = readFileSync(join(dir, name));
    if (ext === '.ts') body = Buffer.from(strip(body.toString('utf8')));
    const asset = { body, type: TYPES[ext], etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
    out.set(name === 'index.html' ? '/' : `/app/${name}`, asset);
  }
  return out;
}

// Type stripping is marked experimental in Node 24 and says so once on stderr; the console's own
// use is pinned by its tests, so that one warning is kept out of the server's log.
function strip(code: string): string {
  const emit = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (String(typeof warning === 'string' ? warning : warning.message).includes('stripTypeScriptTypes')) return;
    (emit as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    return stripTypeScriptTypes(code, { mode: 'strip' });
  } finally {
    process.emitWarning = emit;
  }
}

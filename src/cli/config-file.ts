import { existsSync } from 'node:fs';
import { join, resolve, dirname, isAbsolute } from 'node:path';
import { loadConfig, saveConfig, type SegmentConfig } from '../isgw/config.ts';
import type { GlobalOptions } from './open.ts';

// Defaults of a segment with no configuration file: what `npm start` serves.
export const DEFAULT_S3 = '127.0.0.1:9000';
export const DEFAULT_P2P = '/ip4/127.0.0.1/tcp/9010';

// The configuration file: `--config FILE`, else `<data>/segment.json`. Its `data` is relative to
// the file's own directory, so a config works from any working directory.
export function configPath(g: GlobalOptions & { config?: string }): string {
  return g.config ?? join(g.data, 'segment.json');
}

export function readConfig(g: GlobalOptions & { config?: string }): SegmentConfig {
  const path = configPath(g);
  if (!existsSync(path)) return { name: 'local', data: g.data, s3: DEFAULT_S3, p2p: DEFAULT_P2P, peers: [] };
  const cfg = loadConfig(path);
  return { ...cfg, data: isAbsolute(cfg.data) ? cfg.data : resolve(dirname(path), cfg.data) };
}

export function writeConfig(g: GlobalOptions & { config?: string }, cfg: SegmentConfig): void {
  const path = configPath(g);
  const stored = existsSync(path) ? loadConfig(path) : undefined;
  // Keep the data path as the file had it (relative stays relative).
  saveConfig(path, { ...cfg, data: stored?.data ?? cfg.data });
}

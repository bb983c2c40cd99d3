import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { StitchError } from '../core/errors.ts';

// How a bucket is shared over one link: `metadata-only` moves manifests and fetches data on
// read; `full` also replicates every chunk in the background. Direction is seen from this side.
export type LinkMode = 'metadata-only' | 'full';
export type Direction = 'send' | 'receive' | 'both';
export interface BucketPolicy {
  mode: LinkMode;
  direction: Direction;
}

// A segment this one knows. Every known peer is on the allowlist: its versions are accepted when
// signed by it (even relayed through others). A peer with `link` is also dialled directly.
export interface PeerConfig {
  name: string;
  peerId: string;
  addrs?: string[];
  // Bucket name, or '*' for every bucket, to policy.
  link?: Record<string, BucketPolicy>;
}

export interface SegmentConfig {
  name: string;
  data: string;
  s3: string;
  p2p: string;
  peers: PeerConfig[];
}

export const MODES: readonly LinkMode[] = ['metadata-only', 'full'];
export const DIRECTIONS: readonly Direction[] = ['send', 'receive', 'both'];

export function loadConfig(path: string): SegmentConfig {
  if (!existsSync(path)) throw new StitchError('InvalidArgument', `no configuration file ${path}`);
  let cfg: SegmentConfig;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8')) as SegmentConfig;
  } catch (err) {
    throw new StitchError('InvalidArgument', `${path} is not valid JSON: ${(err as Error).message}`);
  }
  checkConfig(cfg, path);
  return cfg;
}

export function saveConfig(path: string, cfg: SegmentConfig): void {
  checkConfig(cfg, path);
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(cfg, null, 2)}\n`, { flush: true });
  renameSync(tmp, path);
}

function checkConfig(cfg: SegmentConfig, path: string): void {
  const bad = (what: string) => new StitchError('InvalidArgument', `${path}: ${what}`);
  if (!cfg || typeof cfg.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(cfg.name)) throw bad('name must be 1-63 of a-z, 0-9, -');
  for (const f of ['data', 's3', 'p2p'] as const) if (typeof cfg[f] !== 'string') throw bad(`'${f}' must be a string`);
  if (!Array.isArray(cfg.peers)) throw bad("'peers' must be a list");
  for (const p of cfg.peers) {
    if (typeof p.name !== 'string' || typeof p.peerId !== 'string') throw bad('each peer needs a name and a peerId');
    for (const [bucket, pol] of Object.entries(p.link ?? {})) {
      if (!MODES.includes(pol.mode) || !DIRECTIONS.includes(pol.direction)) throw bad(`peer ${p.name} bucket ${bucket}: bad mode or direction`);
    }
  }
}

export function policyFor(peer: PeerConfig, bucket: string): BucketPolicy | undefined {
  return peer.link?.[bucket] ?? peer.link?.['*'];
}

export const sends = (p: BucketPolicy | undefined) => p !== undefined && p.direction !== 'receive';
export const receives = (p: BucketPolicy | undefined) => p !== undefined && p.direction !== 'send';

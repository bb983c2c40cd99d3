import type { KeyObject } from 'node:crypto';
import type { PeerId } from '@libp2p/interface';
import { policyFor, receives, sends, type PeerConfig, type SegmentConfig } from './config.ts';
import { publicKeyOfPeer } from './keys.ts';

// The allowlist, asked by every protocol handler: who a peer id is, whether it may receive or
// send a bucket, and the key that verifies versions of an origin.
export class PeerBook {
  private readonly byId = new Map<string, PeerConfig>();
  private readonly byName = new Map<string, PeerConfig>();
  private readonly keys = new Map<string, KeyObject>();

  constructor(cfg: SegmentConfig) {
    for (const p of cfg.peers) {
      this.byId.set(p.peerId, p);
      this.byName.set(p.name, p);
      this.keys.set(p.name, publicKeyOfPeer(p.peerId));
    }
  }

  peer(id: PeerId | string): PeerConfig | undefined {
    return this.byId.get(id.toString());
  }

  named(name: string): PeerConfig | undefined {
    return this.byName.get(name);
  }

  allowed(id: PeerId | string): boolean {
    return this.byId.has(id.toString());
  }

  originKey(origin: string): KeyObject | undefined {
    return this.keys.get(origin);
  }

  get empty(): boolean {
    return this.byId.size === 0;
  }

  linked(): PeerConfig[] {
    return [...this.byId.values()].filter((p) => p.link && p.addrs && p.addrs.length > 0);
  }

  // May this segment give `bucket` (metadata or chunks) to peer `id`?
  maySend(id: PeerId | string, bucket: string): boolean {
    const p = this.peer(id);
    return p !== undefined && sends(policyFor(p, bucket));
  }

  // May this segment give peer `id` every bucket, even ones it does not name (the buckets topic)?
  maySendAll(id: PeerId | string): boolean {
    const p = this.peer(id);
    return p !== undefined && sends(p.link?.['*']);
  }

  // Buckets some link brings in by name (not through '*').
  namedReceivedBuckets(): string[] {
    return [...new Set([...this.byId.values()].flatMap((p) => Object.entries(p.link ?? {})
      .filter(([bucket, pol]) => bucket !== '*' && receives(pol)).map(([bucket]) => bucket)))];
  }

  // Does some link bring `bucket` into this segment?
  receivesBucket(bucket: string): boolean {
    return [...this.byId.values()].some((p) => receives(policyFor(p, bucket)));
  }

  fullReplication(bucket: string): boolean {
    return [...this.byId.values()].some((p) => {
      const pol = policyFor(p, bucket);
      return receives(pol) && pol?.mode === 'full';
    });
  }
}

import { gossipsub } from '@libp2p/gossipsub';
import { identify } from '@libp2p/identify';
import type { PeerId } from '@libp2p/interface';
import { noise } from '@libp2p/noise';
import { peerIdFromString } from '@libp2p/peer-id';
import { ping } from '@libp2p/ping';
import { tcp } from '@libp2p/tcp';
import { yamux } from '@libp2p/yamux';
import { multiaddr } from '@multiformats/multiaddr';
import { createLibp2p, type Libp2p } from 'libp2p';
import type { Segment } from '../segment/segment.ts';
import { catchUpFrom, CATCH_UP_PROTOCOL, serveCatchUp } from './catch-up.ts';
import { CHUNK_PROTOCOL, RemoteChunks, serveChunks } from './chunk-fetch.ts';
import type { SegmentConfig } from './config.ts';
import { newCounters, type GatewayCounters } from './counters.ts';
import { Gossip, guardPubSub, type PubSub } from './gossip.ts';
import { libp2pKey } from './keys.ts';
import { PeerBook } from './peers.ts';
import { Replicator } from './replicator.ts';

// Linked peers not connected are dialled again this often; also how often connected ones are
// asked for what gossip may have dropped. Short, because catch-up of nothing costs one round trip.
const MAINTAIN_MS = 2_000;

export interface PeerStatus {
  name: string;
  peerId: string;
  connected: boolean;
  lastCatchUp: number | undefined;
  // Entries the peer holds that this segment did not when last asked: the link's lag.
  lastCatchUpEntries: number;
}

// The inter-segment gateway: a libp2p node (TCP, Noise, yamux) whose identity is the segment's
// key, gossip of version manifests, catch-up, chunk fetch as the segment's chunk source, and the
// full-mode replicator. Only allowlisted peers get past the connection gater.
export class Gateway {
  readonly node: Libp2p<{ pubsub: ReturnType<ReturnType<typeof gossipsub>> }>;
  readonly counters: GatewayCounters = newCounters();
  readonly peers: PeerBook;
  private readonly segment: Segment;
  private readonly gossip: Gossip;
  private readonly replicator: Replicator;
  private readonly status = new Map<string, { lastCatchUp?: number; entries: number }>();
  // Per connected peer: what it said it sent us through (see catchUpFrom). Dropped on disconnect,
  // so a peer restarted with other links is asked from our frontier again.
  private readonly cursors = new Map<string, Record<string, number>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(segment: Segment, peers: PeerBook, node: Gateway['node']) {
    this.segment = segment;
    this.peers = peers;
    this.node = node;
    this.gossip = new Gossip(node.services.pubsub as unknown as PubSub, segment, peers, this.counters);
    this.replicator = new Replicator(segment, peers);
  }

  static async start(segment: Segment, cfg: SegmentConfig): Promise<Gateway> {
    const peers = new PeerBook(cfg);
    const linked = peers.linked();
    const node = await createLibp2p({
      // Started once the pubsub guard is in place, so no peer subscribes before it.
      start: false,
      privateKey: libp2pKey(segment.identity.privateKey),
      addresses: { listen: [cfg.p2p] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: {
        denyInboundEncryptedConnection: (peer: PeerId) => !peers.allowed(peer),
        denyOutboundEncryptedConnection: (peer: PeerId) => !peers.allowed(peer),
      },
      services: {
        identify: identify(),
        ping: ping(),
        pubsub: gossipsub({
          // Linked segments are direct peers: always sent every message, no mesh to wait for.
          directPeers: linked.map((p) => ({ id: peerIdFromString(p.peerId), addrs: (p.addrs ?? []).map((a) => multiaddr(a)) })),
          allowPublishToZeroTopicPeers: true,
          emitSelf: false,
        }),
      },
    });
    guardPubSub(node.services.pubsub, peers);
    const gw = new Gateway(segment, peers, node as Gateway['node']);
    await gw.begin();
    return gw;
  }

  private async begin(): Promise<void> {
    const seg = this.segment;
    await this.node.handle(CATCH_UP_PROTOCOL, (stream, conn) => serveCatchUp(stream, conn, seg, this.peers), { maxInboundStreams: 8 });
    const remote = new RemoteChunks({
      segment: seg, peers: this.peers, counters: this.counters,
      connected: () => this.node.getPeers(),
      dial: (peer, protocol) => this.node.dialProtocol(peer, protocol),
    });
    await this.node.handle(CHUNK_PROTOCOL, (stream, conn) => serveChunks(stream, conn, seg, this.peers, this.counters, remote), { maxInboundStreams: 64 });
    seg.chunkSource = remote;
    await this.node.start();
    this.gossip.start();
    this.replicator.start();
    this.node.addEventListener('peer:connect', (evt) => void this.catchUp(evt.detail));
    this.node.addEventListener('peer:disconnect', (evt) => void this.cursors.delete(evt.detail.toString()));
    void this.maintain();
  }

  get addresses(): string[] {
    return this.node.getMultiaddrs().map((a) => a.toString());
  }

  private async maintain(): Promise<void> {
    if (this.stopped) return;
    const connected = new Set(this.node.getPeers().map((p) => p.toString()));
    await Promise.allSettled(this.peers.linked().map(async (p) => {
      if (connected.has(p.peerId)) return this.catchUp(peerIdFromString(p.peerId));
      for (const addr of p.addrs ?? []) {
        try {
          await this.node.dial(multiaddr(`${addr}/p2p/${p.peerId}`), { signal: AbortSignal.timeout(MAINTAIN_MS * 2) });
          return;
        } catch {
          // Down or unreachable: tried again next round.
        }
      }
    }));
    if (!this.stopped) this.timer = setTimeout(() => void this.maintain(), MAINTAIN_MS);
  }

  private async catchUp(peer: PeerId): Promise<void> {
    if (this.stopped || !this.peers.allowed(peer)) return;
    try {
      let cursor = this.cursors.get(peer.toString());
      if (!cursor) this.cursors.set(peer.toString(), (cursor = {}));
      const n = await catchUpFrom((p, proto) => this.node.dialProtocol(p, proto), peer, this.segment, this.peers, this.counters, cursor);
      this.status.set(peer.toString(), { lastCatchUp: Date.now(), entries: n });
    } catch {
      // The peer went away mid-stream; the next round asks again.
    }
  }

  peerStatus(): PeerStatus[] {
    const connected = new Set(this.node.getPeers().map((p) => p.toString()));
    return this.peers.linked().map((p) => ({
      name: p.name,
      peerId: p.peerId,
      connected: connected.has(p.peerId),
      lastCatchUp: this.status.get(p.peerId)?.lastCatchUp,
      lastCatchUpEntries: this.status.get(p.peerId)?.entries ?? 0,
    }));
  }

  get replicationBacklog(): number {
    return this.replicator.backlog;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.gossip.stop();
    this.replicator.stop();
    this.segment.chunkSource = undefined;
    await this.node.stop();
  }
}

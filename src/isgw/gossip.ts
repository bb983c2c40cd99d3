import * as dagCbor from '@ipld/dag-cbor';
import type { Message } from '@libp2p/gossipsub';
import type { PeerId } from '@libp2p/interface';
import { decodeVersion } from '../core/version-manifest.ts';
import type { Segment } from '../segment/segment.ts';
import type { VersionRecord } from '../store/meta-store.ts';
import type { GatewayCounters } from './counters.ts';
import type { PeerBook } from './peers.ts';

// New versions are published in batches: signing a gossip message costs ~0.3 ms here, so a burst
// of puts shares messages. 20 ms keeps propagation well under the one-second goal.
const BATCH_MS = 20;
const BATCH_MAX = 64;

export const BUCKETS_TOPIC = '/stitchfs/1/buckets';
export const bucketTopic = (bucket: string) => `/stitchfs/1/bucket/${bucket}`;

export interface PubSub {
  subscribe(topic: string): void;
  publish(topic: string, data: Uint8Array): Promise<unknown>;
  getTopics(): string[];
  addEventListener(type: 'message', fn: (evt: CustomEvent<Message>) => void): void;
}

interface Entry {
  seq: number;
  bytes: Uint8Array;
}

// Metadata first: every local version goes out on its bucket's topic (bucket events on the
// buckets topic) and every received one is checked against the allowlist and applied. Gossip is
// best effort; catch-up repairs whatever it drops.
export class Gossip {
  private readonly pubsub: PubSub;
  private readonly segment: Segment;
  private readonly peers: PeerBook;
  private readonly counters: GatewayCounters;
  private readonly queues = new Map<string, Entry[]>();
  private timer: NodeJS.Timeout | undefined;
  private readonly onVersion = (rec: VersionRecord, seq: number) => this.enqueue(rec, seq);
  private readonly onRemote = (rec: VersionRecord) => {
    if (rec.key === '' && !rec.deleted) this.follow(rec.bucket);
  };

  constructor(pubsub: PubSub, segment: Segment, peers: PeerBook, counters: GatewayCounters) {
    this.pubsub = pubsub;
    this.segment = segment;
    this.peers = peers;
    this.counters = counters;
  }

  start(): void {
    this.pubsub.addEventListener('message', (evt) => void this.receive(evt.detail));
    this.pubsub.subscribe(BUCKETS_TOPIC);
    for (const b of this.segment.listBuckets()) this.follow(b.name);
    // Buckets linked by name: a peer that shares only those never sends us the buckets topic.
    for (const b of this.peers.namedReceivedBuckets()) this.follow(b);
    this.segment.on('version', this.onVersion);
    this.segment.on('remote-version', this.onRemote);
  }

  stop(): void {
    this.segment.off('version', this.onVersion);
    this.segment.off('remote-version', this.onRemote);
    clearTimeout(this.timer);
    this.flush();
  }

  private follow(bucket: string): void {
    const topic = bucketTopic(bucket);
    if (this.peers.receivesBucket(bucket) && !this.pubsub.getTopics().includes(topic)) this.pubsub.subscribe(topic);
  }

  private enqueue(rec: VersionRecord, seq: number): void {
    // A lone segment has no one to tell: publishing would only cost a signature per batch.
    if (this.peers.empty) return;
    if (rec.key === '' && !rec.deleted) this.follow(rec.bucket);
    const topic = rec.key === '' ? BUCKETS_TOPIC : bucketTopic(rec.bucket);
    const q = this.queues.get(topic) ?? [];
    q.push({ seq, bytes: rec.manifest });
    this.queues.set(topic, q);
    if (q.length >= BATCH_MAX) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (const [topic, entries] of this.queues) {
      this.queues.delete(topic);
      this.counters.versionsPublished += entries.length;
      this.pubsub.publish(topic, dagCbor.encode({ entries })).catch(() => {
        // No subscriber yet, or a closing node: catch-up delivers these later.
      });
    }
  }

  private async receive(msg: Message): Promise<void> {
    if (msg.type !== 'signed' || !this.peers.allowed(msg.from)) return;
    let batch: { entries?: Entry[] };
    try {
      batch = dagCbor.decode(msg.data) as { entries?: Entry[] };
    } catch {
      this.counters.versionsRejected++;
      return;
    }
    // Applied together, so the whole batch lands in one group commit instead of one each.
    const entries = Array.isArray(batch?.entries) ? batch.entries.slice(0, BATCH_MAX) : [];
    await Promise.all(entries.map((e) => applyEntry(this.segment, this.peers, this.counters, e.bytes, e.seq)));
  }
}

// Gossipsub sends a topic's messages (its own and those it relays) to every peer subscribed to the
// topic or grafted into its mesh, and answers IWANTs from anyone, whatever this segment's links
// say. So, per peer, only topics this segment may send it are honoured: a bucket's topic for a
// link that sends that bucket, the buckets topic (every bucket's name) for a link that sends every
// bucket. Without this, a peer only on the allowlist, or whose link is receive-only or for other
// buckets, could subscribe and be sent every version. The hooks are gossipsub internals: if an
// upgrade renames them, starting fails rather than leaking.
export function guardPubSub(pubsub: unknown, peers: PeerBook): void {
  const ps = pubsub as {
    handleReceivedSubscription?: (from: PeerId, topic: string, subscribe: boolean) => boolean;
    handleGraft?: (id: string, graft: Array<{ topicID?: string }>) => Promise<unknown[]>;
    handleIWant?: (id: string, iwant: unknown[]) => Array<{ topic: string }>;
  };
  const sub = ps.handleReceivedSubscription?.bind(pubsub);
  const graft = ps.handleGraft?.bind(pubsub);
  const iwant = ps.handleIWant?.bind(pubsub);
  if (!sub || !graft || !iwant) throw new Error('this gossipsub lacks the hooks that enforce link policies');
  const prefix = bucketTopic('');
  const may = (peer: PeerId | string, topic: string | undefined) => {
    if (topic === BUCKETS_TOPIC) return peers.maySendAll(peer);
    return topic !== undefined && topic.startsWith(prefix) && peers.maySend(peer, topic.slice(prefix.length));
  };
  ps.handleReceivedSubscription = (from, topic, subscribe) => (!subscribe || may(from, topic)) && sub(from, topic, subscribe);
  ps.handleGraft = (id, g) => graft(id, g.filter((x) => may(id, x.topicID)));
  ps.handleIWant = (id, w) => iwant(id, w).filter((m) => may(id, m.topic));
}

// Shared by gossip and catch-up: the origin must be on the allowlist and sign the version, and
// some link must bring its bucket in. Anything else is counted and dropped.
export async function applyEntry(segment: Segment, peers: PeerBook, counters: GatewayCounters, bytes: unknown, seq: unknown): Promise<boolean> {
  try {
    if (!(bytes instanceof Uint8Array) || typeof seq !== 'number') throw new Error('malformed entry');
    const { manifest } = decodeVersion(bytes);
    const key = peers.originKey(manifest.origin);
    if (!key || !peers.receivesBucket(manifest.bucket)) throw new Error(`origin ${manifest.origin} or bucket ${manifest.bucket} not allowed`);
    const r = await segment.applyRemote(bytes, seq, key);
    if (r === 'applied') counters.versionsReceived++;
    return true;
  } catch {
    counters.versionsRejected++;
    return false;
  }
}

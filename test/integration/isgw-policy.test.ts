// Link policies hold on every path, gossip included, with real processes. Around A:
//   b: linked for bucket `shared` only (both ways);
//   c: A's link to c is receive-only, while c's link to A claims both ways;
//   e: on A's allowlist (peer add) but not linked by A; e links to A.
// A writes to `shared` and `private`: b gets `shared` and nothing of `private` (not even its
// name), c and e get nothing although connected; c's own writes still reach A; and b's catch-up
// settles (it does not resend, round after round, what b may not have).
import { CreateBucketCommand, ListBucketsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomData, waitFor, World } from '../helpers/world-cluster.ts';

describe('isgw: link policies on gossip and catch-up', () => {
  let w: World;
  const buckets = async (name: string) => ((await w.s3(name).send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name).sort();
  const keys = async (name: string, bucket: string) =>
    ((await w.s3(name).send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key).sort();

  beforeAll(async () => {
    w = await World.create({
      names: ['a', 'b', 'c', 'e'],
      links: [
        { from: 'a', to: 'b', bucket: 'shared' },
        { from: 'a', to: 'c', direction: 'receive', oneWay: true },
        { from: 'c', to: 'a', direction: 'both', oneWay: true },
        { from: 'e', to: 'a', oneWay: true },
      ],
    });
    const up = async (n: string) => (await w.status(n)).peers.every((p) => p.connected);
    await waitFor(async () => (await up('a')) && (await up('b')) && (await up('c')) && (await up('e')), 20_000, 'all links up');
    await new Promise((r) => setTimeout(r, 300));
    for (const b of ['shared', 'private']) await w.s3('a').send(new CreateBucketCommand({ Bucket: b }));
    for (let i = 0; i < 5; i++) {
      for (const b of ['shared', 'private']) await w.s3('a').send(new PutObjectCommand({ Bucket: b, Key: `k${i}`, Body: randomData(2000) }));
    }
  });

  afterAll(async () => {
    await w?.stop();
  });

  it('a bucket-scoped link carries that bucket only, and its catch-up settles', async () => {
    await waitFor(async () => (await keys('b', 'shared')).length === 5, 5_000, 'shared on b');
    // Two catch-up rounds (2 s each) later: still only `shared`, and nothing was even offered.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(await buckets('b')).toEqual(['shared']);
    const s1 = await w.status('b');
    expect(s1.counters.versionsRejected).toBe(0);
    expect(s1.stats.objects).toBe(5);
    await new Promise((r) => setTimeout(r, 4_500));
    const s2 = await w.status('b');
    expect(s2.counters.catchUpEntries).toBe(s1.counters.catchUpEntries);
    expect(s2.peers).toEqual([expect.objectContaining({ name: 'a', connected: true, lastCatchUpEntries: 0 })]);

    // Both ways, by gossip: b's write in `shared` is on A well within a second.
    await w.s3('b').send(new PutObjectCommand({ Bucket: 'shared', Key: 'from-b', Body: randomData(100) }));
    const t0 = Date.now();
    await waitFor(async () => (await keys('a', 'shared')).includes('from-b'), 5_000, 'from-b on a', 10);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it('a peer A does not send to gets nothing, though connected; its own writes still reach A', async () => {
    for (const n of ['c', 'e']) {
      const st = await w.status(n);
      expect(st.peers, n).toEqual([expect.objectContaining({ name: 'a', connected: true })]);
      expect(st.counters.versionsReceived, n).toBe(0);
      expect(st.counters.versionsRejected, n).toBe(0);
      expect(await buckets(n), n).toEqual([]);
    }
    await w.s3('c').send(new CreateBucketCommand({ Bucket: 'from-c' }));
    await w.s3('c').send(new PutObjectCommand({ Bucket: 'from-c', Key: 'x', Body: randomData(100) }));
    await waitFor(async () => (await keys('a', 'from-c')).includes('x'), 5_000, 'c\'s write on a');
    // ... and A still does not send it back, nor anything else.
    await new Promise((r) => setTimeout(r, 2_500));
    expect((await w.status('c')).counters.versionsReceived).toBe(0);
    expect(await buckets('e')).toEqual([]);
  });
});

// The gateway's trust rules with real processes: a segment D that links to A but is not on A's
// allowlist gets neither metadata nor chunks; a peer that answers with wrong bytes is rejected
// and its bytes never reach a client; a corrupt chunk at the source makes a remote read fail
// cleanly (S3 500) rather than return wrong bytes; and a `full` link replicates in the background,
// moving only the chunks the receiver lacks.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import {
  CreateBucketCommand, GetObjectCommand, HeadObjectCommand, ListBucketsCommand, PutObjectCommand,
} from '@aws-sdk/client-s3';
import type { Libp2p } from 'libp2p';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MiB, randomData, s3Failure, sha256, storedBytes, waitFor, World, type ChunkInfo } from '../helpers/world-cluster.ts';
import { askChunks, bareNode, freshKey, keyOfDataDir, liarNode } from '../helpers/world-rogue.ts';

const OPEN = 'open';
const REPLICA = 'replica';

describe('isgw: allowlist, wrong bytes, full replication', () => {
  let w: World;
  let liar: Awaited<ReturnType<typeof liarNode>> | undefined;
  const nodes: Libp2p[] = [];
  const x = randomData(1.5 * MiB);

  const get = async (name: string, bucket: string, key: string) => {
    const r = await w.s3(name).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(await r.Body!.transformToByteArray());
  };
  const putOnA = async (bucket: string, key: string, body: Buffer) => {
    await w.s3('a').send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
    await waitFor(() => w.s3('b').send(new HeadObjectCommand({ Bucket: bucket, Key: key })), 5_000, `${bucket}/${key} on b`);
  };
  const connected = async (name: string, peer: string) => (await w.status(name)).peers.find((p) => p.name === peer)?.connected;

  beforeAll(async () => {
    // a - b: every bucket metadata-only, and `replica` in full. b - m: m is a liar run by the
    // test under a key b trusts. d links to a, but nobody lists d.
    w = await World.create({
      names: ['a', 'b', 'd', 'm'],
      links: [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'b', bucket: REPLICA, mode: 'full' },
        { from: 'b', to: 'm' },
        { from: 'd', to: 'a', oneWay: true },
      ],
      untrusted: ['d'],
      noStart: ['m'],
    });
    liar = await liarNode(keyOfDataDir(w.dataDir('m')), w.p2p('m'));
    await waitFor(async () => (await connected('b', 'a')) && (await connected('b', 'm')), 20_000, 'b connected to a and m');
    await w.s3('a').send(new CreateBucketCommand({ Bucket: OPEN }));
    await putOnA(OPEN, 'x', x);
  });

  afterAll(async () => {
    await liar?.stop();
    await Promise.all(nodes.map((n) => n.stop()));
    await w?.stop();
  });

  it('a segment not on the allowlist gets no metadata and no chunks', async () => {
    // More than one dial-and-catch-up round of d (2 s).
    await new Promise((r) => setTimeout(r, 3_000));
    const d = await w.status('d');
    expect(d.peers).toEqual([expect.objectContaining({ name: 'a', connected: false })]);
    expect(d.counters.versionsReceived).toBe(0);
    expect(d.counters.catchUpEntries).toBe(0);
    expect(d.stats.buckets).toBe(0);
    expect((await w.s3('d').send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
    expect((await w.status('a')).peers.map((p) => p.name)).toEqual(['b']);

    // Chunks stored as files (a last chunk of at most 4 KiB rides inline in the manifest).
    const cids = (await w.chunksOf('a', OPEN, 'x')).filter((c) => !c.inline).map((c) => c.cid);
    const target = `${w.p2p('a')}/p2p/${w.peerId('a')}`;
    // d's own key, and a key nobody has heard of: the connection itself is refused.
    for (const key of [keyOfDataDir(w.dataDir('d')), await freshKey()]) {
      const node = await bareNode(key);
      nodes.push(node);
      await expect(askChunks(node, target, cids)).rejects.toThrow();
    }
    // m is on a's allowlist (peer add) but has no link: it connects, and is given nothing.
    expect(Object.values(await askChunks(liar!.node, target, cids))).toEqual(cids.map(() => 'missing'));
    // Control: the same request under b's key (linked for every bucket) is answered.
    const asB = await bareNode(keyOfDataDir(w.dataDir('b')));
    nodes.push(asB);
    expect(Object.values(await askChunks(asB, target, cids))).toEqual(cids.map(() => 'bytes'));
    await asB.stop();
    expect((await w.status('a')).counters.chunksServed).toBe(cids.length);
  });

  it('a peer that serves wrong bytes is rejected and a read never returns them', async () => {
    // a is gone; m (connected to b, trusted by b) is the only source left, and it lies.
    await w.kill('a', 'SIGKILL');
    const before = (await w.status('b')).counters;
    const f = await s3Failure(get('b', OPEN, 'x'));
    expect([f.name, f.status]).toEqual(['InternalError', 500]);
    const after = (await w.status('b')).counters;
    expect(liar!.asked()).toBeGreaterThanOrEqual(1);
    expect(after.chunksRejected - before.chunksRejected).toBeGreaterThanOrEqual(1);
    expect(after.chunkBytesFetched).toBe(before.chunkBytesFetched);
    expect(w.chunkFiles('b').size).toBe(0);

    // With the liar gone and a back, the same read is right.
    await liar!.stop();
    liar = undefined;
    await w.start('a');
    await waitFor(() => connected('b', 'a'), 20_000, 'b reconnected to a');
    expect(sha256(await get('b', OPEN, 'x'))).toBe(sha256(x));
    expect((await w.status('b')).counters.chunkBytesFetched - after.chunkBytesFetched).toBe(storedBytes(await w.chunksOf('a', OPEN, 'x')));
  });

  it('a corrupt chunk at the source fails the remote read cleanly, never with wrong bytes', async () => {
    const y = randomData(1.5 * MiB);
    const z = randomData(1.5 * MiB);
    await putOnA(OPEN, 'y', y);
    await putOnA(OPEN, 'z', z);
    // Other bytes of the same length: the file looks fine to anything but a hash check.
    const spoil = (cid: string) => {
      const path = w.chunkPath('a', cid);
      writeFileSync(path, randomBytes(readFileSync(path).length));
    };
    const { cid: first } = (await w.chunksOf('a', OPEN, 'y'))[0];
    spoil(first);
    const before = (await w.status('b')).counters;

    // The first chunk: the error comes before any byte, as an S3 error.
    const f = await s3Failure(get('b', OPEN, 'y'));
    expect([f.name, f.status]).toEqual(['InternalError', 500]);
    // a's own read refuses it too (no peer has a good copy).
    const fa = await s3Failure(get('a', OPEN, 'y'));
    expect([fa.name, fa.status]).toEqual(['InternalError', 500]);
    expect(w.chunkFiles('b').has(first)).toBe(false);

    // A chunk in the middle: the response has started, so it can only be cut short, and the
    // client must see that as an error (a short body that ended cleanly would be silent loss).
    const zChunks = (await w.chunksOf('a', OPEN, 'z')).filter((c) => !c.inline);
    const middle = zChunks[Math.min(2, zChunks.length - 1)].cid;
    spoil(middle);
    const r = await w.s3('b').send(new GetObjectCommand({ Bucket: OPEN, Key: 'z' }));
    expect(r.ContentLength).toBe(z.length);
    const seen: Buffer[] = [];
    await expect((async () => {
      for await (const part of r.Body as AsyncIterable<Uint8Array>) seen.push(Buffer.from(part));
    })()).rejects.toThrow();
    const prefix = Buffer.concat(seen);
    expect(prefix.length).toBeLessThan(z.length);
    expect(prefix.equals(z.subarray(0, prefix.length))).toBe(true);
    const after = (await w.status('b')).counters;
    // a sent "missing", not bad bytes: nothing for b to reject, and nothing wrong stored.
    expect(after.chunksRejected).toBe(before.chunksRejected);
    expect(w.chunkFiles('b').has(middle)).toBe(false);
  });

  it('a full link replicates in the background, moving only the chunks the receiver lacks', async () => {
    await w.s3('a').send(new CreateBucketCommand({ Bucket: REPLICA }));
    await waitFor(async () => (await w.status('b')).stats.buckets === 2, 5_000, 'replica bucket on b');
    const bodies: Record<string, Buffer> = { one: randomData(1 * MiB), two: randomData(2 * MiB), big: randomData(8 * MiB) };
    const before = (await w.status('b')).counters;
    for (const [key, body] of Object.entries(bodies)) await w.s3('a').send(new PutObjectCommand({ Bucket: REPLICA, Key: key, Body: body }));

    const chunksOf: Record<string, ChunkInfo[]> = {};
    for (const key of Object.keys(bodies)) chunksOf[key] = await w.chunksOf('a', REPLICA, key);
    const holds = (key: string) => {
      const files = w.chunkFiles('b');
      return chunksOf[key].every((c) => c.inline || files.has(c.cid));
    };
    // Nobody reads on b: the replicator pulls everything on its own.
    await waitFor(async () => Object.keys(bodies).every(holds) && (await w.status('b')).replicationBacklog === 0, 30_000, 'b holds replica');
    const mid = await w.status('b');
    const total = Object.keys(bodies).reduce((n, key) => n + storedBytes(chunksOf[key]), 0);
    expect(mid.counters.chunkBytesFetched - before.chunkBytesFetched).toBe(total);
    // And it holds them as its own: reading on b moves nothing more.
    for (const [key, body] of Object.entries(bodies)) expect(sha256(await get('b', REPLICA, key)), key).toBe(sha256(body));
    expect((await w.status('b')).counters.chunkBytesFetched).toBe(mid.counters.chunkBytesFetched);

    // The same 8 MiB with 1 MiB appended: content-defined chunks keep all but the last.
    const bigger = Buffer.concat([bodies.big, randomData(1 * MiB)]);
    await w.s3('a').send(new PutObjectCommand({ Bucket: REPLICA, Key: 'bigger', Body: bigger }));
    chunksOf.bigger = await w.chunksOf('a', REPLICA, 'bigger');
    const known = new Set(chunksOf.big.map((c) => c.cid));
    const newBytes = storedBytes(chunksOf.bigger.filter((c) => !known.has(c.cid)));
    expect(newBytes).toBeLessThan(3 * MiB);
    await waitFor(async () => holds('bigger') && (await w.status('b')).replicationBacklog === 0, 30_000, 'b holds bigger');
    const end = await w.status('b');
    const delta = end.counters.chunkBytesFetched - mid.counters.chunkBytesFetched;
    console.log(`isgw-security: full link moved ${delta} bytes for a ${bigger.length}-byte object sharing 8 MiB`);
    expect(delta).toBe(newBytes);
    expect(delta).toBeLessThan(bigger.length / 3);
    expect(end.stats.storedBytes - mid.stats.storedBytes).toBe(newBytes);
    expect(sha256(await get('b', REPLICA, 'bigger'))).toBe(sha256(bigger));
    expect((await w.status('b')).counters.chunkBytesFetched).toBe(end.counters.chunkBytesFetched);
  });
});

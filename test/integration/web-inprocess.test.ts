// The console's pieces in-process: residency of a version with a manifest tree that lives on
// another segment (computed without ever asking the chunk source), the sign-in proof as the
// browser computes it, and the session rules.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { CID } from 'multiformats/cid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInlineCid } from '../../src/core/cid.ts';
import { decodeNode } from '../../src/core/chunk-manifest.ts';
import { decodeVersion } from '../../src/core/version-manifest.ts';
import { Segment } from '../../src/segment/segment.ts';
import { computeProof, ConsoleAuth, readCookie } from '../../src/web/auth.ts';
import { hmacSha256, hex, loginProof, sha256 } from '../../src/web/app/sha256.ts';
import { residencyOf } from '../../src/web/residency.ts';

describe('residency without fetching', () => {
  let dir: string;
  let alpha: Segment;
  let beta: Segment;
  let body: Buffer;
  let vid: string;
  const asked: string[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stitch-web-res-'));
    // Small chunks (all above the 4 KiB inline limit) so a 16 MiB object needs a manifest tree.
    const chunker = { min: 5000, avg: 8192, max: 32768 };
    alpha = await Segment.open({ dataDir: join(dir, 'alpha'), name: 'alpha', chunker });
    beta = await Segment.open({ dataDir: join(dir, 'beta'), name: 'beta', chunker });
    // Any fetch would be recorded (and fail): residency must never ask.
    beta.chunkSource = { fetch: async (cid: CID) => { asked.push(cid.toString()); return undefined; } };
    alpha.createBucket('bkt');
    body = randomBytes(16 * 1024 * 1024);
    const v = await alpha.put('bkt', 'tree.bin', body);
    await alpha.put('bkt', 'empty', Buffer.alloc(0));
    await alpha.delete('bkt', 'empty');
    expect('tree' in v.content).toBe(true);
    vid = v.versionId;
    for (const e of alpha.changesSince('alpha', 0, 100)) await beta.applyRemote(e.bytes, e.seq, alpha.identity.publicKey);
  }, 120_000);

  afterAll(async () => {
    await alpha?.close();
    await beta?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const rec = (s: Segment, v = vid) => s.meta.getVersion(v)!;
  const copyFromAlpha = async (cid: CID) => {
    const bytes = (await alpha.store.get(cid))!;
    await beta.store.put(cid, bytes);
    await beta.store.flush();
    beta.meta.addLocalChunks([{ cid: cid.toString(), size: bytes.length }]);
  };

  it('is local, exact, at the origin', async () => {
    const r = await residencyOf(alpha, rec(alpha), { cells: 64, list: 5 });
    expect(r).toMatchObject({ state: 'local', manifest: 'tree', localBytes: body.length, unknownBytes: 0, exact: true });
    expect(r.chunks).toBeGreaterThan(1024);
    expect(r.localChunks).toBe(r.chunks);
    expect(r.map!.every((c) => c.local === 1)).toBe(true);
    expect(r.chunkList).toHaveLength(5);
  });

  it('is metadata-only with everything unknown while the tree root is elsewhere', async () => {
    const r = await residencyOf(beta, rec(beta), { cells: 64 });
    expect(r).toMatchObject({ state: 'metadata-only', manifest: 'tree', localBytes: 0, unknownBytes: body.length, exact: false, chunks: 0 });
    expect(r.map!.every((c) => c.unknown === 1 && c.local === 0)).toBe(true);
    expect(asked).toEqual([]);
  });

  it('knows every chunk once the tree blocks are here, and sees the chunks that are', async () => {
    const { manifest } = decodeVersion(rec(beta).manifest);
    const root = (manifest.content as { tree: CID }).tree;
    await copyFromAlpha(root);
    const node = decodeNode((await alpha.store.get(root))!);
    const leaves = 'leaf' in node ? node.leaf : [];
    // A tail chunk under the inline limit rides in the tree block itself: here with it.
    const inline = leaves.filter(([cid]) => isInlineCid(cid));
    const inlineBytes = inline.reduce((n, [, len]) => n + len, 0);
    const none = await residencyOf(beta, rec(beta), { cells: 64 });
    expect(none).toMatchObject({ localBytes: inlineBytes, localChunks: inline.length, unknownBytes: 0, exact: true });
    expect(none.state).toBe(inlineBytes === 0 ? 'metadata-only' : 'partial');
    expect(leaves.length).toBe(none.chunks);
    let firstBytes = 0;
    for (const [cid, len] of leaves.slice(0, 100)) {
      await copyFromAlpha(cid);
      firstBytes += len;
    }
    const some = await residencyOf(beta, rec(beta), { cells: 64, list: 200 });
    expect(some).toMatchObject({ state: 'partial', localBytes: firstBytes + inlineBytes, localChunks: 100 + inline.length, exact: true });
    expect(some.map![0].local).toBe(1);
    expect(some.map![63].local).toBe(0);
    expect(some.chunkList!.slice(0, 100).every((c) => c.local === true)).toBe(true);
    expect(some.chunkList![100].local).toBe(false);
    // A spent presence-check budget makes the rest unknown, not "elsewhere".
    const capped = await residencyOf(beta, rec(beta), { maxChecks: 10 });
    expect(capped).toMatchObject({ localChunks: 10 + inline.length, exact: false });
    expect(capped.unknownBytes).toBe(body.length - capped.localBytes);
    expect(asked).toEqual([]);
    expect(beta.reader.counters).toEqual({ recovered: 0, corrupt: 0, missing: 0 });
  });

  it('reports a delete marker as none and an empty object as local', async () => {
    const versions = alpha.versions('bkt', { prefix: 'empty' }).items;
    expect(versions.map((v) => v.deleted)).toEqual([true, false]);
    expect((await residencyOf(alpha, rec(alpha, versions[0].versionId))).state).toBe('none');
    expect((await residencyOf(beta, rec(beta, versions[1].versionId))).state).toBe('local');
  });
});

describe('sign-in proof in the browser', () => {
  it('computes SHA-256 exactly as node:crypto does', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 1_000_003]) {
      const data = randomBytes(n);
      expect(hex(sha256(data)), `length ${n}`).toBe(createHash('sha256').update(data).digest('hex'));
    }
  });

  it('computes the same HMAC proof as the server', () => {
    const secrets = ['s', 'stitch-world-secret-0123456789abcdefghijk', 'x'.repeat(64), 'y'.repeat(65), 'ключ-秘密-🔑', randomBytes(30).toString('base64')];
    for (const secret of secrets) {
      expect(loginProof(secret, 'AKID', 'ab'.repeat(24)), secret).toBe(computeProof(secret, 'AKID', 'ab'.repeat(24)));
    }
    // RFC 4231 test case 2.
    const enc = new TextEncoder();
    expect(hex(hmacSha256(enc.encode('Jefe'), enc.encode('what do ya want for nothing?'))))
      .toBe('5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  });
});

describe('sessions', () => {
  const keys = new Map([['AK', 'SK']]);
  const store = { secretFor: (id: string) => keys.get(id) };
  const signIn = (auth: ConsoleAuth, secret = 'SK', client = 'c') => {
    const { nonce } = auth.challenge();
    return auth.login({ accessKeyId: 'AK', nonce, proof: computeProof(secret, 'AK', nonce) }, client);
  };

  it('expires challenges, idle sessions and old sessions', () => {
    let now = 1_000_000;
    const auth = new ConsoleAuth(store, () => now);
    const { nonce } = auth.challenge();
    now += 121_000;
    expect(auth.login({ accessKeyId: 'AK', nonce, proof: computeProof('SK', 'AK', nonce) }, 'c')).toMatchObject({ ok: false, status: 401 });
    const r = signIn(auth);
    if (!r.ok) throw new Error('sign-in failed');
    const cookie = `other=1; stitch_console=${r.session.id}`;
    expect(auth.session(cookie)?.accessKeyId).toBe('AK');
    now += 2 * 3600_000 + 1;
    expect(auth.session(cookie)).toBeUndefined();
    const r2 = signIn(auth);
    if (!r2.ok) throw new Error('sign-in failed');
    for (let i = 0; i < 13; i++) {
      now += 3600_000;
      if (i < 11) expect(auth.session(`stitch_console=${r2.session.id}`), `hour ${i}`).toBeDefined();
    }
    expect(auth.session(`stitch_console=${r2.session.id}`)).toBeUndefined();
  });

  it('ends sessions whose access key was removed', () => {
    const auth = new ConsoleAuth(store);
    const r = signIn(auth);
    if (!r.ok) throw new Error('sign-in failed');
    keys.delete('AK');
    try {
      expect(auth.session(`stitch_console=${r.session.id}`)).toBeUndefined();
    } finally {
      keys.set('AK', 'SK');
    }
  });

  it('limits failures per client, not for everyone', () => {
    const auth = new ConsoleAuth(store);
    for (let i = 0; i < 10; i++) expect(signIn(auth, 'wrong', 'mallory')).toMatchObject({ ok: false, status: 401 });
    expect(signIn(auth, 'SK', 'mallory')).toMatchObject({ ok: false, status: 429 });
    expect(signIn(auth, 'SK', 'alice').ok).toBe(true);
  });

  it('reads only well-formed cookie values', () => {
    expect(readCookie('a=1; stitch_console=abc_DEF-9', 'stitch_console')).toBe('abc_DEF-9');
    expect(readCookie('stitch_console=../../x', 'stitch_console')).toBeUndefined();
    expect(readCookie('stitch_console=' + 'a'.repeat(500), 'stitch_console')).toBeUndefined();
    expect(readCookie(undefined, 'stitch_console')).toBeUndefined();
  });
});

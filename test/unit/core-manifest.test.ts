import { generateKeyPairSync } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { describe, expect, it } from 'vitest';
import {
  FANOUT,
  INLINE_MAX_ENTRIES,
  allCids,
  blockCid,
  buildContent,
  chunksInRange,
  contentLength,
  decodeNode,
  type ChunkRef,
  type ContentRef,
  type LocatedChunk,
} from '../../src/core/chunk-manifest.ts';
import { chunkCid, type CID } from '../../src/core/cid.ts';
import { StitchError, isStitchError, type ErrorCode } from '../../src/core/errors.ts';
import { HybridClock, TICKS_PER_MS, hlcFromMillis, hlcToMillis } from '../../src/core/hlc.ts';
import { MAX_KEY_BYTES, checkBucketName, checkKey } from '../../src/core/names.ts';
import {
  compareVersions,
  decodeVersion,
  signVersion,
  verifyVersion,
  type VersionManifest,
} from '../../src/core/version-manifest.ts';

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

// Fake chunk list: distinct CIDs (of the entry's index), random lengths 1..maxLen.
function fakeRefs(n: number, seed: number, maxLen = 5000): ChunkRef[] {
  const next = rng(seed);
  const refs: ChunkRef[] = [];
  for (let i = 0; i < n; i++) refs.push([chunkCid(Buffer.from(`chunk ${seed} ${i}`)), 1 + (next() % maxLen)]);
  return refs;
}

function bruteForce(refs: ChunkRef[], start: number, end: number): { cid: string; offset: number; length: number }[] {
  const out: { cid: string; offset: number; length: number }[] = [];
  let offset = 0;
  for (const [cid, length] of refs) {
    if (offset < end && offset + length > start) out.push({ cid: cid.toString(), offset, length });
    offset += length;
  }
  return out;
}

function storeOf(blocks: { cid: CID; bytes: Uint8Array }[]) {
  const map = new Map(blocks.map((b) => [b.cid.toString(), b.bytes]));
  const loads: string[] = [];
  const load = async (cid: CID) => {
    loads.push(cid.toString());
    const bytes = map.get(cid.toString());
    if (!bytes) throw new Error(`no block ${cid}`);
    return bytes;
  };
  return { map, loads, load };
}

async function collect(content: ContentRef, start: number, end: number, load: (cid: CID) => Promise<Uint8Array>) {
  const out: { cid: string; offset: number; length: number }[] = [];
  for await (const c of chunksInRange(content, start, end, load) as AsyncGenerator<LocatedChunk>) {
    out.push({ cid: c.cid.toString(), offset: c.offset, length: c.length });
  }
  return out;
}

describe('chunk manifests', () => {
  it('inline up to INLINE_MAX_ENTRIES, a single leaf block just above it', () => {
    expect(INLINE_MAX_ENTRIES).toBe(1024);
    expect(FANOUT).toBe(4096);
    const empty = buildContent([]);
    expect(empty).toEqual({ content: { chunks: [] }, blocks: [] });

    const inline = fakeRefs(INLINE_MAX_ENTRIES, 1);
    const a = buildContent(inline);
    expect(a.blocks).toEqual([]);
    expect('chunks' in a.content && a.content.chunks).toBe(inline);

    const refs = fakeRefs(INLINE_MAX_ENTRIES + 1, 2);
    const b = buildContent(refs);
    expect(b.blocks.length).toBe(1);
    expect('tree' in b.content).toBe(true);
    const root = b.blocks[0];
    expect('tree' in b.content && b.content.tree.equals(root.cid)).toBe(true);
    expect(blockCid(root.bytes).equals(root.cid)).toBe(true);
    expect(root.cid.code).toBe(0x71); // dag-cbor
    const node = decodeNode(root.bytes);
    expect('leaf' in node && node.leaf.map(([c, l]) => [c.toString(), l])).toEqual(refs.map(([c, l]) => [c.toString(), l]));
  });

  it('more than FANOUT*2 entries make a two-level tree whose blocks stay bounded', async () => {
    const n = FANOUT * 2 + 123;
    const refs = fakeRefs(n, 3);
    const { content, blocks } = buildContent(refs);
    expect('tree' in content).toBe(true);
    // Three leaves and one root of children.
    expect(blocks.length).toBe(4);
    const root = decodeNode(blocks[blocks.length - 1].bytes);
    expect('children' in root).toBe(true);
    if (!('children' in root) || !('tree' in content)) throw new Error('unreachable');
    expect(content.tree.equals(blocks[3].cid)).toBe(true);
    expect(root.children.map(([c]) => c.toString())).toEqual(blocks.slice(0, 3).map((b) => b.cid.toString()));
    expect(root.children.map(([, l]) => l)).toEqual([
      contentLength(refs.slice(0, FANOUT)),
      contentLength(refs.slice(FANOUT, 2 * FANOUT)),
      contentLength(refs.slice(2 * FANOUT)),
    ]);
    for (const b of blocks) {
      expect(b.bytes.length).toBeLessThan(1024 * 1024);
      expect(blockCid(b.bytes).equals(b.cid)).toBe(true);
    }
    // Deterministic: the same list gives the same root.
    const again = buildContent(refs.map(([c, l]) => [c, l] as ChunkRef));
    expect('tree' in again.content && again.content.tree.equals(content.tree)).toBe(true);

    const store = storeOf(blocks);
    const all = await allCids(content, store.load);
    expect(all.chunks.map(([c, l]) => `${c}:${l}`)).toEqual(refs.map(([c, l]) => `${c}:${l}`));
    expect(new Set(all.blocks.map(String))).toEqual(new Set(blocks.map((b) => b.cid.toString())));
  });

  it('chunksInRange over inline and tree forms equals brute force on many random ranges', async () => {
    const next = rng(42);
    const cases: { refs: ChunkRef[]; label: string }[] = [
      { refs: fakeRefs(300, 4), label: 'inline' },
      { refs: fakeRefs(INLINE_MAX_ENTRIES + 500, 5), label: 'one leaf' },
      { refs: fakeRefs(FANOUT * 2 + 7, 6, 300), label: 'two levels' },
    ];
    for (const { refs, label } of cases) {
      const { content, blocks } = buildContent(refs);
      const store = storeOf(blocks);
      const total = contentLength(refs);
      const ranges: [number, number][] = [[0, total], [0, 1], [total - 1, total], [0, 0], [total, total + 10]];
      // Ranges exactly on chunk boundaries, and random ones (short, long, past the end).
      let off = 0;
      // (Decoding a 4096-entry leaf takes ~15 ms: the tree cases get fewer ranges than the inline one.)
      const tree = blocks.length > 0;
      for (let i = 0; i < refs.length; i += Math.max(1, Math.floor(refs.length / (tree ? 8 : 40)))) {
        off = contentLength(refs.slice(0, i));
        ranges.push([off, off + refs[i][1]], [off, off + 1], [Math.max(0, off - 1), off + 1]);
      }
      for (let i = 0; i < (tree ? 30 : 400); i++) {
        const s = next() % total;
        const len = i % 3 === 0 ? 1 + (next() % 10) : 1 + (next() % (i % 3 === 1 ? 50_000 : total));
        ranges.push([s, s + len]);
      }
      for (const [s, e] of ranges) {
        const got = await collect(content, s, e, store.load);
        expect(got, `${label} [${s}, ${e})`).toEqual(bruteForce(refs, s, e));
      }
    }
  });

  it('a range read loads only the tree blocks on its path', async () => {
    const refs = fakeRefs(FANOUT * 2 + 7, 7, 300);
    const { content, blocks } = buildContent(refs);
    const store = storeOf(blocks);
    const firstLeafEnd = contentLength(refs.slice(0, FANOUT));
    await collect(content, 10, 20, store.load);
    expect(store.loads).toEqual([blocks[3].cid.toString(), blocks[0].cid.toString()]);
    store.loads.length = 0;
    // Across the first leaf boundary: root + two leaves.
    await collect(content, firstLeafEnd - 5, firstLeafEnd + 5, store.load);
    expect(store.loads).toEqual([blocks[3], blocks[0], blocks[1]].map((b) => b.cid.toString()));
  });

  it('decodeNode refuses blocks that are not manifest nodes', () => {
    expect(() => decodeNode(dagCbor.encode({ foo: 1 }))).toThrow(/not a chunk manifest block/);
    expect(() => decodeNode(dagCbor.encode(5))).toThrow();
  });
});

describe('version manifests', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const other = generateKeyPairSync('ed25519');

  function manifest(over: Partial<VersionManifest> = {}): VersionManifest {
    return {
      bucket: 'photos',
      key: 'a/b.jpg',
      size: 3,
      etag: 'abc',
      contentType: 'image/jpeg',
      meta: { who: 'me' },
      headers: { 'cache-control': 'no-cache' },
      mtime: 1_700_000_000_000,
      content: { chunks: [[chunkCid(Buffer.from('abc')), 3]] },
      parent: null,
      deleted: false,
      hlc: 1_700_000_000_000_000,
      origin: 'us-west',
      ...over,
    };
  }

  it('sign, decode and verify round trip', () => {
    const m = manifest({ posix: { mode: 0o100644, uid: 1000, gid: 1000 } });
    const signed = signVersion(m, privateKey);
    expect(signed.vid.code).toBe(0x71);
    const decoded = decodeVersion(signed.bytes);
    expect(decoded.vid.equals(signed.vid)).toBe(true);
    expect(verifyVersion(decoded, publicKey)).toBe(true);
    expect(verifyVersion(decoded, other.publicKey)).toBe(false);
    const d = decoded.manifest;
    expect({ ...d, content: undefined }).toEqual({ ...m, content: undefined });
    expect('chunks' in d.content && d.content.chunks[0][0].equals(chunkCid(Buffer.from('abc')))).toBe(true);
    // Deterministic: ed25519 and DAG-CBOR give the same bytes, so the same version id.
    expect(signVersion(m, privateKey).vid.equals(signed.vid)).toBe(true);
    // Optional fields are omitted, not encoded as undefined/null.
    const plain = signVersion(manifest({ posix: undefined }), privateKey);
    expect('posix' in decodeVersion(plain.bytes).manifest).toBe(false);
    expect(verifyVersion(decodeVersion(plain.bytes), publicKey)).toBe(true);
    // A parent link survives the round trip.
    const child = signVersion(manifest({ parent: signed.vid }), privateKey);
    expect(decodeVersion(child.bytes).manifest.parent?.equals(signed.vid)).toBe(true);
  });

  it('tampering fails verification', () => {
    const signed = signVersion(manifest(), privateKey);
    const rec = dagCbor.decode(signed.bytes) as Record<string, unknown>;
    for (const [field, value] of [
      ['size', 4], ['key', 'a/c.jpg'], ['deleted', true], ['hlc', 1], ['origin', 'eu'], ['meta', {}], ['etag', 'abd'],
    ] as const) {
      const forged = decodeVersion(dagCbor.encode({ ...rec, [field]: value }));
      expect(verifyVersion(forged, publicKey), field).toBe(false);
      expect(forged.vid.equals(signed.vid)).toBe(false);
    }
    const sig = Buffer.from(signed.sig);
    sig[10] ^= 1;
    expect(verifyVersion(decodeVersion(dagCbor.encode({ ...rec, sig })), publicKey)).toBe(false);
    // A version re-signed by another key is valid only for that key.
    const resigned = signVersion(manifest(), other.privateKey);
    expect(verifyVersion(resigned, publicKey)).toBe(false);
    expect(verifyVersion(resigned, other.publicKey)).toBe(true);
  });

  it('decodeVersion refuses what is not a signed version manifest', () => {
    expect(() => decodeVersion(dagCbor.encode({ v: 1, ...manifest() }))).toThrow(/not a version manifest/);
    expect(() => decodeVersion(dagCbor.encode({ hello: 'world' }))).toThrow();
    const signed = signVersion(manifest(), privateKey);
    const rec = dagCbor.decode(signed.bytes) as Record<string, unknown>;
    expect(() => decodeVersion(dagCbor.encode({ ...rec, v: 2 }))).toThrow();
    expect(() => decodeVersion(dagCbor.encode({ ...rec, hlc: 'soon' }))).toThrow(/malformed/);
    expect(() => decodeVersion(new Uint8Array([0xff, 0x00]))).toThrow();
  });

  it('the version id changes with every field', () => {
    const base = signVersion(manifest(), privateKey).vid.toString();
    const variants: Partial<VersionManifest>[] = [
      { bucket: 'photos2' }, { key: 'a/b.jpeg' }, { size: 4 }, { etag: 'abd' }, { contentType: 'image/png' },
      { meta: { who: 'you' } }, { meta: {} }, { headers: {} }, { mtime: 1_700_000_000_001 },
      { content: { chunks: [[chunkCid(Buffer.from('abd')), 3]] } }, { content: { tree: chunkCid(Buffer.from('x')) } },
      { parent: chunkCid(Buffer.from('p')) }, { deleted: true }, { hlc: 1_700_000_000_000_001 }, { origin: 'us-east' },
      { posix: { mode: 0o100600, uid: 0, gid: 0 } },
    ];
    const vids = variants.map((v) => signVersion(manifest(v), privateKey).vid.toString());
    expect(vids).not.toContain(base);
    expect(new Set(vids).size).toBe(variants.length);
  });

  it('compareVersions orders by hlc, then breaks ties on origin', () => {
    expect(compareVersions({ hlc: 1, origin: 'b' }, { hlc: 2, origin: 'a' })).toBe(-1);
    expect(compareVersions({ hlc: 2, origin: 'a' }, { hlc: 1, origin: 'b' })).toBe(1);
    expect(compareVersions({ hlc: 5, origin: 'a' }, { hlc: 5, origin: 'b' })).toBe(-1);
    expect(compareVersions({ hlc: 5, origin: 'b' }, { hlc: 5, origin: 'a' })).toBe(1);
    expect(compareVersions({ hlc: 5, origin: 'a' }, { hlc: 5, origin: 'a' })).toBe(0);
    const vs = [
      { hlc: 7, origin: 'us-west' }, { hlc: 7, origin: 'eu' }, { hlc: 3, origin: 'zz' }, { hlc: 7, origin: 'us-east' },
    ];
    // Every segment sorting the same set agrees on the winner, whatever the input order.
    for (const order of [vs, [...vs].reverse(), [vs[2], vs[0], vs[3], vs[1]]]) {
      expect([...order].sort(compareVersions).map((v) => `${v.hlc}/${v.origin}`)).toEqual([
        '3/zz', '7/eu', '7/us-east', '7/us-west',
      ]);
    }
  });
});

describe('hybrid logical clock', () => {
  it('is strictly monotonic even when the wall clock goes backwards', () => {
    let now = 1_000_000;
    const clock = new HybridClock(0, () => now);
    const seen: number[] = [];
    for (let i = 0; i < 20; i++) seen.push(clock.tick());
    expect(seen[0]).toBe(1_000_000 * TICKS_PER_MS);
    now -= 5000; // clock stepped back 5 s
    for (let i = 0; i < 20; i++) seen.push(clock.tick());
    now += 100_000; // and forward again
    const jumped = clock.tick();
    seen.push(jumped);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
    expect(jumped).toBe(now * TICKS_PER_MS);
    expect(clock.current()).toBe(jumped);
  });

  it('borrows the next millisecond when one millisecond runs out of ticks', () => {
    const clock = new HybridClock(0, () => 5);
    let last = 0;
    for (let i = 0; i < TICKS_PER_MS + 10; i++) {
      const t = clock.tick();
      expect(t).toBeGreaterThan(last);
      last = t;
    }
    expect(hlcToMillis(last)).toBe(6);
  });

  it('observe() makes later local events order after a remote timestamp', () => {
    const clock = new HybridClock(0, () => 1000);
    const remote = 5000 * TICKS_PER_MS + 17;
    clock.observe(remote);
    expect(clock.current()).toBe(remote);
    expect(clock.tick()).toBe(remote + 1);
    clock.observe(10); // older: no effect
    expect(clock.tick()).toBe(remote + 2);
    // A clock restored from the highest stored timestamp continues after it.
    const restored = new HybridClock(remote + 2, () => 1000);
    expect(restored.tick()).toBe(remote + 3);
  });

  it('converts to and from milliseconds', () => {
    expect(hlcToMillis(1234 * TICKS_PER_MS + 999)).toBe(1234);
    expect(hlcFromMillis(1234)).toBe(1234 * TICKS_PER_MS + TICKS_PER_MS - 1);
    // Every tick issued within a millisecond is <= hlcFromMillis of it: what `get --at` relies on.
    const clock = new HybridClock(0, () => 1234);
    for (let i = 0; i < 10; i++) expect(clock.tick()).toBeLessThanOrEqual(hlcFromMillis(1234));
    expect(Number.isSafeInteger(hlcFromMillis(Date.UTC(2200, 0, 1)))).toBe(true);
  });
});

describe('names', () => {
  function codeOf(fn: () => void): ErrorCode | 'ok' {
    try {
      fn();
      return 'ok';
    } catch (err) {
      if (!isStitchError(err)) throw err;
      expect(err).toBeInstanceOf(StitchError);
      return err.code;
    }
  }

  it('accepts valid bucket names and rejects invalid ones with InvalidBucketName', () => {
    for (const ok of ['abc', 'my-bucket', 'my.bucket.1', '0ab', 'a'.repeat(63), 'a-b']) {
      expect(codeOf(() => checkBucketName(ok)), ok).toBe('ok');
    }
    for (const bad of [
      '', 'ab', 'a'.repeat(64), 'Abc', 'my_bucket', '-abc', 'abc-', '.abc', 'abc.', 'a..b', '192.168.1.1',
      'abc/def', 'ab c', 'ábc', 'abc\0',
    ]) {
      expect(codeOf(() => checkBucketName(bad)), JSON.stringify(bad)).toBe('InvalidBucketName');
    }
  });

  it('accepts valid keys', () => {
    for (const ok of [
      'a', 'a/b/c', 'dir/', '/leading', 'a//b', '...', '.hidden', 'a/..b', 'a/b..', 'ключ/файл', '😀/🎉',
      'x'.repeat(MAX_KEY_BYTES), 'é'.repeat(MAX_KEY_BYTES / 2), 'with space', 'tab\there', 'new\nline',
    ]) {
      expect(codeOf(() => checkKey(ok)), JSON.stringify(ok.slice(0, 40))).toBe('ok');
    }
  });

  it('rejects bad keys with the right codes', () => {
    const cases: [string, ErrorCode][] = [
      ['', 'InvalidKey'],
      ['.', 'InvalidKey'],
      ['..', 'InvalidKey'],
      ['a/./b', 'InvalidKey'],
      ['a/../b', 'InvalidKey'],
      ['../etc/passwd', 'InvalidKey'],
      ['a/..', 'InvalidKey'],
      ['./a', 'InvalidKey'],
      ['a/.', 'InvalidKey'],
      ['a\0b', 'InvalidKey'],
      ['\0', 'InvalidKey'],
      ['bad\uD800surrogate', 'InvalidKey'],
      ['lone low \uDC00', 'InvalidKey'],
      ['\uDFFF\uD800', 'InvalidKey'],
      ['x'.repeat(MAX_KEY_BYTES + 1), 'KeyTooLong'],
      ['é'.repeat(MAX_KEY_BYTES / 2 + 1), 'KeyTooLong'],
      ['😀'.repeat(MAX_KEY_BYTES / 4) + 'a', 'KeyTooLong'],
    ];
    for (const [key, code] of cases) expect(codeOf(() => checkKey(key)), JSON.stringify(key.slice(0, 40))).toBe(code);
  });
});

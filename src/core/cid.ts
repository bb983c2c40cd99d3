import { createHash } from 'node:crypto';
import { CID } from 'multiformats/cid';
import * as raw from 'multiformats/codecs/raw';
import * as Digest from 'multiformats/hashes/digest';
import { from } from 'multiformats/hashes/hasher';

// sha2-256 from node:crypto (SHA-NI, ~1.5 GB/s here) wrapped as a multiformats hasher; the
// pure-JS hashers measured 20-60x slower and must stay off the data path.
export const sha256 = from({
  name: 'sha2-256',
  code: 0x12,
  encode: (input: Uint8Array) => createHash('sha256').update(input).digest(),
});

export const RAW_CODE = raw.code;

// Chunks up to one page are carried inside the manifest as identity-hash CIDs: the CID is the
// bytes. A 4 KiB object then costs no file, inode or fsync, its metadata commit is its only
// write, and it needs no fetch on another segment. (IPFS inlines tiny blocks the same way;
// Garage inlines objects under 3 KiB and MinIO under 128 KiB in their metadata.)
export const INLINE_CHUNK_BYTES = 4096;
const IDENTITY_CODE = 0x00;

export function isInlineCid(cid: CID): boolean {
  return cid.multihash.code === IDENTITY_CODE;
}

export function inlineBytes(cid: CID): Uint8Array {
  return cid.multihash.digest;
}

// The CID of a chunk given as one buffer or the pieces it spans: inline for tiny chunks unless
// the caller says otherwise, sha2-256 otherwise.
export function cidForChunk(bytes: Uint8Array | readonly Uint8Array[], opts: { inline?: boolean } = {}): CID {
  const pieces = bytes instanceof Uint8Array ? [bytes] : bytes;
  const length = pieces.reduce((n, p) => n + p.length, 0);
  if ((opts.inline ?? true) && length <= INLINE_CHUNK_BYTES) {
    const inline = pieces.length === 1 ? pieces[0] : Buffer.concat(pieces, length);
    return CID.createV1(raw.code, Digest.create(IDENTITY_CODE, inline));
  }
  const h = createHash('sha256');
  for (const p of pieces) h.update(p);
  return chunkCidFromDigest(h.digest());
}

export function chunkCidFromDigest(digest: Uint8Array): CID {
  return CID.createV1(raw.code, Digest.create(sha256.code, digest));
}

export function chunkCid(bytes: Uint8Array): CID {
  return chunkCidFromDigest(createHash('sha256').update(bytes).digest());
}

// True when bytes are exactly what the CID names. Only sha2-256 (and inline identity CIDs) are
// accepted: a CID naming another hash function is refused rather than trusted.
export function verifyChunk(cid: CID, bytes: Uint8Array): boolean {
  if (isInlineCid(cid)) return Buffer.compare(cid.multihash.digest, bytes) === 0;
  if (cid.multihash.code !== sha256.code) return false;
  const got = createHash('sha256').update(bytes).digest();
  return Buffer.compare(got, cid.multihash.digest) === 0;
}

// Off-thread verification for large chunks: WebCrypto's digest runs on the libuv pool, so a
// reader hashes while the main thread serves other requests, using both cores.
const ASYNC_VERIFY_MIN_BYTES = 64 * 1024;

export async function verifyChunkAsync(cid: CID, bytes: Uint8Array): Promise<boolean> {
  if (bytes.length < ASYNC_VERIFY_MIN_BYTES || cid.multihash.code !== sha256.code) return verifyChunk(cid, bytes);
  const got = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>));
  return Buffer.compare(got, cid.multihash.digest) === 0;
}

export function parseCid(text: string): CID {
  return CID.parse(text);
}

export { CID };

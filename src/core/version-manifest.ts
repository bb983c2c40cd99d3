import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import * as Digest from 'multiformats/hashes/digest';
import { sha256 } from './cid.ts';
import type { ContentRef } from './chunk-manifest.ts';
import type { Hlc } from './hlc.ts';

// What S3 reports for an object stored without a Content-Type.
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

// POSIX attributes a FUSE mount keeps as metadata; absent for objects written over S3.
export interface PosixAttrs {
  mode: number;
  uid: number;
  gid: number;
  target?: string;
}

// One version of one object. Its DAG-CBOR encoding (with the signature) hashes to its CID, which is
// the version id; so a version id names exactly one content, metadata and history.
export interface VersionManifest {
  bucket: string;
  key: string;
  size: number;
  etag: string;
  contentType: string;
  meta: Record<string, string>;
  // Standard headers kept verbatim (content-encoding, cache-control, ...), lowercase names.
  headers: Record<string, string>;
  mtime: number;
  content: ContentRef;
  parent: CID | null;
  deleted: boolean;
  hlc: Hlc;
  origin: string;
  posix?: PosixAttrs;
}

export interface SignedVersion {
  manifest: VersionManifest;
  sig: Uint8Array;
  bytes: Uint8Array;
  vid: CID;
}

type Encoded = VersionManifest & { v: 1; sig?: Uint8Array };

// DAG-CBOR has no `undefined`: optional fields are left out, not encoded as null.
function record(m: VersionManifest, sig?: Uint8Array): Encoded {
  const rec: Encoded = { v: 1, ...m };
  if (rec.posix === undefined) delete rec.posix;
  if (sig) rec.sig = sig;
  return rec;
}

function unsignedBytes(m: VersionManifest): Uint8Array {
  return dagCbor.encode(record(m));
}

export function versionCid(bytes: Uint8Array): CID {
  return CID.createV1(dagCbor.code, Digest.create(sha256.code, createHash('sha256').update(bytes).digest()));
}

export function signVersion(manifest: VersionManifest, key: KeyObject): SignedVersion {
  const sig = sign(null, unsignedBytes(manifest), key);
  const bytes = dagCbor.encode(record(manifest, sig));
  return { manifest, sig, bytes, vid: versionCid(bytes) };
}

// Decodes a signed version and checks its shape; the signature is checked by verifyVersion with the
// origin's key, which only the caller (allowlist) can supply.
export function decodeVersion(bytes: Uint8Array): SignedVersion {
  const rec = dagCbor.decode(bytes) as Encoded;
  if (!rec || rec.v !== 1 || !(rec.sig instanceof Uint8Array)) throw new Error('not a version manifest');
  const { v: _v, sig, ...manifest } = rec;
  // The timestamp orders versions everywhere (SQL, the clock): a non-integer, negative or unsafe one
  // would compare wrongly or round, so such a manifest is malformed whoever signed it.
  if (typeof manifest.bucket !== 'string' || typeof manifest.key !== 'string' || !Number.isSafeInteger(manifest.hlc) || manifest.hlc < 0) {
    throw new Error('malformed version manifest');
  }
  return { manifest: manifest as VersionManifest, sig, bytes, vid: versionCid(bytes) };
}

export function verifyVersion(v: SignedVersion, originKey: KeyObject): boolean {
  return verify(null, unsignedBytes(v.manifest), originKey, v.sig);
}

// Total order used by every segment to pick the current version: newer HLC wins, and the origin
// name breaks ties so two segments writing in the same tick still agree.
export function compareVersions(a: { hlc: Hlc; origin: string }, b: { hlc: Hlc; origin: string }): number {
  if (a.hlc !== b.hlc) return a.hlc < b.hlc ? -1 : 1;
  return a.origin < b.origin ? -1 : a.origin > b.origin ? 1 : 0;
}

// Checkers run after a fault (and recovery) against a live S3 endpoint:
//  - resolve: every version the segment lists that no acknowledged write explains must be a write
//    that was in flight at the fault, with that write's exact bytes (else it is a phantom);
//  - acknowledged: every acknowledged version is listed and reads back with its bytes and ETag
//    (a delete marker answers as one);
//  - heads: each key's current version is its last acknowledged (or landed in-flight) write;
//  - torn: every listed object reads back whole with its listed size and ETag, and is a version
//    some write produced.
import type { Ledger, Op } from './ledger.ts';
import type { Rng } from './rng.ts';
import type { ListedVersion, S3Client } from './s3.ts';

export interface VerifyReport {
  versionsListed: number;
  acknowledgedChecked: number;
  objectsRead: number;
  bytesVerified: number;
  committedInDoubt: number;
  absentInDoubt: number;
  // Acknowledged writes missing or wrong: the number that must stay 0.
  lost: number;
  problems: string[];
}

export function emptyReport(): VerifyReport {
  return { versionsListed: 0, acknowledgedChecked: 0, objectsRead: 0, bytesVerified: 0, committedInDoubt: 0, absentInDoubt: 0, lost: 0, problems: [] };
}

export function mergeReports(into: VerifyReport, r: VerifyReport): VerifyReport {
  for (const k of ['versionsListed', 'acknowledgedChecked', 'objectsRead', 'bytesVerified', 'committedInDoubt', 'absentInDoubt', 'lost'] as const) into[k] += r[k];
  into.problems.push(...r.problems);
  return into;
}

const MAX_PROBLEMS = 50;

function problem(r: VerifyReport, msg: string): void {
  if (r.problems.length < MAX_PROBLEMS) r.problems.push(msg);
}

export interface VerifyOptions {
  bucket: string;
  // Check only the ops of this segment (a cluster's workloads each write to their own).
  segment?: string;
  // Read back acknowledged versions of earlier epochs with this probability (current epoch: all).
  sampleOld?: number;
  rng?: Rng;
  // Check each key's current version against the ledger's order (only when one workload writes a
  // key: concurrent writers on several segments order by HLC, which the ledger does not see).
  heads?: boolean;
  // Read every listed object back (torn check).
  torn?: boolean;
  // Ops of the ledger in scope (default: all of `bucket`, and of `segment` if given).
  filter?: (op: Op) => boolean;
}

export async function verifyBucket(client: S3Client, ledger: Ledger, o: VerifyOptions): Promise<VerifyReport> {
  const r = emptyReport();
  const inScope = (op: Op) => !op.purged && op.bucket === o.bucket && (o.segment === undefined || op.segment === o.segment) && (o.filter?.(op) ?? true);
  const listed = await client.listVersions(o.bucket);
  r.versionsListed = listed.length;
  const byVid = new Map<string, ListedVersion>(listed.map((v) => [v.versionId, v]));
  const known = ledger.knownVersions();

  // 1. Unexplained versions: in-flight writes that landed, or phantoms.
  for (const v of listed) {
    if (known.has(v.versionId)) continue;
    const candidates = ledger.unresolved(o.bucket, v.key).filter((op) => inScope(op) && (op.kind === 'del') === v.deleted);
    if (candidates.length === 0) {
      // Another segment's version (a cluster), or nothing explains it.
      if (o.segment === undefined) problem(r, `phantom version ${v.versionId} of ${v.key} (${v.deleted ? 'delete marker' : `${v.size} bytes`})`);
      continue;
    }
    let match: Op | undefined;
    if (v.deleted) match = candidates[0];
    else {
      const d = await client.getDigest(o.bucket, v.key, { versionId: v.versionId });
      r.objectsRead++;
      if (d.status === 200) {
        r.bytesVerified += d.size;
        match = candidates.find((op) => op.sha256 === d.sha256 && op.size === d.size);
      }
      if (match && match.etag !== v.etag) problem(r, `in-flight write ${match.id} to ${v.key} landed with ETag ${v.etag}, expected ${match.etag}`);
    }
    if (!match) {
      problem(r, `version ${v.versionId} of ${v.key} matches no write that was in flight (torn or phantom)`);
      continue;
    }
    match.resolved = 'committed';
    match.versionId = v.versionId;
    r.committedInDoubt++;
    known.set(v.versionId, match);
  }
  for (const op of ledger.ops) {
    if (inScope(op) && op.state !== 'acked' && op.resolved === undefined) {
      op.resolved = 'absent';
      r.absentInDoubt++;
    }
  }

  // 2. Acknowledged versions: listed, and (this epoch, or a sample of older ones) read back.
  for (const op of ledger.ops) {
    if (!inScope(op) || op.state !== 'acked') continue;
    const v = byVid.get(op.versionId!);
    if (!v) {
      r.lost++;
      problem(r, `LOST: acknowledged ${op.kind} #${op.id} of ${op.key} (version ${op.versionId}) is not listed`);
      continue;
    }
    if (v.key !== op.key || v.deleted !== (op.kind === 'del')) {
      r.lost++;
      problem(r, `LOST: version ${op.versionId} listed as ${v.key} ${v.deleted ? 'delete marker' : 'object'}, acknowledged as ${op.kind} of ${op.key}`);
      continue;
    }
    if (op.kind !== 'del' && v.etag !== op.etag) {
      r.lost++;
      problem(r, `LOST: version ${op.versionId} of ${op.key} listed with ETag ${v.etag}, acknowledged ${op.etag}`);
      continue;
    }
    const sample = op.epoch === ledger.epoch || (o.rng?.chance(o.sampleOld ?? 1) ?? true);
    if (!sample) continue;
    r.acknowledgedChecked++;
    if (op.kind === 'del') {
      const h = await client.head(o.bucket, op.key, op.versionId);
      if (h.status !== 405 || h.headers['x-amz-delete-marker'] !== 'true') {
        r.lost++;
        problem(r, `LOST: delete marker ${op.versionId} of ${op.key} answers HEAD ${h.status}`);
      }
      continue;
    }
    const d = await client.getDigest(o.bucket, op.key, { versionId: op.versionId }).catch((err: Error) => err);
    r.objectsRead++;
    if (d instanceof Error) {
      r.lost++;
      problem(r, `LOST: acknowledged ${op.key}@${op.versionId}: ${d.message}`);
      continue;
    }
    r.bytesVerified += d.size;
    if (d.status !== 200 || d.sha256 !== op.sha256 || d.size !== op.size || d.etag !== op.etag) {
      r.lost++;
      problem(r, `LOST: acknowledged ${op.key}@${op.versionId} reads ${d.status} ${d.code ?? ''} ${d.size} bytes sha ${d.sha256.slice(0, 12)} etag ${d.etag}, expected ${op.size} bytes sha ${op.sha256?.slice(0, 12)} etag ${op.etag}`);
    }
  }

  // 3. Heads: the last write (in ledger order) that exists is the current version.
  const latest = new Map<string, ListedVersion>();
  for (const v of listed) if (v.isLatest) latest.set(v.key, v);
  if (o.heads) {
    for (const key of ledger.keys(o.bucket)) {
      const ops = ledger.opsOf(o.bucket, key).filter((op) => inScope(op) && (op.state === 'acked' || op.resolved === 'committed'));
      if (ops.length === 0) continue;
      const want = ops[ops.length - 1];
      const got = latest.get(key);
      if (got?.versionId !== want.versionId) {
        problem(r, `head of ${key} is ${got?.versionId ?? 'nothing'}, expected ${want.versionId} (${want.kind} #${want.id})`);
      }
    }
  }

  // 4. Torn objects: what is listed reads back whole, as listed, and some write made it.
  if (o.torn ?? true) await checkListed(client, o.bucket, r, (vid) => known.get(vid), o.segment === undefined && !o.filter);
  return r;
}

// Every object the bucket lists reads back whole, with its listed size and ETag (an MD5 ETag is
// the MD5 of the bytes). With `known`, each current version must be one some write produced, with
// that write's bytes.
export async function checkListed(
  client: S3Client, bucket: string, r: VerifyReport, known?: (vid: string) => Op | undefined, strict = false,
): Promise<void> {
  const objects = await client.listObjects(bucket);
  for (const obj of objects) {
    const d = await client.getDigest(bucket, obj.key).catch((err: Error) => err);
    r.objectsRead++;
    if (d instanceof Error) {
      problem(r, `listed ${obj.key} does not read back: ${d.message}`);
      continue;
    }
    r.bytesVerified += d.size;
    if (d.status !== 200 || d.size !== obj.size || d.etag !== obj.etag || (!obj.etag.includes('-') && d.md5 !== obj.etag)) {
      problem(r, `TORN: listed ${obj.key} (${obj.size} bytes, ETag ${obj.etag}) reads ${d.status} ${d.code ?? ''} ${d.size} bytes md5 ${d.md5} ETag ${d.etag}`);
      continue;
    }
    if (!known) continue;
    const op = d.versionId ? known(d.versionId) : undefined;
    if (op && op.sha256 !== d.sha256) problem(r, `TORN: ${obj.key}@${d.versionId} has other bytes than write #${op.id}`);
    if (!op && strict) problem(r, `listed ${obj.key}@${d.versionId} was written by nobody`);
  }
}

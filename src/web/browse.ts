// Metadata-only browsing of the global namespace: every answer here comes from the name index
// and local presence checks (residency.ts), so opening any page moves zero chunk bytes. Listings
// are server-side pages of at most MAX_PAGE entries (one bounded range scan each), so a
// directory of millions of keys costs the same per page as one of ten.
import { StitchError } from '../core/errors.ts';
import { hlcToMillis, TICKS_PER_MS } from '../core/hlc.ts';
import { checkKey } from '../core/names.ts';
import { policyFor, type PeerConfig } from '../isgw/config.ts';
import type { ObjectSummary, Segment } from '../segment/segment.ts';
import type { VersionRecord } from '../store/meta-store.ts';
import { residencyOf, type Residency } from './residency.ts';

export const MAX_PAGE = 1000;
export const DEFAULT_PAGE = 100;

export interface VersionRow {
  key: string;
  versionId: string;
  size: number;
  etag: string;
  mtime: number;
  hlc: number;
  // The HLC as wall-clock milliseconds and its logical counter within that millisecond.
  hlcTime: number;
  hlcLogical: number;
  origin: string;
  deleted: boolean;
  isLatest?: boolean;
  residency: Omit<Residency, 'map' | 'chunkList'>;
}

// Residency for rows of a listing: cheap (inline manifests are exact from one indexed query; a
// tree gets a small budget of local block reads and presence checks, the rest is "unknown").
const LISTING_BUDGET = { maxChecks: 256, maxBlocks: 4 };

function rowOf(s: ObjectSummary & { isLatest?: boolean }, residency: Residency): VersionRow {
  const { map: _m, chunkList: _c, ...summary } = residency;
  return {
    key: s.key, versionId: s.versionId, size: s.size, etag: s.etag, mtime: s.mtime, hlc: s.hlc,
    hlcTime: hlcToMillis(s.hlc), hlcLogical: s.hlc % TICKS_PER_MS, origin: s.origin, deleted: s.deleted,
    ...(s.isLatest !== undefined ? { isLatest: s.isLatest } : {}),
    residency: summary,
  };
}

function record(segment: Segment, vid: string): VersionRecord {
  const rec = segment.meta.getVersion(vid);
  if (!rec) throw new StitchError('NoSuchVersion', `version ${vid} is gone`);
  return rec;
}

export function buckets(segment: Segment, peers: PeerConfig[]): unknown {
  return segment.listBuckets().map((b) => ({
    name: b.name,
    created: b.created,
    versioning: b.versioning,
    publicRead: b.publicRead,
    links: peers.flatMap((p) => {
      const pol = policyFor(p, b.name);
      return pol ? [{ peer: p.name, mode: pol.mode, direction: pol.direction }] : [];
    }),
  }));
}

export async function listObjects(segment: Segment, q: { bucket: string; prefix: string; after?: string; limit: number; flat: boolean }): Promise<unknown> {
  const page = segment.list(q.bucket, { prefix: q.prefix, delimiter: q.flat ? undefined : '/', after: q.after, limit: q.limit });
  const items: VersionRow[] = [];
  for (const s of page.items) items.push(rowOf(s, await residencyOf(segment, record(segment, s.versionId), LISTING_BUDGET)));
  return {
    bucket: q.bucket, prefix: q.prefix, delimiter: q.flat ? null : '/', limit: q.limit,
    prefixes: page.commonPrefixes, items, truncated: page.truncated, next: page.truncated ? page.next : null,
  };
}

// The versions of one key, newest first, a page at a time (`after` is a version id of that key).
export async function objectVersions(segment: Segment, q: { bucket: string; key: string; after?: string; limit: number }): Promise<unknown> {
  checkKey(q.key);
  segment.bucket(q.bucket);
  const page = segment.versions(q.bucket, {
    prefix: q.key, limit: q.limit, ...(q.after ? { after: q.key, afterVersion: q.after } : {}),
  });
  const mine = page.items.filter((v) => v.key === q.key);
  // Versions of longer keys sort after every version of this one: one of them ends the list.
  const more = page.truncated && mine.length === page.items.length;
  if (mine.length === 0 && !q.after) throw new StitchError('NoSuchKey', `no object ${q.bucket}/${q.key}`);
  const versions: VersionRow[] = [];
  for (const v of mine) versions.push(rowOf(v, await residencyOf(segment, record(segment, v.versionId), LISTING_BUDGET)));
  const head = segment.meta.head(q.bucket, q.key);
  return {
    bucket: q.bucket, key: q.key,
    head: head ? { versionId: head.vid, deleted: head.deleted } : null,
    versions, truncated: more, next: more ? mine[mine.length - 1].versionId : null,
  };
}

// One version in full: its manifest's attributes and where each part of its data is.
export async function versionDetail(segment: Segment, q: { bucket: string; key: string; versionId?: string; cells: number }): Promise<unknown> {
  checkKey(q.key);
  let vid = q.versionId;
  if (!vid) {
    const head = segment.meta.head(segment.bucket(q.bucket).name, q.key);
    if (!head) throw new StitchError('NoSuchKey', `no object ${q.bucket}/${q.key}`);
    vid = head.vid;
  }
  const v = await segment.head(q.bucket, q.key, { versionId: vid });
  const rec = record(segment, v.versionId);
  const residency = await residencyOf(segment, rec, { cells: q.cells, list: 512 });
  const chunkList = residency.chunkList;
  const row = rowOf(v, residency);
  return {
    version: {
      ...row,
      contentType: v.contentType, meta: v.meta, headers: v.headers, posix: v.posix ?? null,
      manifest: 'chunks' in v.content ? 'inline' : 'tree',
    },
    map: residency.map ?? [],
    chunks: chunkList ?? [],
    chunksListed: chunkList?.length ?? 0,
  };
}

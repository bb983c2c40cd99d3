import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type {
  BucketRecord, ChangeEntry, CommitItem, ListPage, ListQuery, LocalChunk, MetaStore, PartRecord, UploadRecord,
  VersionListQuery, VersionRecord,
} from './meta-store.ts';
import { SCHEMA } from './sqlite-schema.ts';

// Keys are BLOBs (UTF-8 bytes) so that ORDER BY and range bounds follow S3's byte order, which a
// TEXT column with a JS-built upper bound would not for keys beyond the BMP.
const enc = (s: string): Buffer => Buffer.from(s, 'utf8');
const dec = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

// Smallest byte string greater than every string starting with `p` (UTF-8 never has 0xFF, and no
// valid key ends in one, so incrementing the last byte cannot overflow).
function successor(p: Buffer): Buffer {
  const out = Buffer.from(p);
  out[out.length - 1] += 1;
  return out;
}

type Row = Record<string, unknown>;

function versionFromRow(r: Row): VersionRecord {
  return {
    vid: r.vid as string,
    bucket: r.bucket as string,
    key: dec(r.key as Uint8Array),
    hlc: r.hlc as number,
    origin: r.origin as string,
    deleted: r.deleted === 1,
    size: r.size as number,
    etag: r.etag as string,
    mtime: r.mtime as number,
    manifest: r.manifest as Uint8Array,
  };
}

function bucketFromRow(r: Row): BucketRecord {
  return {
    name: r.name as string,
    created: r.created as number,
    versioning: r.versioning as BucketRecord['versioning'],
    publicRead: r.public_read === 1,
  };
}

// Rows a range query reads at a time when walking a listing; a page asks for at most limit + 1.
const SCAN_BATCH = 1000;

export class SqliteMetaStore implements MetaStore {
  private readonly db: DatabaseSync;
  private readonly stmts = new Map<string, StatementSync>();

  constructor(path: string) {
    this.db = new DatabaseSync(path);
    // WAL with synchronous=FULL: a commit is on disk when it returns, and readers never block it.
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;');
    this.db.exec(SCHEMA);
  }

  private q(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private tx<T>(fn: () => T): T {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  getSetting(name: string): string | undefined {
    return (this.q('SELECT value FROM settings WHERE name = ?').get(name) as Row | undefined)?.value as string | undefined;
  }

  setSetting(name: string, value: string): void {
    this.q('INSERT INTO settings(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value').run(name, value);
  }

  deleteSetting(name: string): boolean {
    return this.q('DELETE FROM settings WHERE name = ?').run(name).changes === 1;
  }

  settingsWithPrefix(prefix: string): Array<{ name: string; value: string }> {
    return (this.q('SELECT name, value FROM settings WHERE substr(name, 1, ?) = ? ORDER BY name').all(prefix.length, prefix) as Row[])
      .map((r) => ({ name: r.name as string, value: r.value as string }));
  }

  createBucket(rec: BucketRecord, event?: VersionRecord): boolean {
    return this.tx(() => {
      const r = this.q('INSERT OR IGNORE INTO buckets(name, created, versioning, public_read) VALUES (?, ?, ?, ?)')
        .run(rec.name, rec.created, rec.versioning, rec.publicRead ? 1 : 0);
      if (r.changes === 1 && event) this.insertVersion(event, [], [], undefined);
      return r.changes === 1;
    });
  }

  getBucket(name: string): BucketRecord | undefined {
    const r = this.q('SELECT * FROM buckets WHERE name = ?').get(name) as Row | undefined;
    return r && bucketFromRow(r);
  }

  listBuckets(): BucketRecord[] {
    return (this.q('SELECT * FROM buckets ORDER BY name').all() as Row[]).map(bucketFromRow);
  }

  updateBucket(name: string, patch: Partial<Omit<BucketRecord, 'name'>>): void {
    const cur = this.getBucket(name);
    if (!cur) return;
    const next = { ...cur, ...patch };
    this.q('UPDATE buckets SET versioning = ?, public_read = ? WHERE name = ?').run(next.versioning, next.publicRead ? 1 : 0, name);
  }

  deleteBucketIfEmpty(name: string, event?: VersionRecord): boolean {
    return this.tx(() => {
      if (this.q(`SELECT 1 FROM versions WHERE bucket = ? AND key <> x'' LIMIT 1`).get(name)) return false;
      if (this.q('SELECT 1 FROM uploads WHERE bucket = ? LIMIT 1').get(name)) return false;
      const gone = this.q('DELETE FROM buckets WHERE name = ?').run(name).changes === 1;
      if (gone && event) this.insertVersion(event, [], [], undefined);
      return gone;
    });
  }

  commitVersion(rec: VersionRecord, refs: string[], localChunks: LocalChunk[], seq?: number): number {
    return this.commitVersions([{ rec, refs, localChunks, seq }])[0];
  }

  commitVersions(batch: CommitItem[]): number[] {
    return this.tx(() => batch.map(({ rec, refs, localChunks, seq }) => this.insertVersion(rec, refs, localChunks, seq)));
  }

  // A local version takes the next sequence number of its origin; a remote one (from gossip or
  // catch-up) keeps the number its origin gave it, and is skipped if already known. Returns the
  // sequence number, or 0 for a duplicate.
  private insertVersion(rec: VersionRecord, refs: string[], localChunks: LocalChunk[], remoteSeq: number | undefined): number {
    const key = enc(rec.key);
    const inserted = this.q(`INSERT OR IGNORE INTO versions(vid, bucket, key, hlc, origin, deleted, size, etag, mtime, manifest)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
      .run(rec.vid, rec.bucket, key, rec.hlc, rec.origin, rec.deleted ? 1 : 0, rec.size, rec.etag, rec.mtime, rec.manifest);
    if (inserted.changes === 0) return 0;
    const addRef = this.q('INSERT OR IGNORE INTO refs(cid, vid) VALUES (?, ?)');
    for (const cid of refs) addRef.run(cid, rec.vid);
    this.insertLocalChunks(localChunks);
    let seq = remoteSeq;
    if (seq === undefined) {
      const last = this.q('SELECT MAX(seq) AS seq FROM changelog WHERE origin = ?').get(rec.origin) as Row;
      seq = ((last.seq as number | null) ?? 0) + 1;
    }
    this.q('INSERT OR IGNORE INTO changelog(origin, seq, vid) VALUES (?, ?, ?)').run(rec.origin, seq, rec.vid);
    this.advanceFrontier(rec.origin);
    // Bucket events (empty key) live in the log and nowhere in the name index.
    if (rec.key !== '') this.refreshHead(rec.bucket, key);
    return seq;
  }

  // The frontier of an origin is the highest sequence number up to which this segment holds every
  // entry: gossip may deliver 7 before 5, and catch-up must still ask for 5.
  private advanceFrontier(origin: string): void {
    const row = this.q('SELECT seq FROM frontier WHERE origin = ?').get(origin) as Row | undefined;
    let seq = (row?.seq as number | undefined) ?? 0;
    const next = this.q('SELECT 1 FROM changelog WHERE origin = ? AND seq = ?');
    while (next.get(origin, seq + 1)) seq++;
    this.q('INSERT INTO frontier(origin, seq) VALUES (?, ?) ON CONFLICT(origin) DO UPDATE SET seq = excluded.seq').run(origin, seq);
  }

  // The head is the highest (hlc, origin) among the key's versions, recomputed rather than
  // compared so that insert and delete share one rule.
  private refreshHead(bucket: string, key: Buffer): void {
    const top = this.q(`SELECT vid, deleted FROM versions WHERE bucket = ? AND key = ?
                        ORDER BY hlc DESC, origin DESC LIMIT 1`).get(bucket, key) as Row | undefined;
    if (!top) {
      this.q('DELETE FROM heads WHERE bucket = ? AND key = ?').run(bucket, key);
      return;
    }
    this.q(`INSERT INTO heads(bucket, key, vid, deleted) VALUES (?, ?, ?, ?)
            ON CONFLICT(bucket, key) DO UPDATE SET vid = excluded.vid, deleted = excluded.deleted`)
      .run(bucket, key, top.vid as string, top.deleted as number);
  }

  getVersion(vid: string): VersionRecord | undefined {
    const r = this.q('SELECT * FROM versions WHERE vid = ?').get(vid) as Row | undefined;
    return r && versionFromRow(r);
  }

  head(bucket: string, key: string): VersionRecord | undefined {
    const r = this.q(`SELECT v.* FROM heads h JOIN versions v ON v.vid = h.vid
                      WHERE h.bucket = ? AND h.key = ?`).get(bucket, enc(key)) as Row | undefined;
    return r && versionFromRow(r);
  }

  versionAt(bucket: string, key: string, hlc: number): VersionRecord | undefined {
    const r = this.q(`SELECT * FROM versions WHERE bucket = ? AND key = ? AND hlc <= ?
                      ORDER BY hlc DESC, origin DESC LIMIT 1`).get(bucket, enc(key), hlc) as Row | undefined;
    return r && versionFromRow(r);
  }

  listHeads(bucket: string, q: ListQuery): ListPage<VersionRecord> {
    const sql = `SELECT v.* FROM heads h JOIN versions v ON v.vid = h.vid
                 WHERE h.bucket = $bucket AND h.key >= $lo AND h.key < $hi AND h.deleted = 0
                 ORDER BY h.key LIMIT $n`;
    // One row a key: resuming after a row is resuming after its key.
    return this.walk(q, (lo, hi, n, from) =>
      this.q(sql).all({ bucket, lo: from ? Buffer.concat([from.key, Buffer.from([0])]) : lo, hi, n }) as Row[]);
  }

  listVersions(bucket: string, q: VersionListQuery): ListPage<VersionRecord> {
    const sql = `SELECT * FROM versions WHERE bucket = $bucket AND key >= $lo AND key < $hi AND key <> x''
                 ORDER BY key, hlc DESC, origin DESC LIMIT $n`;
    // Strictly after row `from` in (key, hlc DESC, origin DESC) order, `from.key` being $lo.
    const after = `SELECT * FROM versions WHERE bucket = $bucket AND key >= $lo AND key < $hi AND key <> x''
                   AND (key > $lo OR hlc < $hlc OR (hlc = $hlc AND origin < $origin))
                   ORDER BY key, hlc DESC, origin DESC LIMIT $n`;
    return this.walk(q, (lo, hi, n, from) => (from
      ? this.q(after).all({ bucket, lo: from.key, hi, n, hlc: from.hlc, origin: from.origin })
      : this.q(sql).all({ bucket, lo, hi, n })) as Row[]);
  }

  // Walks [prefix, successor(prefix)) in key order from the marker, folding keys that contain the
  // delimiter past the prefix into common prefixes and jumping over each with one range query.
  // Rows are resumed by position (key, hlc, origin), so a key with more versions than a batch is
  // neither cut short nor listed twice. Each query asks for no more rows than the page can still
  // take, plus one to tell whether it is truncated.
  private walk(
    q: VersionListQuery,
    fetch: (lo: Buffer, hi: Buffer, n: number, from?: RowPosition) => Row[],
  ): ListPage<VersionRecord> {
    const prefix = q.prefix ?? '';
    const hi = prefix === '' ? Buffer.from([0xff]) : successor(enc(prefix));
    let lo: Buffer = enc(prefix);
    let from: RowPosition | undefined;
    if (q.after !== undefined && Buffer.compare(enc(q.after), lo) >= 0) {
      const cp = q.delimiter ? commonPrefix(q.after, prefix, q.delimiter) : undefined;
      const marker = q.afterVersion === undefined ? undefined
        : this.q('SELECT key, hlc, origin FROM versions WHERE vid = ?').get(q.afterVersion) as Row | undefined;
      if (cp === q.after) lo = successor(enc(cp));
      else if (marker && Buffer.compare(marker.key as Uint8Array, enc(q.after)) === 0) {
        lo = enc(q.after);
        from = positionOf(marker);
      } else {
        // No version marker, or one that no longer exists: continue after the key.
        lo = Buffer.concat([enc(q.after), Buffer.from([0])]);
      }
    }
    const items: VersionRecord[] = [];
    const commonPrefixes: string[] = [];
    let next: string | undefined;
    let nextVersion: string | undefined;
    let truncated = false;
    scan: for (;;) {
      const want = Math.min(SCAN_BATCH, q.limit - items.length - commonPrefixes.length + 1);
      const rows = fetch(lo, hi, want, from);
      from = undefined;
      if (rows.length === 0) break;
      for (const r of rows) {
        if (items.length + commonPrefixes.length >= q.limit) {
          truncated = true;
          break scan;
        }
        const key = dec(r.key as Uint8Array);
        const cp = q.delimiter ? commonPrefix(key, prefix, q.delimiter) : undefined;
        if (cp !== undefined) {
          commonPrefixes.push(cp);
          next = cp;
          nextVersion = undefined;
          lo = successor(enc(cp));
          continue scan;
        }
        items.push(versionFromRow(r));
        next = key;
        nextVersion = r.vid as string;
      }
      if (rows.length < want) break;
      const last = rows[rows.length - 1];
      lo = Buffer.from(last.key as Uint8Array);
      from = positionOf(last);
    }
    return truncated ? { items, commonPrefixes, truncated, next, nextVersion } : { items, commonPrefixes, truncated };
  }

  deleteVersion(vid: string): void {
    this.tx(() => {
      const v = this.q('SELECT bucket, key FROM versions WHERE vid = ?').get(vid) as Row | undefined;
      if (!v) return;
      this.q('DELETE FROM refs WHERE vid = ?').run(vid);
      this.q('DELETE FROM versions WHERE vid = ?').run(vid);
      this.refreshHead(v.bucket as string, Buffer.from(v.key as Uint8Array));
    });
  }

  changes(origin: string, afterSeq: number, limit: number): ChangeEntry[] {
    return (this.q('SELECT origin, seq, vid FROM changelog WHERE origin = ? AND seq > ? ORDER BY seq LIMIT ?')
      .all(origin, afterSeq, limit) as Row[]).map((r) => ({ origin: r.origin as string, seq: r.seq as number, vid: r.vid as string }));
  }

  sequenceVector(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.q('SELECT origin, seq FROM frontier').all() as Row[]) out[r.origin as string] = r.seq as number;
    return out;
  }

  bucketsReferencing(cid: string): string[] {
    return (this.q('SELECT DISTINCT v.bucket FROM refs r JOIN versions v ON v.vid = r.vid WHERE r.cid = ?').all(cid) as Row[])
      .map((r) => r.bucket as string);
  }

  remoteVersionsMissingChunks(bucket: string, self: string): string[] {
    return (this.q(`SELECT DISTINCT v.vid FROM versions v JOIN refs r ON r.vid = v.vid LEFT JOIN chunks c ON c.cid = r.cid
                    WHERE v.bucket = ? AND v.origin <> ? AND v.deleted = 0 AND c.cid IS NULL`).all(bucket, self) as Row[])
      .map((r) => r.vid as string);
  }

  referencedByOrigin(cid: string, origin: string): boolean {
    return this.q('SELECT 1 FROM refs r JOIN versions v ON v.vid = r.vid WHERE r.cid = ? AND v.origin = ? LIMIT 1').get(cid, origin) !== undefined;
  }

  missingChunks(vid: string): string[] {
    return (this.q('SELECT r.cid FROM refs r LEFT JOIN chunks c ON c.cid = r.cid WHERE r.vid = ? AND c.cid IS NULL').all(vid) as Row[])
      .map((r) => r.cid as string);
  }

  maxHlc(): number {
    return ((this.q('SELECT MAX(hlc) AS hlc FROM versions').get() as Row).hlc as number | null) ?? 0;
  }

  private insertLocalChunks(chunks: LocalChunk[]): void {
    const ins = this.q('INSERT OR IGNORE INTO chunks(cid, size) VALUES (?, ?)');
    for (const c of chunks) ins.run(c.cid, c.size);
  }

  addLocalChunks(chunks: LocalChunk[]): void {
    this.tx(() => this.insertLocalChunks(chunks));
  }

  hasLocalChunk(cid: string): boolean {
    return this.q('SELECT 1 FROM chunks WHERE cid = ?').get(cid) !== undefined;
  }

  removeLocalChunk(cid: string): void {
    this.q('DELETE FROM chunks WHERE cid = ?').run(cid);
  }

  *localChunks(): Iterable<LocalChunk> {
    for (const r of this.q('SELECT cid, size FROM chunks').iterate() as Iterable<Row>) {
      yield { cid: r.cid as string, size: r.size as number };
    }
  }

  isReferenced(cid: string): boolean {
    return this.q('SELECT 1 FROM refs WHERE cid = ? LIMIT 1').get(cid) !== undefined;
  }

  *referencedCids(): Iterable<string> {
    for (const r of this.q('SELECT DISTINCT cid FROM refs').iterate() as Iterable<Row>) yield r.cid as string;
  }

  localChunkStats(): { chunks: number; bytes: number } {
    const r = this.q('SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM chunks').get() as Row;
    return { chunks: r.n as number, bytes: r.bytes as number };
  }

  versionStats(): { objects: number; versions: number; logicalBytes: number } {
    const v = this.q(`SELECT COUNT(*) AS n, COALESCE(SUM(size), 0) AS bytes FROM versions WHERE deleted = 0 AND key <> x''`).get() as Row;
    const o = this.q('SELECT COUNT(*) AS n FROM heads WHERE deleted = 0').get() as Row;
    return { objects: o.n as number, versions: v.n as number, logicalBytes: v.bytes as number };
  }

  createUpload(rec: UploadRecord): void {
    this.q('INSERT INTO uploads(upload_id, bucket, key, created, init) VALUES (?, ?, ?, ?, ?)')
      .run(rec.uploadId, rec.bucket, enc(rec.key), rec.created, rec.init);
  }

  getUpload(uploadId: string): UploadRecord | undefined {
    const r = this.q('SELECT * FROM uploads WHERE upload_id = ?').get(uploadId) as Row | undefined;
    return r && uploadFromRow(r);
  }

  listUploads(bucket: string, prefix: string, after: string | undefined, limit: number): UploadRecord[] {
    const hi = prefix === '' ? Buffer.from([0xff]) : successor(enc(prefix));
    const lo = after !== undefined && after >= prefix ? Buffer.concat([enc(after), Buffer.from([0])]) : enc(prefix);
    return (this.q('SELECT * FROM uploads WHERE bucket = ? AND key >= ? AND key < ? ORDER BY key, created LIMIT ?')
      .all(bucket, lo, hi, limit) as Row[]).map(uploadFromRow);
  }

  putPart(rec: PartRecord, refs: string[]): void {
    this.tx(() => {
      const owner = partOwner(rec.uploadId, rec.part);
      this.q('DELETE FROM refs WHERE vid = ?').run(owner);
      const addRef = this.q('INSERT OR IGNORE INTO refs(cid, vid) VALUES (?, ?)');
      for (const cid of refs) addRef.run(cid, owner);
      this.q(`INSERT INTO parts(upload_id, part, etag, size, chunks, created) VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT(upload_id, part) DO UPDATE SET etag = excluded.etag, size = excluded.size,
              chunks = excluded.chunks, created = excluded.created`)
      .run(rec.uploadId, rec.part, rec.etag, rec.size, rec.chunks, rec.created);
    });
  }

  listParts(uploadId: string): PartRecord[] {
    return (this.q('SELECT * FROM parts WHERE upload_id = ? ORDER BY part').all(uploadId) as Row[]).map((r) => ({
      uploadId: r.upload_id as string,
      part: r.part as number,
      etag: r.etag as string,
      size: r.size as number,
      chunks: r.chunks as Uint8Array,
      created: r.created as number,
    }));
  }

  deleteUpload(uploadId: string): void {
    this.tx(() => {
      for (const r of this.q('SELECT part FROM parts WHERE upload_id = ?').all(uploadId) as Row[]) {
        this.q('DELETE FROM refs WHERE vid = ?').run(partOwner(uploadId, r.part as number));
      }
      this.q('DELETE FROM parts WHERE upload_id = ?').run(uploadId);
      this.q('DELETE FROM uploads WHERE upload_id = ?').run(uploadId);
    });
  }

  close(): void {
    this.db.close();
  }
}

// Refs rows owned by an upload's part rather than a version; never a valid CID, so no clash.
function partOwner(uploadId: string, part: number): string {
  return `part:${uploadId}:${part}`;
}

function uploadFromRow(r: Row): UploadRecord {
  return {
    uploadId: r.upload_id as string,
    bucket: r.bucket as string,
    key: dec(r.key as Uint8Array),
    created: r.created as number,
    init: r.init as Uint8Array,
  };
}

// Where a listing row sits in (key, hlc DESC, origin DESC) order.
interface RowPosition {
  key: Buffer;
  hlc: number;
  origin: string;
}

function positionOf(r: Row): RowPosition {
  const key = r.key as Uint8Array;
  return { key: Buffer.from(key.buffer, key.byteOffset, key.byteLength), hlc: r.hlc as number, origin: r.origin as string };
}

function commonPrefix(key: string, prefix: string, delimiter: string): string | undefined {
  const i = key.indexOf(delimiter, prefix.length);
  return i < 0 ? undefined : key.slice(0, i + delimiter.length);
}

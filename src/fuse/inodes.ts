// Inode numbers of the mount. A node is a (bucket, path, kind) the kernel knows about; numbers
// are a 48-bit hash of (bucket, path, dir-or-not), so readdir can report the same d_ino that a
// later lookup gives without remembering every name it listed. Nodes live while the kernel holds
// a lookup count on them or a file is open, and follow renames (the kernel moves its dentry, so
// the inode keeps its number under the new name).
import { createHash } from 'node:crypto';
import type { ObjectVersion } from '../segment/segment.ts';
import type { WriteState } from './write-state.ts';

// root: the mount root listing buckets; bucket: a bucket's top directory (the mount root when one
// bucket is mounted); dir: a key prefix; file and link: an object.
export type Kind = 'root' | 'bucket' | 'dir' | 'file' | 'link';

export const ROOT_INO = 1;

export interface Node {
  ino: number;
  bucket: string;
  // Path inside the bucket, '' for the bucket itself; never starts or ends with '/'.
  path: string;
  kind: Kind;
  nlookup: number;
  opens: number;
  // Shared by every handle that may write, while one is open (and by reads through them).
  ws?: WriteState;
  // The version whose pages the kernel may hold in its page cache for this inode.
  cacheVid?: string;
  // Open read-only files reading through the page cache (all of version `cached`), and the
  // others (direct I/O, each on its own version). See README.md, "One inode, many versions".
  cachedOpen: number;
  cached?: ObjectVersion;
  directOpen: number;
  // No longer reachable under its path (unlinked, replaced by a rename, or changed kind).
  stale: boolean;
}

export function isDirKind(kind: Kind): boolean {
  return kind === 'root' || kind === 'bucket' || kind === 'dir';
}

function group(kind: Kind): 'd' | 'f' {
  return isDirKind(kind) ? 'd' : 'f';
}

function tableKey(bucket: string, path: string, g: 'd' | 'f'): string {
  return `${bucket}\0${path}\0${g}`;
}

export function hashIno(bucket: string, path: string, dir: boolean): number {
  const h = createHash('sha1').update(tableKey(bucket, path, dir ? 'd' : 'f')).digest();
  // 48 bits: well inside the 2^53 the binding carries exactly; 2 and up (1 is the root).
  return h.readUIntBE(0, 6) + 2;
}

export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

export class InodeTable {
  readonly root: Node;
  private readonly byIno = new Map<number, Node>();
  private readonly byPath = new Map<string, number>();

  // bucket: the one bucket mounted, or undefined for a root listing every bucket.
  constructor(bucket: string | undefined) {
    this.root = this.make(ROOT_INO, bucket ?? '', '', bucket === undefined ? 'root' : 'bucket');
    this.root.nlookup = 1;
    this.byIno.set(ROOT_INO, this.root);
    this.byPath.set(tableKey(this.root.bucket, '', 'd'), ROOT_INO);
  }

  get size(): number {
    return this.byIno.size;
  }

  private make(ino: number, bucket: string, path: string, kind: Kind): Node {
    return { ino, bucket, path, kind, nlookup: 0, opens: 0, cachedOpen: 0, directOpen: 0, stale: false };
  }

  get(ino: number): Node | undefined {
    return this.byIno.get(ino);
  }

  find(bucket: string, path: string, dir: boolean): Node | undefined {
    const ino = this.byPath.get(tableKey(bucket, path, dir ? 'd' : 'f'));
    return ino === undefined ? undefined : this.byIno.get(ino);
  }

  // The inode number readdir reports for a name (the node's if there is one).
  inoFor(bucket: string, path: string, dir: boolean): number {
    return this.find(bucket, path, dir)?.ino ?? hashIno(bucket, path, dir);
  }

  // The node for (bucket, path, kind), made if needed. A node of the other file kind there (a
  // symlink replaced by a file) is retired: the kernel must not see an inode change its type.
  ensure(bucket: string, path: string, kind: Kind): Node {
    const g = group(kind);
    const existing = this.find(bucket, path, g === 'd');
    if (existing && existing.kind === kind) return existing;
    if (existing) this.retire(existing);
    let ino = hashIno(bucket, path, g === 'd');
    while (this.byIno.has(ino) || ino === ROOT_INO) ino++;
    const node = this.make(ino, bucket, path, kind);
    this.byIno.set(ino, node);
    this.byPath.set(tableKey(bucket, path, g), ino);
    return node;
  }

  // Detaches a node from its path (unlinked, or replaced); it stays until the kernel forgets it.
  retire(node: Node): void {
    const key = tableKey(node.bucket, node.path, group(node.kind));
    if (this.byPath.get(key) === node.ino) this.byPath.delete(key);
    node.stale = true;
    this.maybeDrop(node);
  }

  // A rename: `node` now lives at `path`; whatever was there is retired.
  move(node: Node, bucket: string, path: string): void {
    const g = group(node.kind);
    const oldKey = tableKey(node.bucket, node.path, g);
    if (this.byPath.get(oldKey) === node.ino) this.byPath.delete(oldKey);
    const victim = this.find(bucket, path, g === 'd');
    if (victim && victim !== node) this.retire(victim);
    node.bucket = bucket;
    node.path = path;
    node.stale = false;
    this.byPath.set(tableKey(bucket, path, g), node.ino);
  }

  // Every node strictly under directory `prefix` (a path), for directory renames.
  under(bucket: string, prefix: string): Node[] {
    const p = prefix === '' ? '' : `${prefix}/`;
    const out: Node[] = [];
    for (const n of this.byIno.values()) {
      if (n.bucket === bucket && !n.stale && n.path.startsWith(p) && n.path !== prefix && n.kind !== 'root' && n.kind !== 'bucket') out.push(n);
    }
    return out;
  }

  all(): IterableIterator<Node> {
    return this.byIno.values();
  }

  lookedUp(node: Node): void {
    node.nlookup++;
  }

  forget(ino: number, n: number): void {
    const node = this.byIno.get(ino);
    if (!node || ino === ROOT_INO) return;
    node.nlookup = Math.max(0, node.nlookup - n);
    this.maybeDrop(node);
  }

  maybeDrop(node: Node): void {
    if (node.ino === ROOT_INO || node.nlookup > 0 || node.opens > 0 || node.ws) return;
    this.byIno.delete(node.ino);
    const key = tableKey(node.bucket, node.path, group(node.kind));
    if (this.byPath.get(key) === node.ino) this.byPath.delete(key);
  }
}

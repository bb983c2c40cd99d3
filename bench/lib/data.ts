// Deterministic benchmark data: a seeded PRNG for decisions, an AES-128-CTR keystream for bulk
// random bytes (~2.5 GB/s with AES-NI, so generating 1 GiB costs well under a second of CPU), a
// synthetic data set with cross-file repeats, and a real-tree walker with small seeded edits.
import { createCipheriv, createHash, type Cipheriv } from 'node:crypto';
import { accessSync, closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const KiB = 1024;
export const MiB = 1024 * KiB;

// sfc32: small, fast, good enough for layout decisions (not for bulk bytes).
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | string) {
    const h = createHash('sha256').update(`stitchfs bench rng ${seed}`).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12) | 1;
    for (let i = 0; i < 16; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  // Uniform in [0, 1).
  float(): number {
    return this.u32() / 4294967296;
  }

  // Uniform integer in [0, n), n up to 2^53.
  int(n: number): number {
    return Math.floor((this.u32() * 4294967296 + this.u32()) / 18446744073709551616 * n);
  }

  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo);
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

// An endless random byte stream: AES-128-CTR keystream (encrypting zeros) under a key derived from
// the label, so every label gives its own reproducible stream.
export class Keystream {
  private readonly cipher: Cipheriv;
  private zeros = new Uint8Array(0);

  constructor(label: string) {
    const key = createHash('sha256').update(`stitchfs bench keystream ${label}`).digest().subarray(0, 16);
    this.cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  }

  next(n: number): Buffer {
    if (this.zeros.length < n) this.zeros = new Uint8Array(n);
    return this.cipher.update(this.zeros.subarray(0, n));
  }
}

export interface DatasetFile {
  name: string;
  path: string;
  size: number;
}

export interface Dataset {
  dir: string;
  files: DatasetFile[];
  totalBytes: number;
  // Bytes that repeat content of an earlier file (at an arbitrary byte offset).
  copiedBytes: number;
  extents: number;
}

export interface DatasetSpec {
  totalBytes: number;
  files: number;
  seed: number;
  // Share of every file after the first that copies earlier content; the rest is new random.
  copyFraction: number;
}

const PIECE = MiB;
// Extent lengths, byte granular, so copies land at offsets unaligned with any fixed chunk size.
export const EXTENT_MIN = 256 * KiB;
export const EXTENT_MAX = 4 * MiB;

// Writes `files` files of equal size (the last takes the remainder). File 0 is all new random
// bytes. Every later file is a sequence of extents of 256 KiB..4 MiB; each extent is new random
// bytes, or (with probability copyFraction) a copy of a random earlier file at a random byte offset.
// The files are fsync'd so no writeback of the data set overlaps a measurement.
export function writeDataset(dir: string, spec: DatasetSpec): Dataset {
  mkdirSync(dir, { recursive: true });
  const rng = new Rng(`dataset ${spec.seed}`);
  const files: DatasetFile[] = [];
  const base = Math.floor(spec.totalBytes / spec.files);
  let copiedBytes = 0;
  let extents = 0;
  const buf = Buffer.alloc(PIECE);
  for (let i = 0; i < spec.files; i++) {
    const size = i === spec.files - 1 ? spec.totalBytes - base * (spec.files - 1) : base;
    const name = `file-${String(i).padStart(3, '0')}.bin`;
    const path = join(dir, name);
    const keys = new Keystream(`${spec.seed} ${i}`);
    const fd = openSync(path, 'w');
    try {
      let pos = 0;
      while (pos < size) {
        let len = Math.min(rng.range(EXTENT_MIN, EXTENT_MAX), size - pos);
        extents++;
        if (i > 0 && rng.float() < spec.copyFraction) {
          const src = files[rng.int(i)];
          len = Math.min(len, src.size);
          let from = rng.int(src.size - len + 1);
          const sfd = openSync(src.path, 'r');
          try {
            for (let left = len; left > 0; ) {
              const n = readSync(sfd, buf, 0, Math.min(PIECE, left), from);
              writeAll(fd, buf.subarray(0, n));
              from += n;
              left -= n;
            }
          } finally {
            closeSync(sfd);
          }
          copiedBytes += len;
        } else {
          for (let left = len; left > 0; ) {
            const n = Math.min(PIECE, left);
            writeAll(fd, keys.next(n));
            left -= n;
          }
        }
        pos += len;
      }
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    files.push({ name, path, size });
  }
  return { dir, files, totalBytes: spec.totalBytes, copiedBytes, extents };
}

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

export interface TreeFile {
  path: string;
  size: number;
}

// Regular files under root (symlinks not followed), in a stable sorted order, up to capBytes in
// all: a file that would overflow the cap is skipped (counted), so one huge file doesn't end the walk.
export function listTree(root: string, capBytes: number): { files: TreeFile[]; bytes: number; skipped: number } {
  const files: TreeFile[] = [];
  let bytes = 0;
  let skipped = 0;
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        let size: number;
        try {
          accessSync(p, constants.R_OK);
          size = statSync(p).size;
        } catch {
          continue; // unreadable: not part of the tree
        }
        if (bytes + size > capBytes) {
          skipped++;
          continue;
        }
        files.push({ path: p, size });
        bytes += size;
      }
    }
  };
  walk(root);
  return { files, bytes, skipped };
}

export type EditKind = 'none' | 'insert' | 'delete' | 'append';

// Size classes for picking edits, so a tree of mostly small files still gets its large files
// edited: below, at and above the chunk sizes where fixed and content-defined chunking differ.
const SIZE_CLASSES = [64 * KiB, 256 * KiB, MiB, Infinity];

// Which files of a tree v2 edits: in every size class, ceil(editShare * n) files get a few bytes
// inserted or deleted, and ceil(appendShare * n) other files get bytes appended. Seeded.
export function pickEdits(sizes: number[], seed: number, editShare: number, appendShare: number): Map<number, 'edit' | 'append'> {
  const picks = new Map<number, 'edit' | 'append'>();
  SIZE_CLASSES.forEach((limit, k) => {
    const lower = k === 0 ? -1 : SIZE_CLASSES[k - 1];
    const members = sizes.flatMap((size, i) => (size > lower && size <= limit ? [i] : []));
    const rng = new Rng(`edits ${seed} ${k}`);
    for (let i = members.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [members[i], members[j]] = [members[j], members[i]];
    }
    const edits = Math.ceil(editShare * members.length);
    const appends = Math.ceil(appendShare * members.length);
    members.slice(0, edits).forEach((i) => picks.set(i, 'edit'));
    members.slice(edits, edits + appends).forEach((i) => picks.set(i, 'append'));
  });
  return picks;
}

// Version 2 of one file: 'edit' inserts or deletes 1..16 bytes at a random position, 'append'
// adds 1..4 KiB of random bytes at the end.
export function editedVersion(bytes: Uint8Array, rng: Rng, edit: 'edit' | 'append' | undefined): { bytes: Uint8Array; kind: EditKind } {
  if (edit === 'edit') {
    const k = rng.range(1, 17);
    if (rng.float() < 0.5 || bytes.length <= k) {
      const at = rng.int(bytes.length + 1);
      return { bytes: Buffer.concat([bytes.subarray(0, at), rng.bytes(k), bytes.subarray(at)]), kind: 'insert' };
    }
    const at = rng.int(bytes.length - k + 1);
    return { bytes: Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + k)]), kind: 'delete' };
  }
  if (edit === 'append') return { bytes: Buffer.concat([bytes, rng.bytes(rng.range(KiB, 4 * KiB + 1))]), kind: 'append' };
  return { bytes, kind: 'none' };
}

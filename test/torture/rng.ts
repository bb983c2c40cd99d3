// Seeded randomness for the torture suite: every run prints its seed, so a failure can be
// replayed (TORTURE_SEED=...). Content bytes come from AES-128-CTR keyed by a label, so they are
// fast to make, incompressible, and the same label always gives the same bytes (shared labels
// make dedup happen on purpose).
import { createCipheriv, createHash } from 'node:crypto';

export class Rng {
  private s: number;
  readonly seed: number;

  constructor(seed: number) {
    this.seed = seed >>> 0;
    this.s = this.seed || 0x9e3779b9;
  }

  // mulberry32: a 32-bit state is plenty for choosing operations.
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  between(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }

  // A child generator (for concurrent workers that must not share one stream).
  fork(): Rng {
    return new Rng(this.int(0xffffffff));
  }
}

export function seedFromEnv(): number {
  const s = process.env.TORTURE_SEED;
  return s !== undefined && s !== '' ? Number(s) >>> 0 : (Date.now() ^ (process.pid << 8)) >>> 0;
}

export function contentBytes(label: string, size: number): Buffer {
  const key = createHash('sha256').update(label).digest().subarray(0, 16);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(size));
}

export const sha256hex = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const md5hex = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

// S3's ETag of a multipart object: md5 of the parts' binary md5s, a dash, the part count.
export function multipartEtag(parts: Uint8Array[]): string {
  const md5s = Buffer.concat(parts.map((p) => createHash('md5').update(p).digest()));
  return `${createHash('md5').update(md5s).digest('hex')}-${parts.length}`;
}

export const KiB = 1024;
export const MiB = 1024 * 1024;

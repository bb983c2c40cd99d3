// Console sign-in with an S3 access key, without the secret ever crossing the wire:
//
//   1. GET  /api/login/challenge            -> { nonce }            (single use, 2 minutes)
//   2. POST /api/login { accessKeyId, nonce, proof }
//        proof = hex HMAC-SHA256(key = secret, "stitch-console-v1\n" + accessKeyId + "\n" + nonce)
//      -> 200 and an HttpOnly, SameSite=Strict session cookie; 401 otherwise.
//
// The server holds the secret already (SigV4 needs it), so it checks the proof with the same
// HMAC. A replayed proof fails (the nonce is gone), an eavesdropper on a non-TLS link learns a
// session cookie but never the secret. Sessions live in memory: a restart signs everyone out.
// A session ends on sign-out, after IDLE_MS without a request, after MAX_AGE_MS, or when its
// access key is removed. Failed sign-ins are limited per client address.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { CredentialStore } from '../s3/auth/credentials.ts';

export const COOKIE = 'stitch_console';
export const PROOF_CONTEXT = 'stitch-console-v1';
const NONCE_TTL_MS = 120_000;
const MAX_NONCES = 10_000;
const IDLE_MS = 2 * 3600_000;
const MAX_AGE_MS = 12 * 3600_000;
const MAX_SESSIONS = 1_000;
const FAIL_WINDOW_MS = 60_000;
const MAX_FAILS = 10;

export interface Session {
  id: string;
  accessKeyId: string;
  created: number;
  lastSeen: number;
}

export function proofMessage(accessKeyId: string, nonce: string): string {
  return `${PROOF_CONTEXT}\n${accessKeyId}\n${nonce}`;
}

export function computeProof(secret: string, accessKeyId: string, nonce: string): string {
  return createHmac('sha256', secret).update(proofMessage(accessKeyId, nonce)).digest('hex');
}

export type LoginResult = { ok: true; session: Session } | { ok: false; status: 400 | 401 | 429; error: string };

export class ConsoleAuth {
  private readonly keys: CredentialStore;
  private readonly now: () => number;
  private readonly nonces = new Map<string, number>();
  private readonly sessions = new Map<string, Session>();
  private readonly fails = new Map<string, { n: number; since: number }>();

  constructor(keys: CredentialStore, now: () => number = Date.now) {
    this.keys = keys;
    this.now = now;
  }

  challenge(): { nonce: string; expiresInSeconds: number } {
    const now = this.now();
    for (const [n, exp] of this.nonces) {
      if (exp > now && this.nonces.size < MAX_NONCES) break;
      this.nonces.delete(n); // Map order is issue order: the oldest go first
    }
    const nonce = randomBytes(24).toString('hex');
    this.nonces.set(nonce, now + NONCE_TTL_MS);
    return { nonce, expiresInSeconds: NONCE_TTL_MS / 1000 };
  }

  limited(client: string): boolean {
    const f = this.fails.get(client);
    return f !== undefined && this.now() - f.since < FAIL_WINDOW_MS && f.n >= MAX_FAILS;
  }

  private failed(client: string): void {
    const now = this.now();
    const f = this.fails.get(client);
    if (!f || now - f.since >= FAIL_WINDOW_MS) this.fails.set(client, { n: 1, since: now });
    else f.n++;
    if (this.fails.size > 10_000) this.fails.clear();
  }

  login(body: unknown, client: string): LoginResult {
    if (this.limited(client)) return { ok: false, status: 429, error: 'too many failed sign-ins; try again in a minute' };
    const b = body as { accessKeyId?: unknown; nonce?: unknown; proof?: unknown } | null;
    if (!b || typeof b !== 'object' || typeof b.accessKeyId !== 'string' || typeof b.nonce !== 'string' || typeof b.proof !== 'string'
      || b.accessKeyId.length === 0 || b.accessKeyId.length > 128 || !/^[0-9a-f]{48}$/.test(b.nonce) || !/^[0-9a-f]{64}$/.test(b.proof)) {
      return { ok: false, status: 400, error: 'expected { accessKeyId, nonce, proof } (nonce from /api/login/challenge, proof a hex HMAC-SHA256)' };
    }
    const exp = this.nonces.get(b.nonce);
    // Single use, whatever the outcome: a guess costs a fresh challenge.
    this.nonces.delete(b.nonce);
    const secret = this.keys.secretFor(b.accessKeyId);
    const good = exp !== undefined && exp > this.now() && secret !== undefined
      && timingSafeEqual(Buffer.from(computeProof(secret, b.accessKeyId, b.nonce), 'hex'), Buffer.from(b.proof, 'hex'));
    if (!good) {
      this.failed(client);
      return { ok: false, status: 401, error: exp === undefined || exp <= this.now() ? 'unknown or expired challenge' : 'access key or secret is wrong' };
    }
    this.fails.delete(client);
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const now = this.now();
    const session: Session = { id: randomBytes(32).toString('base64url'), accessKeyId: b.accessKeyId, created: now, lastSeen: now };
    this.sessions.set(session.id, session);
    return { ok: true, session };
  }

  // The live session a request's cookie names, refreshed; undefined when none.
  session(cookieHeader: string | undefined): Session | undefined {
    const id = readCookie(cookieHeader, COOKIE);
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const now = this.now();
    if (now - s.lastSeen > IDLE_MS || now - s.created > MAX_AGE_MS || this.keys.secretFor(s.accessKeyId) === undefined) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeen = now;
    return s;
  }

  logout(id: string): void {
    this.sessions.delete(id);
  }

  cookie(s: Session): string {
    return `${COOKIE}=${s.id}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${MAX_AGE_MS / 1000}`;
  }

  static clearCookie(): string {
    return `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`;
  }
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const v = part.slice(eq + 1).trim();
      return /^[A-Za-z0-9_-]{1,128}$/.test(v) ? v : undefined;
    }
  }
  return undefined;
}

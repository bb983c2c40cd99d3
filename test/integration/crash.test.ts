import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isStitchError } from '../../src/core/errors.ts';
import { Segment } from '../../src/segment/segment.ts';
import { removeDir, tempDir } from '../helpers/segment-util.ts';

// A real crash: a writer process (test/helpers/segment-crash-writer.ts) puts and deletes in a loop
// and is SIGKILLed at a random moment, several times over the same data dir. After each kill the
// segment must reopen (stale LOCK, tmp/ leftovers), every acknowledged version must read back
// exactly, each key's head must be its last acknowledged write or the one in flight, nothing may be
// torn, and scrub must find every chunk whole. (DESIGN.md: "Nothing is acknowledged before it is
// durable ... A crash at any point leaves either the old state or the new one.")

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = join(ROOT, 'node_modules/.bin/node');
const WRITER = join(ROOT, 'test/helpers/segment-crash-writer.ts');
const BUCKET = 'crash';
const ROUNDS = 5;

interface Op {
  id: string;
  kind: 'put' | 'del';
  key: string;
  sha?: string;
  size?: number;
  versionId?: string; // set once acknowledged
}

// Seeded per run but printed, so a failure can be replayed by fixing the seed.
const RUN_SEED = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);

function rng(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x = (x * 48271) % 0x7fffffff;
    return x;
  };
}

async function digest(body: AsyncIterable<Uint8Array>): Promise<{ sha: string; md5: string; size: number }> {
  const s = createHash('sha256');
  const m = createHash('md5');
  let size = 0;
  for await (const b of body) {
    s.update(b);
    m.update(b);
    size += b.length;
  }
  return { sha: s.digest('hex'), md5: m.digest('hex'), size };
}

// Runs the writer until `acks` operations are acknowledged, waits `extraMs`, SIGKILLs it.
async function crashRound(dataDir: string, seed: number, acks: number, extraMs: number, ops: Map<string, Op>) {
  const child = spawn(NODE, [WRITER, dataDir, String(seed)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exit = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })));
  let pid = 0;
  let acked = 0;
  let buf = '';
  let killed = false;
  const done = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const [tag, id, ...rest] = buf.slice(0, i).split(' ');
        buf = buf.slice(i + 1);
        if (tag === 'R') pid = Number(id);
        else if (tag === 'B') {
          const [kind, key, sha, size] = rest;
          ops.set(id, { id, kind: kind as Op['kind'], key, sha, size: size === undefined ? undefined : Number(size) });
        } else if (tag === 'A') {
          const op = ops.get(id);
          if (!op) return reject(new Error(`ack of unknown op ${id}`));
          op.versionId = rest[0];
          if (++acked === acks && !killed) {
            killed = true;
            setTimeout(() => child.kill('SIGKILL'), extraMs);
          }
        }
      }
    });
    exit.then(({ signal }) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited on its own: ${stderr}`))));
  });
  await done;
  return { pid, acked };
}

describe('crash safety', () => {
  const dir = tempDir('crash');
  afterAll(() => removeDir(dir));

  it(`survives ${ROUNDS} SIGKILLs of a busy writer (seed ${RUN_SEED})`, { timeout: 170_000 }, async () => {
    const random = rng(RUN_SEED);
    const ops = new Map<string, Op>();
    // What each key's head is known to be (version id), or undefined when it has no version yet.
    const knownHead = new Map<string, string | undefined>();
    // Every version id ever seen committed, acknowledged or recovered from an in-flight op.
    const known = new Set<string>();
    let tmpLeftovers = 0;
    let inFlightCommitted = 0;
    let inFlightTotal = 0;

    for (let round = 0; round < ROUNDS; round++) {
      const before = new Set(ops.keys());
      const target = 50 + (random() % 201);
      const { pid, acked } = await crashRound(dir, RUN_SEED * 10 + round, target, random() % 25, ops);
      expect(acked).toBeGreaterThanOrEqual(target);
      const roundOps = [...ops.values()].filter((o) => !before.has(o.id));

      // The killed writer left its LOCK; tmp/ may hold half-written chunks.
      expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(String(pid));
      tmpLeftovers += readdirSync(join(dir, 'chunks', 'tmp')).length;

      const seg = await Segment.open({ dataDir: dir });
      try {
        expect(readdirSync(join(dir, 'chunks', 'tmp'))).toEqual([]);
        expect(readFileSync(join(dir, 'LOCK'), 'utf8')).toBe(String(process.pid));

        // Per key, in order: acknowledged ops advance the head; at most one op per key was in
        // flight when the writer died (the writer never runs two on one key).
        const inFlight = new Map<string, Op>();
        for (const op of roundOps) {
          if (op.versionId) {
            knownHead.set(op.key, op.versionId);
            known.add(op.versionId);
          } else {
            expect(inFlight.has(op.key), `two ops in flight on ${op.key}`).toBe(false);
            inFlight.set(op.key, op);
          }
        }
        expect(inFlight.size).toBeLessThanOrEqual(3);
        inFlightTotal += inFlight.size;

        // 1. Every acknowledged version of this round, by version id, with the right bytes; of
        // earlier rounds a sample each time and all of them after the last round.
        const last = round === ROUNDS - 1;
        for (const op of ops.values()) {
          if (!op.versionId) continue;
          if (!last && before.has(op.id) && random() % 10 !== 0) continue;
          if (op.kind === 'del') {
            const m = await seg.head(BUCKET, op.key, { versionId: op.versionId });
            expect(m.deleted).toBe(true);
            continue;
          }
          const r = await seg.get(BUCKET, op.key, { versionId: op.versionId });
          const got = await digest(r.body);
          expect({ op: op.id, sha: got.sha, size: got.size }).toEqual({ op: op.id, sha: op.sha, size: op.size });
        }

        // 2. Each key's head: the last acknowledged write, or the one in flight if it committed.
        const keys = new Set([...knownHead.keys(), ...inFlight.keys()]);
        for (const key of keys) {
          const page = seg.versions(BUCKET, { prefix: key, limit: 1000 });
          expect(page.truncated).toBe(false);
          const head = page.items.find((v) => v.isLatest);
          const want = knownHead.get(key);
          const flying = inFlight.get(key);
          if (head?.versionId === want) {
            // Old state (or, for a never-written key, still nothing).
          } else {
            expect(flying, `head of ${key} is ${head?.versionId}, expected ${want}`).toBeDefined();
            expect(head).toBeDefined();
            expect(known.has(head!.versionId)).toBe(false);
            expect(head!.deleted).toBe(flying!.kind === 'del');
            if (flying!.kind === 'put') {
              const got = await digest((await seg.get(BUCKET, key)).body);
              expect(got.sha).toBe(flying!.sha);
            }
            knownHead.set(key, head!.versionId);
            known.add(head!.versionId);
            inFlightCommitted++;
          }
          // No version of the key is unaccounted for: each is acknowledged or the recovered one.
          for (const v of page.items) expect(known.has(v.versionId), `unknown version ${v.versionId} of ${key}`).toBe(true);
        }

        // 3. No torn objects: everything listed reads back whole, matching size and ETag.
        let after: string | undefined;
        let listed = 0;
        for (;;) {
          const page = seg.list(BUCKET, { after, limit: 1000 });
          for (const o of page.items) {
            const got = await digest((await seg.get(BUCKET, o.key)).body);
            expect({ key: o.key, size: got.size, md5: got.md5 }).toEqual({ key: o.key, size: o.size, md5: o.etag });
            listed++;
          }
          if (!page.truncated) break;
          after = page.next;
        }
        const liveKeys = [...knownHead.values()].filter((vid) => vid !== undefined && !seg.meta.getVersion(vid)!.deleted);
        expect(listed).toBe(liveKeys.length);

        // 4. Every chunk the segment holds is whole; then GC of the crash's garbage breaks nothing.
        const scrub = await seg.scrub();
        expect(scrub.missing).toEqual([]);
        expect(scrub.corrupt).toEqual([]);
        if (round % 2 === 1) {
          await seg.gc(0);
          const again = await seg.scrub();
          expect(again.missing.length + again.corrupt.length).toBe(0);
          const some = [...ops.values()].filter((o) => o.versionId && o.kind === 'put').slice(-20);
          for (const op of some) {
            const got = await digest((await seg.get(BUCKET, op.key, { versionId: op.versionId })).body);
            expect(got.sha).toBe(op.sha);
          }
        }
      } catch (err) {
        throw isStitchError(err) ? new Error(`round ${round}: ${err.code}: ${err.message}`) : err;
      } finally {
        await seg.close();
      }
      expect(existsSync(join(dir, 'LOCK'))).toBe(false);
      await sleep(10);
    }
    const acked = [...ops.values()].filter((o) => o.versionId);
    expect(acked.length).toBeGreaterThanOrEqual(ROUNDS * 50);
    expect(acked.some((o) => o.kind === 'del')).toBe(true);
    // Reported for the record: how often a kill landed mid-chunk-write.
    console.log(
      `crash test seed ${RUN_SEED}: ${acked.length} acknowledged ops; of ${inFlightTotal} in flight at a kill, ` +
      `${inFlightCommitted} had committed; ${tmpLeftovers} tmp leftovers cleaned`,
    );
  });
});

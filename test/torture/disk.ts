// Disk faults: chunk files deleted, truncated or bit-flipped under a running segment while readers
// read, with a linked segment that holds the data (a `full` link); a bucket nobody else holds,
// whose damaged chunks must fail reads cleanly; `fsck --repair`; and a full disk.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isInlineCid } from '../../src/core/cid.ts';
import { Segment } from '../../src/segment/segment.ts';
import { Cluster, sleep, waitFor } from './cluster.ts';
import { newResult, type ScenarioResult } from './report.ts';
import { contentBytes, md5hex, sha256hex, KiB, MiB, Rng } from './rng.ts';
import type { S3Client } from './s3.ts';
import { emptyReport, checkListed } from './verify.ts';

export type Damage = 'delete' | 'truncate' | 'flip';

// Damages one chunk file; returns what was done.
export function damageFile(path: string, kind: Damage, rng: Rng): string {
  const size = statSync(path).size;
  if (kind === 'delete') {
    unlinkSync(path);
    return 'deleted';
  }
  if (kind === 'truncate') {
    const to = size > 0 ? rng.int(size) : 0;
    truncateSync(path, to);
    return `truncated ${size} -> ${to}`;
  }
  // Flip 1..8 bits in place (same length: only a hash check can tell).
  const fd = openSync(path, 'r+');
  try {
    const flips = 1 + rng.int(8);
    for (let i = 0; i < flips && size > 0; i++) {
      const at = rng.int(size);
      const b = Buffer.alloc(1);
      readSync(fd, b, 0, 1, at);
      b[0] ^= 1 << rng.int(8);
      writeSync(fd, b, 0, 1, at);
    }
    return `${flips} bits flipped`;
  } finally {
    closeSync(fd);
  }
}

export const chunkPath = (dataDir: string, cid: string) => join(dataDir, 'chunks', cid.slice(-2), cid);

// The stored (non-inline) chunks of every current object of a bucket, read by a read-only open
// beside the running server (what `stitch ls` does).
export async function chunksOfBucket(dataDir: string, bucket: string): Promise<Map<string, string[]>> {
  const seg = await Segment.open({ dataDir, readOnly: true });
  try {
    const out = new Map<string, string[]>();
    let after: string | undefined;
    for (;;) {
      const page = seg.list(bucket, { after, limit: 1000 });
      for (const o of page.items) {
        const v = await seg.head(bucket, o.key);
        if (!('chunks' in v.content)) throw new Error(`${bucket}/${o.key} has a manifest tree: keep torture objects smaller`);
        out.set(o.key, v.content.chunks.filter(([cid]) => !isInlineCid(cid)).map(([cid]) => cid.toString()));
      }
      if (!page.truncated) break;
      after = page.next;
    }
    return out;
  } finally {
    await seg.close();
  }
}

interface Obj {
  key: string;
  sha: string;
  size: number;
  etag: string;
}

async function putObjects(s3: S3Client, bucket: string, n: number, rng: Rng, label: string): Promise<Obj[]> {
  const out: Obj[] = [];
  for (let i = 0; i < n; i++) {
    const size = rng.chance(0.15) ? rng.between(0, 4 * KiB) : rng.between(64 * KiB, 2 * MiB);
    // Some content shared between keys: one damaged chunk then breaks several objects at once.
    const body = contentBytes(rng.chance(0.15) ? `${label}.shared.${size % 3}` : `${label}.${i}`, size);
    const key = `obj/${String(i).padStart(4, '0')}`;
    const r = await s3.put(bucket, key, body);
    out.push({ key, sha: sha256hex(body), size, etag: r.etag });
  }
  return out;
}

export interface DiskOptions {
  seed: number;
  objects: number;
  // Damage rounds during reads (each hits `fraction` of the chunk files).
  rounds: number;
  fraction?: number;
  readers?: number;
  log?: (msg: string) => void;
}

export async function diskFaultScenario(o: DiskOptions): Promise<ScenarioResult> {
  const res = newResult('disk faults (peer recovery)', o.seed);
  const started = Date.now();
  const rng = new Rng(o.seed);
  const log = o.log ?? (() => {});
  const fraction = o.fraction ?? 0.1;
  const c = await Cluster.create({ names: ['a', 'b'], links: [{ a: 'a', b: 'b', bucket: 'disk', mode: 'full' }] });
  const a = c.s3('a');
  const dirA = c.seg('a').dataDir;
  const damaged = { delete: 0, truncate: 0, flip: 0 };
  try {
    await waitFor(async () => (await c.status('a')).peers.every((p) => p.connected), 60_000, 'a connected to b');
    await a.createBucket('disk');
    await a.createBucket('solo');
    const objs = await putObjects(a, 'disk', o.objects, rng, `disk${o.seed}`);
    const solo = await putObjects(a, 'solo', 12, rng, `solo${o.seed}`);
    res.requests += objs.length + solo.length;
    const chunks = await chunksOfBucket(dirA, 'disk');
    const all = [...new Set([...chunks.values()].flat())];
    // b replicates every chunk of `disk` on its own (full link): then it can heal a.
    await waitFor(async () => {
      const st = await c.status('b');
      return st.replicationBacklog === 0 && all.every((cid) => existsSync(chunkPath(c.seg('b').dataDir, cid)));
    }, 180_000, 'b to replicate every chunk of disk', 250);
    log(`disk: ${objs.length} objects, ${all.length} chunk files replicated to b`);

    // Readers: every GET must be whole and right, whatever happens to the files underneath.
    let reading = true;
    let reads = 0;
    const readErrors: string[] = [];
    const reader = async (r: Rng) => {
      while (reading) {
        const obj = r.pick(objs);
        const d = await a.getDigest('disk', obj.key).catch((err: Error) => err);
        reads++;
        if (d instanceof Error) readErrors.push(`${obj.key}: ${d.message}`);
        else {
          res.bytesVerified += d.size;
          if (d.status !== 200) readErrors.push(`${obj.key}: HTTP ${d.status} ${d.code} ${d.message}`);
          else if (d.sha256 !== obj.sha || d.etag !== obj.etag) readErrors.push(`${obj.key}: WRONG BYTES (${d.size} of ${obj.size})`);
        }
      }
    };
    const readers = Array.from({ length: o.readers ?? 4 }, () => reader(rng.fork()));
    for (let round = 0; round < o.rounds; round++) {
      const victims = rng.shuffle([...all]).slice(0, Math.max(1, Math.round(all.length * fraction)));
      for (const cid of victims) {
        const p = chunkPath(dirA, cid);
        if (!existsSync(p)) continue;
        const kind = rng.pick(['delete', 'truncate', 'flip'] as const);
        damageFile(p, kind, rng);
        damaged[kind]++;
        res.faults++;
        if (rng.chance(0.3)) await sleep(rng.int(30));
      }
      res.cycles++;
      await sleep(rng.between(300, 1500));
    }
    reading = false;
    await Promise.all(readers);
    res.requests += reads;
    for (const e of readErrors.slice(0, 20)) res.problems.push(`reader error under damage: ${e}`);
    if (readErrors.some((e) => e.includes('WRONG'))) res.lost++;

    // One full pass reads every object (and so heals every damaged chunk); then fsck beside the
    // server finds every file whole again.
    for (const obj of objs) {
      const d = await a.getDigest('disk', obj.key);
      res.bytesVerified += d.size;
      if (d.status !== 200 || d.sha256 !== obj.sha) {
        res.lost++;
        res.problems.push(`after damage: ${obj.key} reads ${d.status} ${d.code ?? ''}`);
      }
    }
    const f = await c.fsck('a');
    if (f.code !== 0) res.problems.push(`fsck after reads healed a: exit ${f.code} ${JSON.stringify(f.report)}`);
    const st = await c.status('a');
    res.notes.push(`${reads} reads during ${o.rounds} damage rounds (${damaged.delete} deleted, ${damaged.truncate} truncated, ${damaged.flip} bit-flipped chunk files): `
      + `${readErrors.length} reader errors; reader recovered ${st.reader.recovered} chunks from b (missing ${st.reader.missing}, corrupt ${st.reader.corrupt})`);

    // fsck --repair: offline (it needs the data dir lock), then what the running server does.
    const victims = rng.shuffle([...all]).slice(0, Math.max(1, Math.round(all.length * fraction)));
    await c.kill('a', 'SIGTERM');
    for (const cid of victims) damageFile(chunkPath(dirA, cid), rng.pick(['delete', 'truncate', 'flip'] as const), rng);
    res.faults += victims.length;
    const off = await c.fsck('a', true);
    const offDamaged = (off.report?.missing.length ?? 0) + (off.report?.corrupt.length ?? 0);
    const offRepaired = off.report?.repaired.length ?? 0;
    if (offDamaged !== victims.length) res.problems.push(`offline fsck --repair saw ${offDamaged} damaged chunks of ${victims.length} damaged`);
    if (offRepaired < victims.length && off.code !== 5) res.problems.push(`offline fsck --repair left damage but exited ${off.code} (expected 5)`);
    res.notes.push(offRepaired === victims.length
      ? `offline fsck --repair repaired all ${victims.length} damaged chunks`
      : `offline fsck --repair (server stopped) has no chunk source: it reported all ${offDamaged}, repaired ${offRepaired} and exited ${off.code}; the repair is done beside the running server`);
    await c.start('a');
    await waitFor(async () => (await c.status('a')).peers.every((p) => p.connected), 60_000, 'a reconnected to b');
    // Beside the running server, `fsck --repair` runs in it (admin socket), with its gateway as the source.
    const online = await c.cli('a', ['--json', 'fsck', '--repair']);
    let onlineRepaired = -1;
    try {
      onlineRepaired = (JSON.parse(online.stdout) as { repaired: string[] }).repaired.length;
    } catch {
      // not JSON: refused
    }
    if (online.code !== 0 || onlineRepaired !== victims.length) {
      res.problems.push(`fsck --repair beside the running server: exit ${online.code}, repaired ${onlineRepaired} of ${victims.length}: ${online.stderr.trim().slice(-300)}`);
    } else res.notes.push(`fsck --repair beside the running server repaired all ${onlineRepaired} damaged chunks from b (through the server's gateway)`);
    const repaired = await c.fsck('a');
    if (repaired.code !== 0) res.problems.push(`fsck after the online repair: exit ${repaired.code} ${JSON.stringify(repaired.report)}`);
    // Repair through reads on the running server.
    for (const obj of objs) {
      const d = await a.getDigest('disk', obj.key);
      res.bytesVerified += d.size;
      if (d.status !== 200 || d.sha256 !== obj.sha) {
        res.lost++;
        res.problems.push(`after offline damage: ${obj.key} reads ${d.status} ${d.code ?? ''}`);
      }
    }
    const healed = await c.fsck('a');
    if (healed.code !== 0) res.problems.push(`fsck after the read pass: exit ${healed.code} ${JSON.stringify(healed.report)}`);

    // No peer holds `solo`: a damaged chunk must fail the read cleanly, never give wrong bytes.
    const soloChunks = await chunksOfBucket(dirA, 'solo');
    const hit = new Set<string>();
    let clean500 = 0;
    let cut = 0;
    for (const obj of solo) {
      const cids = soloChunks.get(obj.key) ?? [];
      if (cids.length === 0 || !rng.chance(0.6)) continue;
      const cid = rng.pick(cids);
      if (!existsSync(chunkPath(dirA, cid))) continue;
      damageFile(chunkPath(dirA, cid), rng.pick(['delete', 'truncate', 'flip'] as const), rng);
      hit.add(cid);
      res.faults++;
    }
    for (const obj of solo) {
      const broken = (soloChunks.get(obj.key) ?? []).some((cid) => hit.has(cid));
      const d = await a.getDigest('solo', obj.key).catch((err: Error) => err);
      res.requests++;
      if (!broken) {
        if (d instanceof Error || d.status !== 200 || d.sha256 !== obj.sha) res.problems.push(`solo ${obj.key} (undamaged) does not read back`);
        continue;
      }
      if (d instanceof Error) {
        cut++;
        continue;
      }
      if (d.status === 200) {
        res.lost++;
        res.problems.push(`WRONG: solo ${obj.key} with a damaged chunk answered 200 (${d.sha256 === obj.sha ? 'right bytes from nowhere?' : 'wrong bytes'})`);
      } else if (d.status === 500 && d.code === 'InternalError' && (d.message ?? '').length > 0) {
        clean500++;
      } else res.problems.push(`solo ${obj.key}: unclear error ${d.status} ${d.code} ${d.message}`);
    }
    const soloFsck = await c.fsck('a');
    const found = new Set([...(soloFsck.report?.missing ?? []), ...(soloFsck.report?.corrupt ?? [])]);
    if (soloFsck.code !== 5 || found.size !== hit.size || ![...hit].every((cid) => found.has(cid))) {
      res.problems.push(`fsck with unrecoverable damage: exit ${soloFsck.code}, found ${found.size} of ${hit.size} damaged chunks`);
    }
    res.notes.push(`no peer holding the chunk: ${clean500} reads failed with 500 InternalError + message before any byte, ${cut} were cut mid-body (the damaged chunk was not the first); fsck exit 5 listing all ${hit.size}`);
  } catch (err) {
    res.problems.push(`aborted: ${(err as Error).stack ?? err}\n${c.stderr('a').slice(-3000)}`);
  } finally {
    await c.stop();
  }
  res.ms = Date.now() - started;
  return res;
}

// ---- a full disk ----

export function loopMountAvailable(): { ok: boolean; why?: string } {
  if (process.getuid?.() !== 0) return { ok: false, why: 'not root (mount -o loop needs it)' };
  const dir = mkdtempSync(join(tmpdir(), 'stitch-loopprobe-'));
  try {
    const img = join(dir, 'img');
    const mnt = join(dir, 'mnt');
    mkdirSync(mnt);
    const steps = [['truncate', '-s', '8M', img], ['mkfs.ext4', '-q', img], ['mount', '-o', 'loop', img, mnt], ['umount', mnt]];
    for (const s of steps) {
      const r = spawnSync(s[0], s.slice(1), { encoding: 'utf8', timeout: 60_000 });
      if (r.status !== 0) return { ok: false, why: `${s.join(' ')}: ${(r.stderr || r.error?.message || '').trim()}` };
    }
    return { ok: true };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface FullDiskOptions {
  seed: number;
  sizeMiB?: number;
  log?: (msg: string) => void;
}

// A segment on a small ext4 (no reserved blocks: root would otherwise write past "full"), filled
// over S3 until writes fail. Failures must be clean S3 errors that store nothing; every
// acknowledged object must read back; reads keep working; freeing space makes writes work again;
// a restart and fsck find everything whole.
export async function fullDiskScenario(o: FullDiskOptions): Promise<ScenarioResult> {
  const res = newResult('full disk', o.seed);
  const started = Date.now();
  const rng = new Rng(o.seed);
  const avail = loopMountAvailable();
  if (!avail.ok) {
    res.notes.push(`SKIPPED: no loop mount here (${avail.why})`);
    res.ms = Date.now() - started;
    return res;
  }
  const dir = mkdtempSync(join(tmpdir(), 'stitch-fulldisk-'));
  const img = join(dir, 'img');
  const mnt = join(dir, 'fs');
  mkdirSync(mnt);
  const sh = (cmd: string[]) => {
    const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
  };
  sh(['truncate', '-s', `${o.sizeMiB ?? 64}M`, img]);
  sh(['mkfs.ext4', '-q', '-m', '0', img]);
  sh(['mount', '-o', 'loop', img, mnt]);
  let c: Cluster | undefined;
  try {
    // Ballast: space to give back later, as an operator would.
    const ballast = join(mnt, 'ballast');
    writeFileSync(ballast, Buffer.alloc(8 * MiB, 1));
    c = await Cluster.create({ names: ['full'], base: mnt });
    const s3 = c.s3('full');
    await s3.createBucket('full');
    const acked: Array<{ key: string; sha: string; size: number; etag: string }> = [];
    let refused = 0;
    const codes = new Map<string, number>();
    let n = 0;
    // Until several writes in a row fail (small ones may still fit between big ones).
    for (let failsInRow = 0; failsInRow < 6 && n < 400; n++) {
      const size = rng.chance(0.2) ? rng.between(0, 4 * KiB) : rng.between(256 * KiB, 3 * MiB);
      const body = contentBytes(`full.${o.seed}.${n}`, size);
      const key = `f/${String(n).padStart(4, '0')}`;
      res.requests++;
      const r = await s3.request('PUT', `/full/${key}`, { body });
      if (r.status === 200) {
        failsInRow = 0;
        acked.push({ key, sha: sha256hex(body), size, etag: md5hex(body) });
        if (r.headers.etag !== `"${md5hex(body)}"`) res.problems.push(`${key}: ETag ${r.headers.etag}`);
        continue;
      }
      failsInRow++;
      refused++;
      codes.set(`${r.status} ${r.code}`, (codes.get(`${r.status} ${r.code}`) ?? 0) + 1);
      const xml = r.body.toString();
      if (r.status < 400 || !/<Error>[\s\S]*<Code>[^<]+<\/Code>[\s\S]*<Message>[^<]*<\/Message>/.test(xml)) {
        res.problems.push(`${key}: refused without a well-formed S3 error: ${r.status} ${xml.slice(0, 200)}`);
      }
      // A refused write leaves no version behind.
      const h = await s3.head('full', key);
      if (h.status !== 404) res.problems.push(`${key}: refused (${r.status}) but HEAD answers ${h.status}`);
    }
    res.faults = refused;
    const df = spawnSync('df', ['-k', mnt], { encoding: 'utf8' }).stdout.trim().split('\n').pop();
    res.notes.push(`${acked.length} writes acknowledged, then ${refused} refused with ${[...codes].map(([k, v]) => `${v}x ${k}`).join(', ')}; df: ${df}`);
    if (refused === 0) res.problems.push('the disk never filled up');
    if (!c.alive('full')) throw new Error('the server died on a full disk');

    // Reads work on a full disk, and everything acknowledged is there.
    const verify = async (what: string) => {
      for (const obj of acked) {
        const d = await s3.getDigest('full', obj.key).catch((err: Error) => err);
        res.requests++;
        if (d instanceof Error || d.status !== 200 || d.sha256 !== obj.sha || d.etag !== obj.etag) {
          res.lost++;
          res.problems.push(`${what}: LOST ${obj.key}: ${d instanceof Error ? d.message : `${d.status} ${d.code}`}`);
        } else res.bytesVerified += d.size;
      }
      const r = emptyReport();
      await checkListed(s3, 'full', r);
      res.bytesVerified += r.bytesVerified;
      for (const p of r.problems) res.problems.push(`${what}: ${p}`);
      const listed = await s3.listObjects('full');
      if (listed.length !== acked.length) res.problems.push(`${what}: ${listed.length} objects listed, ${acked.length} acknowledged`);
    };
    await verify('on the full disk');
    // A delete marker is a metadata write: it may fail too, but only cleanly.
    const del = await s3.request('DELETE', `/full/${acked[0]?.key ?? 'none'}`);
    if (del.status !== 204 && !(del.status >= 500 && del.code)) res.problems.push(`DELETE on a full disk: ${del.status} ${del.body.toString().slice(0, 200)}`);
    if (del.status === 204 && acked.length > 0) {
      // Undo it so the acknowledged set stays the current one.
      const vid = String(del.headers['x-amz-version-id']);
      await s3.request('DELETE', `/full/${acked[0].key}?versionId=${encodeURIComponent(vid)}`);
    }

    // Space back: writes work again without a restart.
    unlinkSync(ballast);
    await sleep(200);
    const body = contentBytes(`full.${o.seed}.after`, 2 * MiB);
    const again = await s3.request('PUT', '/full/after-space-freed', { body });
    res.requests++;
    if (again.status !== 200) res.problems.push(`PUT after space was freed: ${again.status} ${again.code} ${again.message}`);
    else acked.push({ key: 'after-space-freed', sha: sha256hex(body), size: body.length, etag: md5hex(body) });

    // Restart on the same (nearly full) filesystem; fsck clean; everything still there.
    await c.kill('full', 'SIGTERM');
    const f = await c.fsck('full');
    if (f.code !== 0) res.problems.push(`fsck after the full disk: exit ${f.code} ${JSON.stringify(f.report)}`);
    await c.start('full');
    s3.reset();
    await verify('after restart');
    res.cycles = 1;
  } catch (err) {
    res.problems.push(`aborted: ${(err as Error).stack ?? err}\n${c?.stderr('full').slice(-3000) ?? ''}`);
  } finally {
    await c?.stop().catch(() => {});
    spawnSync('umount', [mnt]);
    if (readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${mnt} `)) spawnSync('umount', ['-l', mnt]);
    rmSync(dir, { recursive: true, force: true });
  }
  res.ms = Date.now() - started;
  return res;
}

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { DataLock } from '../../src/segment/data-lock.ts';
import { Segment } from '../../src/segment/segment.ts';
import { MID_CHUNKER, expectCode, getBytes, removeDir, tempDir } from '../helpers/segment-util.ts';

// One writer per data directory (DataLock), read-only opens beside it, stale locks taken over.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE = join(ROOT, 'node_modules/.bin/node');
const CHILD = join(ROOT, 'test/helpers/segment-open-child.ts');

interface Child {
  proc: ChildProcess;
  lines: AsyncIterator<string>;
}

function startChild(dataDir: string, mode: 'write' | 'read', hold = false): Child {
  const proc = spawn(NODE, [CHILD, dataDir, mode, ...(hold ? ['hold'] : [])], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  async function* lines() {
    let buf = '';
    for await (const piece of proc.stdout!) {
      buf += piece;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        yield buf.slice(0, i);
        buf = buf.slice(i + 1);
      }
    }
  }
  return { proc, lines: lines() };
}

async function nextJson(child: Child): Promise<Record<string, unknown>> {
  const { value, done } = await child.lines.next();
  if (done) throw new Error('child ended without output');
  return JSON.parse(value);
}

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
}

describe('segment data lock', () => {
  const dirs: string[] = [];
  const open: Segment[] = [];
  const children: ChildProcess[] = [];
  const dir = () => {
    const d = tempDir('lock');
    dirs.push(d);
    return d;
  };
  const openSeg = async (dataDir: string, readOnly = false) => {
    const s = await Segment.open({ dataDir, readOnly });
    open.push(s);
    return s;
  };
  afterEach(async () => {
    for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    for (const s of open.splice(0)) await s.close().catch(() => {});
    for (const d of dirs.splice(0)) removeDir(d);
  });

  it('a second writable open in the same process fails with SegmentLocked; close releases', async () => {
    const d = dir();
    const seg = await openSeg(d);
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(process.pid));
    await expectCode(() => Segment.open({ dataDir: d }), 'SegmentLocked');
    // The failed open did not take the lock away from the first.
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(process.pid));
    seg.createBucket('still-mine');
    await seg.close();
    expect(existsSync(join(d, 'LOCK'))).toBe(false);
    const again = await openSeg(d);
    expect(again.listBuckets().map((b) => b.name)).toEqual(['still-mine']);
    await again.close();
    // Releasing twice does not remove a lock another open holds by then.
    const l1 = DataLock.acquire(d);
    l1.release();
    const l2 = DataLock.acquire(d);
    l1.release();
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(process.pid));
    expect(() => DataLock.acquire(d)).toThrow(/already open/);
    l2.release();
    expect(existsSync(join(d, 'LOCK'))).toBe(false);
  });

  it('another process cannot open it for writing, but can read-only, beside the writer', async () => {
    const d = dir();
    const seg = await openSeg(d);
    seg.createBucket('shared');
    await seg.put('shared', 'k', 'written by the lock holder');

    const writer = startChild(d, 'write');
    children.push(writer.proc);
    expect(await nextJson(writer)).toEqual({ ok: false, code: 'SegmentLocked' });
    expect(await exited(writer.proc)).toBe(1);

    const reader = startChild(d, 'read');
    children.push(reader.proc);
    expect(await nextJson(reader)).toMatchObject({ ok: true });
    expect(await exited(reader.proc)).toBe(0);
    // The reader neither took nor removed the lock.
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(process.pid));
    await seg.put('shared', 'k2', 'still writable');
  });

  it('while another process holds the lock: SegmentLocked here, read-only works, then it is free', async () => {
    const d = dir();
    const first = await openSeg(d);
    first.createBucket('held');
    await first.put('held', 'k', 'v');
    await first.close();

    const holder = startChild(d, 'write', true);
    children.push(holder.proc);
    const hello = await nextJson(holder);
    expect(hello).toMatchObject({ ok: true });
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(hello.pid));
    await expectCode(() => Segment.open({ dataDir: d }), 'SegmentLocked');

    const ro = await openSeg(d, true);
    expect((await getBytes(ro, 'held', 'k')).toString()).toBe('v');
    await expectCode(() => ro.put('held', 'k', 'x'), 'SegmentLocked');
    await expectCode(() => ro.delete('held', 'k'), 'SegmentLocked');
    await expectCode(() => ro.createBucket('nope-ro'), 'SegmentLocked');
    await expectCode(() => ro.gc(0), 'SegmentLocked');
    await expectCode(() => ro.scrub({ repair: true }), 'SegmentLocked');
    expect((await ro.scrub()).missing).toEqual([]);

    holder.proc.stdin!.end();
    expect(await nextJson(holder)).toEqual({ closed: true });
    expect(await exited(holder.proc)).toBe(0);
    expect(existsSync(join(d, 'LOCK'))).toBe(false);
    const seg = await openSeg(d);
    await seg.put('held', 'k', 'after the holder left');
  });

  it('a stale LOCK (killed holder, dead pid, empty or garbage) is taken over', async () => {
    const d = dir();
    (await openSeg(d)).createBucket('stale');
    await open.pop()!.close();

    // A holder killed with SIGKILL leaves its LOCK behind.
    const holder = startChild(d, 'write', true);
    children.push(holder.proc);
    const hello = await nextJson(holder);
    expect(hello).toMatchObject({ ok: true });
    holder.proc.kill('SIGKILL');
    await exited(holder.proc);
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(hello.pid));
    const seg = await openSeg(d);
    expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(process.pid));
    expect(seg.listBuckets().map((b) => b.name)).toEqual(['stale']);
    await seg.close();

    // A pid that certainly is dead: a process that already exited.
    const done = spawnSync(NODE, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    for (const content of [done.stdout, '', 'not a pid']) {
      writeFileSync(join(d, 'LOCK'), content);
      const s = await openSeg(d);
      expect(readFileSync(join(d, 'LOCK'), 'utf8')).toBe(String(process.pid));
      await s.close();
    }
  });

  it('read-only opens never write: no lock, tmp/ left alone, no new segment', async () => {
    const d = dir();
    await expectCode(() => Segment.open({ dataDir: d, readOnly: true }), 'NoSuchSegment');
    const w = await openSeg(d);
    await w.close();
    // A writer's temp file (a chunk being written) must survive a reader's open.
    const tmpFile = join(d, 'chunks', 'tmp', 'bafkreiinflight.123456');
    writeFileSync(tmpFile, 'half a chunk');
    const ro = await openSeg(d, true);
    expect(existsSync(tmpFile)).toBe(true);
    expect(existsSync(join(d, 'LOCK'))).toBe(false);
    await ro.close();
    // A writable open cleans it up: leftovers of a crash were never acknowledged.
    await openSeg(d);
    expect(existsSync(tmpFile)).toBe(false);
  });

  it('name and chunker are fixed at creation', async () => {
    const d = dir();
    const a = await openSeg(d);
    expect(a.name).toBe('local');
    await a.close();
    const d2 = dir();
    const b = await Segment.open({ dataDir: d2, name: 'eu-west', chunker: MID_CHUNKER });
    open.push(b);
    const pub = b.identity.publicKey.export({ type: 'spki', format: 'der' });
    await b.close();
    const c = await Segment.open({ dataDir: d2, name: 'renamed', chunker: { min: 8192, avg: 32768, max: 131072 } });
    open.push(c);
    expect(c.name).toBe('eu-west');
    expect(c.chunker).toEqual(MID_CHUNKER);
    expect(c.identity.publicKey.export({ type: 'spki', format: 'der' }).equals(pub)).toBe(true);
  });
});

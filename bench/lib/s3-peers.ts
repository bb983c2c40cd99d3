// S3 servers for bench/s3.ts, each started as its own process(es) on loopback in a temp dir:
// the stitchfs gateway (`stitch serve --s3`), s3rver (npm, installed on demand into bench/.peers)
// and Ceph radosgw on a throw-away one-monitor, one-memstore-OSD cluster (Debian packages,
// installed with apt-get on demand). Every child is tracked and killed on stop, on a thrown error
// and on process exit.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, packageVersion } from './sys.ts';

export interface Endpoint {
  endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

export interface Peer extends Endpoint {
  name: string;
  // Seconds from the first command to an endpoint that answers.
  startSecs: number;
  // Extra facts for the notes under the table.
  notes: string[];
  stop(): Promise<void>;
}

type Log = (msg: string) => void;

// ---------------------------------------------------------------------------------------------
// Child process bookkeeping

const live = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

// Last resort: whatever is still running when this process exits is killed (synchronously).
process.once('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

// SIGTERM (or the given signal), then SIGKILL after graceMs; resolves once the child is gone.
export async function stopChild(child: ChildProcess, graceMs = 5_000, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await gone;
  clearTimeout(t);
}

// A daemon whose stdout and stderr go to logFile.
function spawnLogged(cmd: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a');
  try {
    return track(spawn(cmd, args, { stdio: ['ignore', fd, fd], env: env ?? process.env }));
  } finally {
    closeSync(fd);
  }
}

export function tail(file: string, lines = 6): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// Polls an HTTP endpoint until it answers with any status (the S3 servers answer an unsigned
// GET / with 200 or 403), the child dies, or the time is up.
async function waitHttp(url: string, child: ChildProcess, timeoutMs: number, what: string, logFile: string): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (exited(child)) throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}): ${tail(logFile, 3)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      await r.arrayBuffer();
      return;
    } catch {
      // not listening yet
    }
    if (performance.now() > deadline) throw new Error(`${what} did not answer on ${url} within ${timeoutMs / 1000} s: ${tail(logFile, 3)}`);
    await sleep(200);
  }
}

// Waits for a `{"ready":true,...}` line on the child's stdout.
async function waitReadyLine(child: ChildProcess, timeoutMs: number, what: string, logFile: string): Promise<Record<string, unknown>> {
  return await new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const t = setTimeout(() => done(new Error(`${what} not ready within ${timeoutMs / 1000} s: ${tail(logFile, 3)}`)), timeoutMs);
    const onExit = (): void => {
      // Give the log a moment to flush.
      setTimeout(() => done(new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before ready: ${tail(logFile, 3)}`)), 100);
    };
    child.once('exit', onExit);
    let settled = false;
    function done(err: Error | undefined, value?: Record<string, unknown>): void {
      if (settled) return;
      settled = true;
      clearTimeout(t);
      child.off('exit', onExit);
      rl.close();
      if (err) reject(err);
      else resolve(value!);
    }
    rl.on('line', (line) => {
      try {
        const v = JSON.parse(line) as Record<string, unknown>;
        if (v.ready === true) done(undefined, v);
      } catch {
        // not the ready line
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// stitchfs

export interface StitchOptions {
  dir: string;
  // Directory for a V8 CPU profile of the server (--cpu-prof), written when it stops.
  cpuProfDir?: string;
}

export async function startStitch(o: StitchOptions, log: Log): Promise<Peer> {
  const t0 = performance.now();
  const data = join(o.dir, 'stitch-data');
  mkdirSync(data, { recursive: true });
  const port = await freePort();
  const key = { accessKeyId: 'STITCHBENCHKEY000001', secretAccessKey: 'stitchbenchsecret/0000000000000000000000' };
  const logFile = join(o.dir, 'stitch.log');
  const node = process.execPath;
  const flags = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
  const child = track(spawn(node, [...flags, join(REPO_ROOT, 'src/cli/main.ts'), '--data', data, 'serve', '--s3', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', openSync(logFile, 'a')],
    env: { ...process.env, STITCH_ACCESS_KEY_ID: key.accessKeyId, STITCH_SECRET_ACCESS_KEY: key.secretAccessKey },
    cwd: REPO_ROOT,
  }));
  try {
    await waitReadyLine(child, 30_000, 'stitch serve', logFile);
  } catch (err) {
    await stopChild(child, 1_000, 'SIGKILL');
    throw err;
  }
  log(`stitchfs ready on 127.0.0.1:${port} (pid ${child.pid})`);
  return {
    name: 'stitchfs',
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    ...key,
    startSecs: (performance.now() - t0) / 1000,
    notes: [],
    // SIGTERM lets it close cleanly (and write its CPU profile).
    stop: async () => stopChild(child, 15_000),
  };
}

// ---------------------------------------------------------------------------------------------
// s3rver

export const PEERS_PREFIX = join(REPO_ROOT, 'bench', '.peers');
const S3RVER_SPEC = 's3rver@3.7.1';

export function s3rverVersion(): string {
  return packageVersion('s3rver', PEERS_PREFIX);
}

// npm install --prefix bench/.peers s3rver, when it is not there yet.
export function ensureS3rver(log: Log): void {
  if (existsSync(join(PEERS_PREFIX, 'node_modules', 's3rver', 'package.json'))) return;
  log(`installing ${S3RVER_SPEC} into ${PEERS_PREFIX}`);
  mkdirSync(PEERS_PREFIX, { recursive: true });
  const r = spawnSync('npm', ['install', '--prefix', PEERS_PREFIX, '--no-audit', '--no-fund', '--no-save', S3RVER_SPEC], {
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
  if (r.error) throw new Error(`npm install ${S3RVER_SPEC}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`npm install ${S3RVER_SPEC} exited ${r.status}: ${r.stderr.toString().trim().split('\n').slice(-3).join(' ')}`);
}

export async function startS3rver(o: { dir: string }, log: Log): Promise<Peer> {
  const t0 = performance.now();
  ensureS3rver(log);
  const data = join(o.dir, 's3rver-data');
  mkdirSync(data, { recursive: true });
  const port = await freePort();
  const logFile = join(o.dir, 's3rver.log');
  const child = track(spawn(process.execPath, [join(REPO_ROOT, 'bench/s3/s3rver-child.ts'), '--dir', data, '--port', String(port), '--prefix', PEERS_PREFIX], {
    stdio: ['ignore', 'pipe', openSync(logFile, 'a')],
  }));
  try {
    await waitReadyLine(child, 30_000, 's3rver', logFile);
  } catch (err) {
    await stopChild(child, 1_000, 'SIGKILL');
    throw err;
  }
  log(`s3rver ready on 127.0.0.1:${port} (pid ${child.pid})`);
  return {
    name: 's3rver',
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    // s3rver's fixed built-in credentials.
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    startSecs: (performance.now() - t0) / 1000,
    notes: [],
    stop: async () => stopChild(child, 5_000),
  };
}

// ---------------------------------------------------------------------------------------------
// Ceph radosgw

const CEPH_PACKAGES = ['radosgw', 'ceph-mon', 'ceph-osd'];
const CEPH_BINARIES = ['/usr/bin/radosgw', '/usr/bin/ceph-mon', '/usr/bin/ceph-osd', '/usr/bin/monmaptool', '/usr/bin/ceph', '/usr/bin/radosgw-admin'];

export function cephVersion(): string {
  const r = spawnSync('ceph', ['-v'], { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return 'not installed';
  // "ceph version 16.2.15 (618f...) pacific (stable)"
  const m = /ceph version (\S+) \([0-9a-f]+\) (\S+)/.exec(r.stdout);
  return m ? `${m[1]} ${m[2]}` : r.stdout.trim();
}

// apt-get install the Debian packages when a binary is missing (needs root).
export function ensureCeph(log: Log): void {
  if (CEPH_BINARIES.every((b) => existsSync(b))) return;
  if (process.getuid?.() !== 0) throw new Error(`${CEPH_PACKAGES.join(' ')} not installed and not root to apt-get them`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  log(`installing ${CEPH_PACKAGES.join(' ')} with apt-get (once)`);
  const update = spawnSync('apt-get', ['update', '-q'], { stdio: ['ignore', 'ignore', 'pipe'], env, timeout: 300_000 });
  if (update.status !== 0) throw new Error(`apt-get update failed: ${update.error?.message ?? update.stderr.toString().trim().split('\n').slice(-2).join(' ')}`);
  const inst = spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...CEPH_PACKAGES], { stdio: ['ignore', 'ignore', 'pipe'], env, timeout: 900_000 });
  if (inst.status !== 0) throw new Error(`apt-get install failed: ${inst.error?.message ?? inst.stderr.toString().trim().split('\n').slice(-2).join(' ')}`);
  const missing = CEPH_BINARIES.filter((b) => !existsSync(b));
  if (missing.length) throw new Error(`still missing after apt-get install: ${missing.join(' ')}`);
}

export interface RadosgwOptions {
  dir: string;
  // Bytes the memstore OSD may hold (everything written lives in RAM).
  memstoreBytes: number;
}

// One monitor, one OSD on memstore (RAM), no cephx, crc-only messenger, pools of size 1, and a
// radosgw with the beast frontend; a user `bench` with a fixed key. No mgr: nothing here needs one.
export async function startRadosgw(o: RadosgwOptions, log: Log): Promise<Peer> {
  const t0 = performance.now();
  ensureCeph(log);
  const tInstalled = performance.now();
  const dir = join(o.dir, 'ceph');
  const runDir = join(dir, 'run');
  const logDir = join(dir, 'log');
  for (const d of [dir, runDir, logDir, join(dir, 'mon'), join(dir, 'osd')]) mkdirSync(d, { recursive: true });
  const [monV2, monV1, rgwPort] = [await freePort(), await freePort(), await freePort()];
  const fsid = randomUUID();
  const conf = join(dir, 'ceph.conf');
  const monAddrs = `[v2:127.0.0.1:${monV2},v1:127.0.0.1:${monV1}]`;
  writeFileSync(conf, `[global]
fsid = ${fsid}
mon host = ${monAddrs}
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms cluster mode = crc
ms service mode = crc
ms client mode = crc
ms mon cluster mode = crc
ms mon service mode = crc
ms mon client mode = crc
ms tcp nodelay = true
run dir = ${runDir}
admin socket = ${runDir}/$name.$pid.asok
pid file = ${runDir}/$name.pid
log file = ${logDir}/$name.log
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 1
mon data avail crit = 1
[mon]
mon data = ${dir}/mon
[osd]
osd data = ${dir}/osd
osd objectstore = memstore
memstore device bytes = ${o.memstoreBytes}
[client.rgw.bench]
rgw frontends = beast endpoint=127.0.0.1:${rgwPort}
`);
  // Hermetic: no CEPH_ARGS/CEPH_CONF from the caller's environment reaches the tools.
  const env = { ...process.env };
  delete env.CEPH_ARGS;
  delete env.CEPH_CONF;
  const procs: ChildProcess[] = [];
  const stopAll = async (): Promise<void> => {
    // SIGKILL: the cluster is thrown away, and a clean memstore umount would dump RAM to disk.
    for (const c of procs.reverse()) await stopChild(c, 2_000, 'SIGKILL');
  };
  const ceph = (args: string[], timeoutMs = 30_000): string => {
    const r = spawnSync(args[0], ['-c', conf, ...args.slice(1)], { encoding: 'utf8', timeout: timeoutMs, cwd: dir, env });
    if (r.error) throw new Error(`${args.slice(0, 3).join(' ')}: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`${args.slice(0, 3).join(' ')} exited ${r.status}: ${(r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ')}`);
    return r.stdout;
  };
  const step = (what: string): void => log(`radosgw: ${what} (${((performance.now() - tInstalled) / 1000).toFixed(1)} s)`);
  try {
    const monmap = join(dir, 'monmap');
    const r = spawnSync('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', monAddrs, monmap], { encoding: 'utf8', env });
    if (r.status !== 0) throw new Error(`monmaptool: ${r.stderr.trim()}`);
    ceph(['ceph-mon', '--mkfs', '-i', 'a', '--monmap', monmap, '--keyring', '/dev/null']);
    procs.push(spawnLogged('ceph-mon', ['-c', conf, '-f', '-i', 'a'], join(logDir, 'mon.out'), env));
    step('monitor started');
    const osdUuid = randomUUID();
    const id = ceph(['ceph', '--connect-timeout', '20', 'osd', 'create', osdUuid]).trim();
    ceph(['ceph-osd', '-i', id, '--mkfs', '--osd-uuid', osdUuid], 60_000);
    procs.push(spawnLogged('ceph-osd', ['-c', conf, '-f', '-i', id], join(logDir, 'osd.out'), env));
    step(`osd.${id} started`);
    const deadline = performance.now() + 60_000;
    for (;;) {
      const osd = procs[procs.length - 1];
      if (exited(osd)) throw new Error(`ceph-osd exited (${osd.exitCode ?? osd.signalCode}): ${tail(join(logDir, `osd.${id}.log`), 2)}`);
      const stat = JSON.parse(ceph(['ceph', '--connect-timeout', '10', 'osd', 'stat', '-f', 'json'])) as { num_up_osds?: number };
      if (stat.num_up_osds === 1) break;
      if (performance.now() > deadline) throw new Error('osd not up within 60 s');
      await sleep(250);
    }
    step('osd up');
    const access = { accessKeyId: 'RADOSGWBENCHKEY00001', secretAccessKey: 'radosgwbenchsecret/000000000000000000000' };
    // Creates the default realm/zone and its pools on the way.
    ceph(['radosgw-admin', 'user', 'create', '--uid=bench', '--display-name=bench', `--access-key=${access.accessKeyId}`, `--secret=${access.secretAccessKey}`], 120_000);
    step('user created');
    const rgwLog = join(logDir, 'rgw.out');
    const rgw = spawnLogged('radosgw', ['-c', conf, '-f', '-n', 'client.rgw.bench'], rgwLog, env);
    procs.push(rgw);
    await waitHttp(`http://127.0.0.1:${rgwPort}/`, rgw, 90_000, 'radosgw', rgwLog);
    step('radosgw answering');
    const startSecs = (performance.now() - tInstalled) / 1000;
    const installSecs = (tInstalled - t0) / 1000;
    return {
      name: 'radosgw',
      endpoint: `http://127.0.0.1:${rgwPort}`,
      region: 'us-east-1',
      ...access,
      startSecs,
      notes: [
        `radosgw cluster bring-up (mon + memstore osd + user + rgw): ${startSecs.toFixed(1)} s` + (installSecs > 1 ? ` (+ ${installSecs.toFixed(0)} s apt-get install)` : ''),
      ],
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}

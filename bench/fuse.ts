// FUSE benchmark: the stitchfs mount (`stitch mount`) against, in the same run, the local disk it
// sits on, a minimal C filesystem built from libfuse3's own example (passthrough_ll.c: the FUSE
// limit of this kernel) and `rclone mount --vfs-cache-mode writes` over stitchfs's own S3 gateway
// (what a user would pick instead). fio sequential write and read, fio 4 KiB random read IOPS,
// and `tar x` of a tree of many small files. Prints one table to stdout (progress to stderr).
// No assertions.
//
// Run: node_modules/.bin/node bench/fuse.ts [--size-mib 1024] [--seconds 10] [--tree DIR...]
//        [--only local,passthrough,stitchfs,rclone] [--dir /tmp] [--no-drop-caches] [--keep]
//
// Durability is made equal where it can be: writes end with fsync (fio --end_fsync=1), tar x is
// followed by syncfs of the target; stitchfs commits every file durably at close; rclone uploads
// after close, so its write and tar figures run until the upload is visible over S3. Before each
// read job the page cache is dropped (root only) so every target reads cold from its disk.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { fsType, machine, REPO_ROOT } from './lib/sys.ts';
import { formatTable, type Column, type Row } from './lib/table.ts';

const TARGETS = ['local', 'passthrough', 'stitchfs', 'rclone'] as const;
type Target = (typeof TARGETS)[number];

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '1024' },
    seconds: { type: 'string', default: '10' },
    tree: { type: 'string', multiple: true },
    only: { type: 'string', default: TARGETS.join(',') },
    dir: { type: 'string', default: tmpdir() },
    'no-drop-caches': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (args.help) {
  console.log(`usage: node_modules/.bin/node bench/fuse.ts [--size-mib N] [--seconds N] [--tree DIR...]
         [--only ${TARGETS.join(',')}] [--dir DIR] [--no-drop-caches] [--keep]`);
  process.exit(0);
}

const SIZE_MIB = Number(args['size-mib']);
const SECONDS = Number(args.seconds);
const TREES = args.tree ?? [join(REPO_ROOT, 'node_modules/@aws-sdk'), join(REPO_ROOT, 'node_modules/@smithy')];
const ONLY = args.only.split(',').filter((t): t is Target => (TARGETS as readonly string[]).includes(t));
const NODE = join(REPO_ROOT, 'node_modules/.bin/node');
const MAIN = join(REPO_ROOT, 'src/cli/main.ts');
const KEY_ID = 'BENCHFUSEKEY00000001';
const SECRET = 'bench-fuse-secret-0123456789abcdefghijklmn';
const EXAMPLES = '/usr/share/doc/libfuse3-dev/examples';

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const work = mkdtempSync(join(resolve(args.dir), 'stitch-bench-fuse-'));
const children = new Set<ChildProcess>();
const mounts = new Set<string>();

function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
}

function mountedAt(dir: string): boolean {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').some((l) => l.split(' ')[4] === dir);
}

async function waitMounted(dir: string, child: ChildProcess, stderr: () => string): Promise<void> {
  for (let i = 0; i < 300 && !mountedAt(dir); i++) {
    if (child.exitCode !== null) throw new Error(`mount process for ${dir} exited ${child.exitCode}: ${stderr().trim()}`);
    await sleep(100);
  }
  if (!mountedAt(dir)) throw new Error(`${dir} not mounted after 30 s`);
  mounts.add(dir);
}

function unmount(dir: string): void {
  if (!mountedAt(dir)) return;
  spawnSync('fusermount3', ['-u', dir]);
  if (mountedAt(dir)) spawnSync('umount', ['-l', dir]);
  mounts.delete(dir);
}

function start(cmd: string, argv: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; stderr: () => string } {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const k of Object.keys(full)) if (full[k] === undefined) delete full[k];
  const child = spawn(cmd, argv, { env: full, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
  });
  return { child, stderr: () => err };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(t);
}

// The JSON "ready" line a stitch command prints.
function readyLine(child: ChildProcess, stderr: () => string): Promise<Record<string, unknown>> {
  return new Promise((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 60 s: ${stderr()}`)), 60_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if (msg.ready) {
          clearTimeout(timer);
          resolveReady(msg);
        }
      } catch {
        // not JSON
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code} before ready: ${stderr()}`)));
  });
}

function stitchCli(data: string, ...a: string[]): void {
  execFileSync(NODE, [MAIN, '--data', data, ...a], { stdio: ['ignore', 'ignore', 'pipe'] });
}

function dropCaches(): void {
  if (args['no-drop-caches']) return;
  spawnSync('sync');
  try {
    writeFileSync('/proc/sys/vm/drop_caches', '3');
  } catch {
    // not root: reads may be warm
  }
}

interface Mounted {
  dir: string; // where the benchmark files go
  label: string;
  note: string;
  // Waits until what was written is durable/visible (rclone: uploaded).
  settle: (expect: { file?: string; size?: number; files?: number }) => Promise<void>;
  sync: () => void;
  stop: () => Promise<void>;
}

async function setUp(t: Target): Promise<Mounted> {
  const base = join(work, t);
  mkdirSync(base, { recursive: true });
  const noSettle = async () => {};
  if (t === 'local') {
    return {
      dir: base, label: `local disk (${fsType(base)})`, note: 'page cache, fsync at the end',
      settle: noSettle, sync: () => spawnSync('sync', ['-f', base]), stop: async () => {},
    };
  }
  if (t === 'passthrough') {
    const bin = join(work, 'passthrough_ll');
    const cc = spawnSync('sh', ['-c', `gcc -O2 -o '${bin}' ${EXAMPLES}/passthrough_ll.c -I${EXAMPLES} $(pkg-config fuse3 --cflags --libs)`], { encoding: 'utf8' });
    if (cc.status !== 0) throw new Error(`building passthrough_ll: ${cc.stderr}`);
    const src = join(base, 'src');
    const mnt = join(base, 'mnt');
    mkdirSync(src);
    mkdirSync(mnt);
    const p = start(bin, ['-f', '-o', `source=${src}`, mnt]);
    await waitMounted(mnt, p.child, p.stderr);
    return {
      dir: mnt, label: 'FUSE passthrough_ll.c (libfuse3 example, C)', note: 'same disk through FUSE; its default caching',
      settle: noSettle, sync: () => spawnSync('sync', ['-f', src]),
      stop: async () => {
        unmount(mnt);
        await stopChild(p.child);
      },
    };
  }
  if (t === 'stitchfs') {
    const data = join(base, 'data');
    const mnt = join(base, 'mnt');
    mkdirSync(mnt);
    stitchCli(data, 'mb', 'bench');
    const p = start(NODE, [MAIN, '--data', data, 'mount', mnt, '--bucket', 'bench']);
    await readyLine(p.child, p.stderr);
    mounts.add(mnt);
    return {
      dir: mnt, label: 'stitchfs mount', note: 'chunked, hashed, versioned; durable at close',
      settle: noSettle, sync: () => {},
      stop: async () => {
        await stopChild(p.child);
        unmount(mnt);
      },
    };
  }
  // rclone mount over stitchfs's S3 gateway.
  const data = join(base, 'data');
  const mnt = join(base, 'mnt');
  mkdirSync(mnt);
  stitchCli(data, 'mb', 'bench');
  const server = start(NODE, [MAIN, '--data', data, 'serve', '--s3', '127.0.0.1:0', '--p2p', '/ip4/127.0.0.1/tcp/0', '--no-console'],
    { STITCH_ACCESS_KEY_ID: KEY_ID, STITCH_SECRET_ACCESS_KEY: SECRET });
  const ready = await readyLine(server.child, server.stderr);
  const endpoint = ready.s3 as string;
  const env = {
    RCLONE_CONFIG_STITCH_TYPE: 's3', RCLONE_CONFIG_STITCH_PROVIDER: 'Other', RCLONE_CONFIG_STITCH_ENDPOINT: endpoint,
    RCLONE_CONFIG_STITCH_ACCESS_KEY_ID: KEY_ID, RCLONE_CONFIG_STITCH_SECRET_ACCESS_KEY: SECRET,
    RCLONE_CONFIG_STITCH_REGION: 'us-east-1', RCLONE_CONFIG_STITCH_FORCE_PATH_STYLE: 'true',
    // A CA bundle from the environment makes rclone's S3 client refuse its own HTTP transport.
    AWS_CA_BUNDLE: undefined,
  };
  // --s3-upload-cutoff 5G: one PUT per file. rclone's multipart completion (ETags sent as &#34;
  // character references) is refused by the gateway at the time of writing (InvalidPart).
  const rc = start('rclone', ['mount', 'stitch:bench', mnt, '--vfs-cache-mode', 'writes', '--cache-dir', join(base, 'cache'),
    '--s3-upload-cutoff', '5G', '--config', join(base, 'rclone.conf')], env);
  await waitMounted(mnt, rc.child, rc.stderr);
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET } });
  return {
    dir: mnt, label: 'rclone mount (vfs-cache writes) -> stitchfs S3', note: 'uploads after close (5 s write-back delay): timed until visible over S3',
    settle: async (e) => {
      for (let i = 0; i < 6000; i++) {
        try {
          if (e.file) {
            const h = await s3.send(new HeadObjectCommand({ Bucket: 'bench', Key: e.file }));
            if (h.ContentLength === e.size) return;
          } else if (e.files !== undefined) {
            let n = 0;
            let token: string | undefined;
            do {
              const page = await s3.send(new ListObjectsV2Command({ Bucket: 'bench', ContinuationToken: token }));
              n += page.KeyCount ?? 0;
              token = page.NextContinuationToken;
            } while (token);
            if (n >= e.files) return;
          } else return;
        } catch {
          // not there yet
        }
        await sleep(100);
      }
      throw new Error('rclone upload did not finish in 10 minutes');
    },
    sync: () => {},
    stop: async () => {
      unmount(mnt);
      await stopChild(rc.child);
      s3.destroy();
      await stopChild(server.child);
    },
  };
}

interface FioJob {
  jobs: Array<{ read: { bw_bytes: number; iops: number }; write: { bw_bytes: number; iops: number }; error: number }>;
}

function fio(dir: string, opts: string): FioJob {
  const out = sh(`fio --name=bench --directory='${dir}' --ioengine=psync --output-format=json ${opts}`);
  return JSON.parse(out.slice(out.indexOf('{'))) as FioJob;
}

interface Result {
  writeMBs?: number;
  // Until the writing program was done (differs from writeMBs when uploads follow the close).
  writeAppMBs?: number;
  readMBs?: number;
  iops?: number;
  filesPerSec?: number;
  error?: string;
}

async function measure(t: Target, tarball: string, files: number): Promise<{ m: Mounted; r: Result }> {
  log(`== ${t}`);
  const r: Result = {};
  let m: Mounted;
  try {
    m = await setUp(t);
  } catch (err) {
    r.error = (err as Error).message.split('\n')[0].slice(0, 160);
    log(`   set-up failed: ${(err as Error).message}`);
    return { m: { dir: '', label: t, note: '', settle: async () => {}, sync: () => {}, stop: async () => {} }, r };
  }
  const bytes = SIZE_MIB * 1024 * 1024;
  try {
    log(`   sequential write ${SIZE_MIB} MiB`);
    let t0 = performance.now();
    fio(m.dir, `--filename=seq.dat --rw=write --bs=1m --size=${SIZE_MIB}m --end_fsync=1`);
    r.writeAppMBs = bytes / 1e6 / ((performance.now() - t0) / 1000);
    await m.settle({ file: 'seq.dat', size: bytes });
    r.writeMBs = bytes / 1e6 / ((performance.now() - t0) / 1000);

    log('   sequential read');
    dropCaches();
    t0 = performance.now();
    fio(m.dir, `--filename=seq.dat --rw=read --bs=1m --size=${SIZE_MIB}m`);
    r.readMBs = bytes / 1e6 / ((performance.now() - t0) / 1000);

    log(`   4 KiB random read, ${SECONDS} s`);
    dropCaches();
    const rr = fio(m.dir, `--filename=seq.dat --rw=randread --bs=4k --size=${SIZE_MIB}m --time_based --runtime=${SECONDS} --randseed=1`);
    r.iops = rr.jobs[0].read.iops;

    log(`   tar x of ${files} files`);
    const dest = join(m.dir, 'tree');
    t0 = performance.now();
    sh(`mkdir '${dest}' && tar xf '${tarball}' -C '${dest}'`);
    m.sync();
    await m.settle({ files: files + 1 }); // + seq.dat
    r.filesPerSec = files / ((performance.now() - t0) / 1000);
  } catch (err) {
    r.error = (err as Error).message.split('\n')[0].slice(0, 120);
    log(`   failed: ${(err as Error).message}`);
  } finally {
    await m.stop().catch((err: unknown) => log(`   stopping: ${(err as Error).message}`));
  }
  return { m, r };
}

async function main(): Promise<void> {
  const tarball = join(work, 'tree.tar');
  sh(`tar cf '${tarball}' ${TREES.map((d) => `-C '${resolve(d, '..')}' '${d.split('/').pop()}'`).join(' ')}`);
  const files = Number(sh(`tar tvf '${tarball}' | grep -c '^-'`).trim());
  const tarMiB = Number(sh(`du -m '${tarball}' | cut -f1`).trim());
  const results: Array<{ m: Mounted; r: Result }> = [];
  for (const t of ONLY) results.push(await measure(t, tarball, files));

  const fioV = sh('fio --version').trim();
  const rcloneV = sh('rclone version | head -1').trim();
  const kernel = sh('uname -r').trim();
  console.log(`FUSE benchmark: ${machine()}, Linux ${kernel}, ${fsType(work)}, Node ${process.version}, ${fioV}, ${rcloneV}, libfuse ${sh('pkg-config --modversion fuse3').trim()}`);
  console.log(`fio psync, 1 job: sequential ${SIZE_MIB} MiB in 1 MiB blocks (write ends with fsync), 4 KiB random reads for ${SECONDS} s over that file;` +
    ` tar x of ${files} files (${tarMiB} MiB: ${TREES.map((d) => d.replace(`${REPO_ROOT}/`, '')).join(', ')}) then syncfs.` +
    ` Page cache dropped before each read: ${args['no-drop-caches'] ? 'no' : 'yes'}.`);
  const columns: Column[] = [
    { title: 'target' },
    { title: 'seq write MB/s', align: 'right' },
    { title: 'seq read MB/s', align: 'right' },
    { title: '4k rand read IOPS', align: 'right' },
    { title: 'tar x files/s', align: 'right' },
    { title: 'notes' },
  ];
  const rows: Row[] = results.map(({ m, r }) => {
    const app = r.writeAppMBs !== undefined && r.writeMBs !== undefined && r.writeAppMBs > r.writeMBs * 1.2 ? ` (fio itself: ${r.writeAppMBs.toFixed(0)} MB/s)` : '';
    return [m.label, r.writeMBs, r.readMBs, r.iops, r.filesPerSec, r.error ? `FAILED: ${r.error}` : m.note + app];
  });
  console.log(formatTable(columns, rows));
}

function cleanup(): void {
  for (const dir of [...mounts]) unmount(dir);
  for (const c of children) c.kill('SIGKILL');
  if (!args.keep) rmSync(work, { recursive: true, force: true });
  else log(`kept ${work}`);
}

process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
try {
  await main();
} finally {
  cleanup();
}
if (!existsSync(work)) log('scratch removed');

// Real S3 command-line clients (aws-cli v2, rclone) against a real `stitch serve` process.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import {
  ACCESS_KEY_ID, MiB, REGION, SECRET_ACCESS_KEY, multipartEtag, randomData, s3client, startS3Server, stopChecked, type S3ServerProcess,
} from '../helpers/s3-server.ts';

const AWS = '/usr/bin/aws';
let server: S3ServerProcess;
let s3: S3Client;
let work: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  server = await startS3Server();
  s3 = s3client(server.endpoint);
  work = mkdtempSync(join(tmpdir(), 'stitch-s3clients-'));
  env = { ...process.env };
  // rclone (and the aws-cli over plain http) break with a CA bundle they cannot use.
  delete env.AWS_CA_BUNDLE;
  for (const k of Object.keys(env)) if (k.startsWith('AWS_') || k.startsWith('RCLONE_')) delete env[k];
  Object.assign(env, {
    AWS_ACCESS_KEY_ID: ACCESS_KEY_ID,
    AWS_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION: REGION,
    AWS_CONFIG_FILE: join(work, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: join(work, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_PAGER: '',
    RCLONE_CONFIG: join(work, 'no-rclone.conf'),
    RCLONE_CONFIG_ST_TYPE: 's3',
    RCLONE_CONFIG_ST_PROVIDER: 'Other',
    RCLONE_CONFIG_ST_ENDPOINT: server.endpoint,
    RCLONE_CONFIG_ST_ACCESS_KEY_ID: ACCESS_KEY_ID,
    RCLONE_CONFIG_ST_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY,
    RCLONE_CONFIG_ST_REGION: REGION,
    RCLONE_CONFIG_ST_FORCE_PATH_STYLE: 'true',
  });
});

afterAll(async () => {
  s3?.destroy();
  if (work) rmSync(work, { recursive: true, force: true });
  await stopChecked(server);
});

interface Run { code: number; stdout: string; stderr: string }

function run(cmd: string, args: string[], timeoutMs = 90_000): Promise<Run> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    execFile(cmd, args, { env, maxBuffer: 64 * MiB, timeout: timeoutMs, cwd: work }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      // STITCH_TEST_TIMING=1 shows where the time goes (aws-cli start-up is ~1-2 s a command).
      if (process.env.STITCH_TEST_TIMING) console.error(`${Date.now() - t0} ms: ${cmd} ${args.slice(0, 6).join(' ')}`);
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(cmd: string, args: string[], timeoutMs?: number): Promise<Run> {
  const r = await run(cmd, args, timeoutMs);
  expect(r.code, `${cmd} ${args.join(' ')}\n${r.stderr}\n${r.stdout}`).toBe(0);
  return r;
}

const aws = (...args: string[]) => ok(AWS, ['--endpoint-url', server.endpoint, ...args]);
const awsJson = async <T>(...args: string[]) => JSON.parse((await aws(...args, '--output', 'json')).stdout || '{}') as T;

function fileSha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
  });
}

// A tree of small files in nested directories, with a few awkward names.
function makeTree(root: string, files: number): string[] {
  const rel: string[] = [];
  for (let i = 0; i < files; i++) {
    const dir = join(`d${i % 5}`, `e${i % 7}`, i % 3 === 0 ? `f${i % 4}` : '');
    const name = i % 50 === 7 ? `file with space ${i}.txt` : i % 50 === 13 ? `ünï+${i}.dat` : `file-${i}.bin`;
    mkdirSync(join(root, dir), { recursive: true });
    const path = join(dir, name);
    writeFileSync(join(root, path), i % 10 === 0 ? Buffer.alloc(0) : randomData(100 + ((i * 977) % 20_000)));
    rel.push(path);
  }
  return rel;
}

describe('aws-cli v2', () => {
  it('cp of a 100 MiB file up (multipart) and down, byte-identical', async () => {
    await aws('s3', 'mb', 's3://cli-big');
    const src = join(work, 'big.bin');
    const data = randomData(100 * MiB);
    writeFileSync(src, data);
    const r = await aws('s3', 'cp', src, 's3://cli-big/nested/big.bin', '--only-show-errors');
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('');

    // aws-cli's default: 8 MiB parts.
    const parts: Buffer[] = [];
    for (let off = 0; off < data.length; off += 8 * MiB) parts.push(data.subarray(off, off + 8 * MiB));
    const head = await s3.send(new HeadObjectCommand({ Bucket: 'cli-big', Key: 'nested/big.bin' }));
    expect(head.ContentLength).toBe(data.length);
    expect(head.ETag).toBe(`"${multipartEtag(parts)}"`);
    expect(head.ETag).toMatch(/-13"$/);

    const dst = join(work, 'big.down.bin');
    await aws('s3', 'cp', 's3://cli-big/nested/big.bin', dst, '--only-show-errors');
    expect(await fileSha256(dst)).toBe(createHash('sha256').update(data).digest('hex'));
    await ok('cmp', [src, dst]);

    const ls = await aws('s3', 'ls', 's3://cli-big/nested/');
    expect(ls.stdout).toMatch(new RegExp(`\\s${data.length} big\\.bin\\n`));
    unlinkSync(src);
    unlinkSync(dst);
  });

  it('sync of a directory tree up and back is diff-clean, and --delete propagates removals', async () => {
    await aws('s3', 'mb', 's3://cli-sync');
    const up = join(work, 'tree-up');
    const rel = makeTree(up, 300);
    const r = await aws('s3', 'sync', up, 's3://cli-sync/tree', '--only-show-errors');
    expect(r.stderr).toBe('');

    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: 'cli-sync', Prefix: 'tree/', ContinuationToken: token }));
      keys.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.NextContinuationToken;
    } while (token);
    expect(keys.sort()).toEqual(rel.map((p) => `tree/${p}`).sort());

    const down = join(work, 'tree-down');
    await aws('s3', 'sync', 's3://cli-sync/tree', down, '--only-show-errors');
    await ok('diff', ['-r', up, down]);

    // A second sync has nothing to do.
    const again = await aws('s3', 'sync', up, 's3://cli-sync/tree');
    expect(again.stdout.trim()).toBe('');

    // Change one file, remove one, add one; sync --delete; back down with --delete.
    writeFileSync(join(up, rel[1]), 'changed content, another size');
    rmSync(join(up, rel[2]));
    writeFileSync(join(up, 'added.txt'), 'new file');
    const delta = await aws('s3', 'sync', up, 's3://cli-sync/tree', '--delete');
    expect(delta.stdout).toContain('delete: s3://cli-sync/tree/');
    expect(delta.stdout).toContain('upload: ');
    await aws('s3', 'sync', 's3://cli-sync/tree', down, '--delete', '--only-show-errors');
    await ok('diff', ['-r', up, down]);
  });

  it('s3api versioning: put/get-bucket-versioning, list-object-versions, delete-object --version-id', async () => {
    await aws('s3api', 'create-bucket', '--bucket', 'cli-versions');
    await aws('s3api', 'put-bucket-versioning', '--bucket', 'cli-versions', '--versioning-configuration', 'Status=Enabled');
    const v = await awsJson<{ Status?: string }>('s3api', 'get-bucket-versioning', '--bucket', 'cli-versions');
    expect(v.Status).toBe('Enabled');
    const suspend = await run(AWS, ['--endpoint-url', server.endpoint, 's3api', 'put-bucket-versioning', '--bucket', 'cli-versions', '--versioning-configuration', 'Status=Suspended']);
    expect(suspend.code).not.toBe(0);
    expect(suspend.stderr).toContain('NotImplemented');

    const f = join(work, 'v.txt');
    const ids: string[] = [];
    for (const text of ['first', 'second', 'third']) {
      writeFileSync(f, text);
      const put = await awsJson<{ VersionId: string; ETag: string }>('s3api', 'put-object', '--bucket', 'cli-versions', '--key', 'doc.txt', '--body', f);
      expect(put.ETag).toBe(`"${createHash('md5').update(text).digest('hex')}"`);
      ids.push(put.VersionId);
    }
    const list = await awsJson<{ Versions: Array<{ Key: string; VersionId: string; IsLatest: boolean; Size: number }> }>(
      's3api', 'list-object-versions', '--bucket', 'cli-versions');
    expect(list.Versions.map((x) => [x.VersionId, x.IsLatest, x.Size])).toEqual([[ids[2], true, 5], [ids[1], false, 6], [ids[0], false, 5]]);

    // Paged by the CLI itself (max-items / page-size).
    const paged = await awsJson<{ Versions: Array<{ VersionId: string }> }>('s3api', 'list-object-versions', '--bucket', 'cli-versions', '--page-size', '1');
    expect(paged.Versions.map((x) => x.VersionId)).toEqual([ids[2], ids[1], ids[0]]);

    const out = join(work, 'v.out');
    await aws('s3api', 'get-object', '--bucket', 'cli-versions', '--key', 'doc.txt', '--version-id', ids[0], out);
    expect(readFileSync(out, 'utf8')).toBe('first');

    const del = await awsJson<{ VersionId: string }>('s3api', 'delete-object', '--bucket', 'cli-versions', '--key', 'doc.txt', '--version-id', ids[2]);
    expect(del.VersionId).toBe(ids[2]);
    const current = await s3.send(new GetObjectCommand({ Bucket: 'cli-versions', Key: 'doc.txt' }));
    expect(await current.Body!.transformToString()).toBe('second');
    expect(current.VersionId).toBe(ids[1]);

    const marker = await awsJson<{ DeleteMarker: boolean; VersionId: string }>('s3api', 'delete-object', '--bucket', 'cli-versions', '--key', 'doc.txt');
    expect(marker.DeleteMarker).toBe(true);
    const after = await awsJson<{ Versions: Array<{ VersionId: string }>; DeleteMarkers: Array<{ VersionId: string; IsLatest: boolean }> }>(
      's3api', 'list-object-versions', '--bucket', 'cli-versions');
    expect(after.Versions.map((x) => x.VersionId)).toEqual([ids[1], ids[0]]);
    expect(after.DeleteMarkers).toEqual([expect.objectContaining({ VersionId: marker.VersionId, IsLatest: true })]);
    const gone = await s3.send(new HeadObjectCommand({ Bucket: 'cli-versions', Key: 'doc.txt' })).then(() => 200, (e) => e.$metadata?.httpStatusCode);
    expect(gone).toBe(404);
  });
});

describe('rclone', () => {
  it('sync up, check, sync down, check: zero differences', async () => {
    const up = join(work, 'rc-up');
    makeTree(up, 200);
    writeFileSync(join(up, 'bigger.bin'), randomData(12 * MiB));
    await ok('rclone', ['mkdir', 'st:rclone-bkt']);
    await ok('rclone', ['sync', up, 'st:rclone-bkt/data', '--transfers', '8', '--checkers', '8']);

    const check = await run('rclone', ['check', up, 'st:rclone-bkt/data']);
    expect(check.code, check.stderr).toBe(0);
    expect(check.stderr).toMatch(/\b0 differences found/);
    expect(check.stderr).toMatch(/\b201 matching files/);

    const down = join(work, 'rc-down');
    await ok('rclone', ['sync', 'st:rclone-bkt/data', down, '--transfers', '8']);
    await ok('diff', ['-r', up, down]);
    const check2 = await run('rclone', ['check', 'st:rclone-bkt/data', down, '--download']);
    expect(check2.code, check2.stderr).toBe(0);
    expect(check2.stderr).toMatch(/\b0 differences found/);

    // A change on one side is seen as a difference, then synced away.
    writeFileSync(join(up, 'bigger.bin'), randomData(3 * MiB));
    const diff = await run('rclone', ['check', up, 'st:rclone-bkt/data']);
    expect(diff.code).not.toBe(0);
    expect(diff.stderr).toMatch(/\b1 differences found/);
    await ok('rclone', ['sync', up, 'st:rclone-bkt/data']);
    const check3 = await run('rclone', ['check', up, 'st:rclone-bkt/data']);
    expect(check3.code, check3.stderr).toBe(0);
    expect(check3.stderr).toMatch(/\b0 differences found/);

    const lsf = await ok('rclone', ['lsf', '-R', '--files-only', 'st:rclone-bkt/data']);
    expect(lsf.stdout.trim().split('\n').length).toBe(201);
  });
});

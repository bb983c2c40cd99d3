#!/usr/bin/env node
// Idempotent set-up behind `npm start` and `npm test`: quick when everything is present.
// It runs first under whatever `node` the machine has (Node 20 on a fresh image), so it must stay
// plain JavaScript with no dependencies: it is what installs the pinned Node 24 runtime.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, readdirSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const forTests = process.env.npm_lifecycle_event === 'pretest' || process.argv.includes('--test');

// Debian packages: what serving needs (FUSE) and what the test suite drives (real clients, fio, git).
const SERVE_PACKAGES = ['fuse3', 'libfuse3-dev'];
const TEST_PACKAGES = ['awscli', 'rclone', 'fio', 'git', 'rsync', 'chromium'];

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
  if (r.status !== 0) {
    console.error(`setup: '${cmd} ${args.join(' ')}' failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function log(msg) {
  console.error(`setup: ${msg}`);
}

function npmDependencies() {
  const lock = join(root, 'package-lock.json');
  const stamp = join(root, 'node_modules', '.stitch-setup');
  const want = createHash('sha256').update(readFileSync(lock)).digest('hex');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) return;
  log('installing npm dependencies');
  run('npm', ['ci', '--no-audit', '--no-fund']);
  writeFileSync(stamp, want);
}

function missingDebianPackages(names) {
  return names.filter((name) => {
    const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return r.status !== 0 || !r.stdout.includes('install ok installed');
  });
}

function debianPackages() {
  const missing = missingDebianPackages(forTests ? [...SERVE_PACKAGES, ...TEST_PACKAGES] : SERVE_PACKAGES);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    log(`missing Debian packages ${missing.join(' ')}; run as root or install them: apt-get install ${missing.join(' ')}`);
    process.exit(1);
  }
  log(`installing Debian packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], { env });
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { env });
}

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'build') continue;
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

// Every native/<name>/binding.gyp is an N-API addon; rebuilt only when its sources are newer than it.
function nativeAddons() {
  const nativeDir = join(root, 'native');
  if (!existsSync(nativeDir)) return;
  const nodeGyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
  for (const name of readdirSync(nativeDir)) {
    const dir = join(nativeDir, name);
    if (!existsSync(join(dir, 'binding.gyp'))) continue;
    const built = join(dir, 'build', 'Release', `${name}.node`);
    if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(dir)) continue;
    log(`building native/${name}`);
    // N-API is ABI-stable, so the image's Node headers serve the pinned runtime too; no header download.
    const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
    run(process.execPath, [nodeGyp, 'rebuild', '--silent', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { cwd: dir });
  }
}

npmDependencies();
debianPackages();
nativeAddons();

// The console's JSON API against two real `stitch serve` processes: `west` holds the data,
// `east` is linked to it metadata-only and is the one browsed. Every endpoint is called signed
// out (refused), signed in, and with hostile input; browsing must move zero chunk bytes (the
// gateway's own counter says so), download and pin are what move them.
import { createHash } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { World } from '../helpers/world-cluster.ts';
import { waitFor } from '../helpers/world-cluster.ts';
import { ConsoleClient, consoleUrl, consoleWorld, METRICS_TOKEN, q, rawGet, seed, type Seeded } from '../helpers/web-world.ts';

const DIR_KEYS = 2_345;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

let world: World;
let data: Seeded;
let east: string;
let west: string;
let c: ConsoleClient;

async function fetchedBytes(name: string): Promise<number> {
  return (await world.status(name)).counters.chunkBytesFetched;
}

beforeAll(async () => {
  world = await consoleWorld({ names: ['west', 'east'], links: [{ from: 'west', to: 'east' }], noStart: ['west'] });
  data = await seed(world.dataDir('west'), 'west', DIR_KEYS);
  await world.start('west');
  east = await consoleUrl(world, 'east');
  west = await consoleUrl(world, 'west');
  // east learns the namespace by catch-up: metadata only.
  await waitFor(async () => {
    const st = await world.status('east');
    return st.stats.objects >= DIR_KEYS + 4;
  }, 60_000, 'east to learn every version of west');
  c = await ConsoleClient.signIn(east);
}, 180_000);

afterAll(async () => {
  await world?.stop();
});

describe('signed out', () => {
  const guarded = [
    '/api/session', '/api/segments', '/api/buckets', `/api/objects?${q({ bucket: 'photos' })}`,
    `/api/object?${q({ bucket: 'photos', key: 'top.txt' })}`, `/api/version?${q({ bucket: 'photos', key: 'top.txt' })}`,
    `/api/download?${q({ bucket: 'photos', key: 'top.txt' })}`, '/metrics',
  ];

  it('refuses every API endpoint and /metrics with 401', async () => {
    const anon = new ConsoleClient(east);
    for (const path of guarded) {
      const r = await anon.get(path);
      expect(r.status, path).toBe(401);
      expect(r.json?.error, path).toBe('Unauthorized');
    }
    for (const path of ['/api/pin', '/api/unpin', '/api/logout']) {
      expect((await anon.post(path, { bucket: 'photos', key: 'top.txt' })).status, path).toBe(401);
    }
    expect((await anon.get('/metrics')).headers.get('www-authenticate')).toMatch(/^Bearer/);
  });

  it('refuses a forged or stale cookie', async () => {
    expect((await new ConsoleClient(east, 'stitch_console=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA').get('/api/session')).status).toBe(401);
    expect((await new ConsoleClient(east, 'stitch_console=../../etc/passwd').get('/api/session')).status).toBe(401);
    // A session of one segment means nothing to another.
    expect((await new ConsoleClient(west, c.cookie).get('/api/session')).status).toBe(401);
  });

  it('serves the app itself (it holds no data) with a strict content security policy', async () => {
    const anon = new ConsoleClient(east);
    const index = await anon.get('/');
    expect(index.status).toBe(200);
    expect(index.headers.get('content-type')).toMatch(/^text\/html/);
    expect(index.text).toContain('/app/main.ts');
    expect(index.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(index.headers.get('x-frame-options')).toBe('DENY');
    for (const asset of ['/app/main.ts', '/app/api.ts', '/app/dom.ts', '/app/viz.ts', '/app/sha256.ts']) {
      const r = await anon.get(asset);
      expect(r.status, asset).toBe(200);
      expect(r.headers.get('content-type'), asset).toMatch(/^text\/javascript/);
      // Types are stripped: what the browser gets is JavaScript.
      expect(r.text, asset).not.toMatch(/\binterface \w+ \{/);
    }
    expect((await anon.get('/app/style.css')).headers.get('content-type')).toMatch(/^text\/css/);
    const etag = index.headers.get('etag')!;
    expect((await anon.get('/', { 'if-none-match': etag })).status).toBe(304);
  });
});

describe('sign-in', () => {
  it('sets an HttpOnly, SameSite=Strict session cookie and knows who signed in', async () => {
    const anon = new ConsoleClient(east);
    const r = await anon.login('STITCHWORLDKEY000001', 'stitch-world-secret-0123456789abcdefghijk');
    expect(r.status).toBe(200);
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(/^stitch_console=[A-Za-z0-9_-]{43};/);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    const who = await anon.get('/api/session');
    expect(who.json).toEqual({ accessKeyId: 'STITCHWORLDKEY000001', segment: 'east' });
    // Sign-out ends the session server-side: the old cookie is refused afterwards.
    const old = anon.cookie;
    expect((await anon.post('/api/logout', {})).status).toBe(200);
    expect((await new ConsoleClient(east, old).get('/api/session')).status).toBe(401);
  });

  it('refuses a wrong secret, an unknown key, a replayed or invented nonce', async () => {
    const anon = new ConsoleClient(east);
    expect((await anon.login('STITCHWORLDKEY000001', 'not-the-secret')).status).toBe(401);
    expect((await anon.login('NOSUCHKEY', 'whatever')).status).toBe(401);
    // Replay: a proof that worked once does not work twice.
    const ch = await anon.get('/api/login/challenge');
    const proof = createHash('sha256').update('x').digest('hex');
    const body = { accessKeyId: 'STITCHWORLDKEY000001', nonce: ch.json.nonce, proof };
    expect((await anon.post('/api/login', body)).status).toBe(401);
    const { createHmac } = await import('node:crypto');
    const good = createHmac('sha256', 'stitch-world-secret-0123456789abcdefghijk').update(`stitch-console-v1\nSTITCHWORLDKEY000001\n${ch.json.nonce}`).digest('hex');
    // The nonce was consumed by the failed attempt.
    expect((await anon.post('/api/login', { ...body, proof: good })).status).toBe(401);
    expect((await anon.post('/api/login', { ...body, nonce: 'a'.repeat(48), proof: good })).status).toBe(401);
  });

  it('answers malformed sign-ins with 400/403/413/415, never 500', async () => {
    const anon = new ConsoleClient(east);
    expect((await anon.post('/api/login', '{"accessKeyId": ')).status).toBe(400);
    expect((await anon.post('/api/login', '[]')).status).toBe(400);
    expect((await anon.post('/api/login', 'null')).status).toBe(400);
    expect((await anon.post('/api/login', { accessKeyId: 1, nonce: {}, proof: [] })).status).toBe(400);
    expect((await anon.post('/api/login', { accessKeyId: 'x'.repeat(10_000), nonce: 'a'.repeat(48), proof: 'b'.repeat(64) })).status).toBe(400);
    expect((await anon.post('/api/login', 'x'.repeat(100_000))).status).toBe(413);
    expect((await anon.post('/api/login', '{}', { 'content-type': 'text/plain' })).status).toBe(415);
    // Without the console's header a cross-site form could post: refused.
    const r = await anon.request('POST', '/api/login', { body: '{}', headers: { 'content-type': 'application/json' } });
    expect(r.status).toBe(403);
    expect((await anon.get('/api/login')).status).toBe(405);
  });
});

describe('browsing metadata only', () => {
  it('shows the segments, their link and what is not here yet', async () => {
    const r = await c.get('/api/segments');
    expect(r.status).toBe(200);
    const v = r.json;
    expect(v.self.name).toBe('east');
    expect(v.self.console).toBe(east);
    const w = v.peers.find((p: { name: string }) => p.name === 'west');
    expect(w).toMatchObject({ linked: true, connected: true, links: [{ bucket: '*', mode: 'metadata-only', direction: 'both' }] });
    expect(w.knownSeq).toBeGreaterThan(DIR_KEYS);
    // Every west version with data is metadata-only here (tiny ones are inline: nothing missing).
    expect(w.notLocal.versions).toBeGreaterThanOrEqual(2);
    expect(w.notLocal.bytes).toBeGreaterThanOrEqual(data.bigV1.length + data.bigV2.length);
    expect(Array.isArray(v.throughput)).toBe(true);
  });

  it('lists buckets with their links', async () => {
    const r = await c.get('/api/buckets');
    expect(r.json.buckets).toEqual([expect.objectContaining({ name: 'photos', links: [{ peer: 'west', mode: 'metadata-only', direction: 'both' }] })]);
  });

  it('lists a directory folded at /, with origin and residency', async () => {
    const r = await c.get(`/api/objects?${q({ bucket: 'photos' })}`);
    expect(r.status).toBe(200);
    expect(r.json.prefixes).toEqual(['a/', 'dir/', 'weird/']);
    // gone.txt is deleted (a delete marker on top): not listed.
    expect(r.json.items.map((i: { key: string }) => i.key)).toEqual(['top.txt']);
    expect(r.json.items[0]).toMatchObject({ origin: 'west', size: 4, residency: { state: 'local', manifest: 'inline' } });
    const a = await c.get(`/api/objects?${q({ bucket: 'photos', prefix: 'a/' })}`);
    const big = a.json.items.find((i: { key: string }) => i.key === 'a/big.bin');
    expect(big).toMatchObject({ origin: 'west', size: data.bigV2.length, etag: md5(data.bigV2), residency: { state: 'metadata-only', localBytes: 0, exact: true } });
    expect(big.residency.chunks).toBeGreaterThan(1);
    expect(big.hlcTime).toBe(Math.floor(big.hlc / 1000));
  });

  it('pages through a directory of thousands of keys server-side, never more than 1000 at a time', async () => {
    const keys: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await c.get(`/api/objects?${q({ bucket: 'photos', prefix: 'dir/', limit: 1_000_000_000, after })}`);
      expect(r.status).toBe(200);
      expect(r.json.limit).toBe(1000);
      expect(r.json.items.length).toBeLessThanOrEqual(1000);
      keys.push(...r.json.items.map((i: { key: string }) => i.key));
      pages++;
      if (!r.json.truncated) break;
      after = r.json.next;
    }
    expect(pages).toBe(Math.ceil(DIR_KEYS / 1000));
    expect(keys).toEqual(Array.from({ length: DIR_KEYS }, (_, i) => `dir/f${String(i).padStart(6, '0')}`));
    // Search by prefix, small pages.
    const s = await c.get(`/api/objects?${q({ bucket: 'photos', prefix: 'dir/f0012', limit: 7 })}`);
    expect(s.json.items.map((i: { key: string }) => i.key)).toEqual(Array.from({ length: 7 }, (_, i) => `dir/f00${1200 + i}`));
    expect(s.json.truncated).toBe(true);
    // Recursive (no folding) from the bucket's root.
    const flat = await c.get(`/api/objects?${q({ bucket: 'photos', flat: 1, limit: 3 })}`);
    expect(flat.json.prefixes).toEqual([]);
    expect(flat.json.items.map((i: { key: string }) => i.key)).toEqual(['a/big.bin', 'a/small.txt', 'dir/f000000']);
  });

  it('shows the versions of an object, newest first, with origin, HLC, size, ETag and residency', async () => {
    const r = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/big.bin' })}`);
    expect(r.status).toBe(200);
    const [v2, v1] = r.json.versions;
    expect(r.json.versions).toHaveLength(2);
    expect(r.json.head.versionId).toBe(v2.versionId);
    expect(v2).toMatchObject({ origin: 'west', isLatest: true, etag: md5(data.bigV2), size: data.bigV2.length, residency: { state: 'metadata-only' } });
    expect(v1).toMatchObject({ origin: 'west', isLatest: false, etag: md5(data.bigV1), size: data.bigV1.length, residency: { state: 'metadata-only' } });
    expect(v2.hlc).toBeGreaterThan(v1.hlc);
    // Paging versions one at a time.
    const p1 = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/big.bin', limit: 1 })}`);
    expect(p1.json.versions.map((v: { versionId: string }) => v.versionId)).toEqual([v2.versionId]);
    expect(p1.json.truncated).toBe(true);
    const p2 = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/big.bin', limit: 1, after: p1.json.next })}`);
    expect(p2.json.versions.map((v: { versionId: string }) => v.versionId)).toEqual([v1.versionId]);
    // A deleted object: its delete marker is the head and listed as a version.
    const gone = await c.get(`/api/object?${q({ bucket: 'photos', key: 'gone.txt' })}`);
    expect(gone.json.head.deleted).toBe(true);
    expect(gone.json.versions[0]).toMatchObject({ deleted: true, residency: { state: 'none' } });
    // Its current version is the delete marker: no data, nothing to pin.
    const marker = await c.get(`/api/version?${q({ bucket: 'photos', key: 'gone.txt' })}`);
    expect(marker.json.version).toMatchObject({ deleted: true, residency: { state: 'none' } });
    // The name index is prefix-ordered: a longer key is not a version of a shorter one.
    const small = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/small.txt' })}`);
    expect(small.json.versions).toHaveLength(1);
  });

  it('shows one version with a chunk map', async () => {
    const r = await c.get(`/api/version?${q({ bucket: 'photos', key: 'a/big.bin' })}`);
    expect(r.status).toBe(200);
    expect(r.json.version).toMatchObject({ origin: 'west', manifest: 'inline', contentType: 'application/octet-stream', residency: { state: 'metadata-only' } });
    expect(r.json.map).toHaveLength(256);
    expect(r.json.map.every((cell: { local: number }) => cell.local === 0)).toBe(true);
    expect(r.json.chunks.length).toBe(r.json.version.residency.chunks);
    expect(r.json.chunks.every((ch: { local: boolean }) => ch.local === false)).toBe(true);
    expect(r.json.chunks.reduce((n: number, ch: { length: number }) => n + ch.length, 0)).toBe(data.bigV2.length);
  });

  it('moved zero chunk bytes for all of the above', async () => {
    expect(await fetchedBytes('east')).toBe(0);
    const m = await new ConsoleClient(east).get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(m.text).toMatch(/^stitch_isgw_chunk_bytes_fetched_total 0$/m);
  });
});

describe('actions that move data', () => {
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    const r = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/big.bin' })}`);
    [v2, v1] = r.json.versions.map((v: { versionId: string }) => v.versionId);
  });

  it('downloads a version as an attachment, fetching its chunks once', async () => {
    const before = await fetchedBytes('east');
    const r = await fetch(`${east}/api/download?${q({ bucket: 'photos', key: 'a/big.bin', versionId: v1 })}`, { headers: { cookie: c.cookie! } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(r.headers.get('content-disposition')).toMatch(/^attachment; filename="big.bin"/);
    expect(r.headers.get('x-stitch-version-id')).toBe(v1);
    const body = Buffer.from(await r.arrayBuffer());
    expect(md5(body)).toBe(md5(data.bigV1));
    expect(await fetchedBytes('east')).toBe(before + data.bigV1.length);
    const after = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/big.bin' })}`);
    const [r2, r1] = after.json.versions;
    expect(r1.residency.state).toBe('local');
    // v2 shares its first 2 MiB with v1 (content-defined chunks): partly here now.
    expect(r2.residency.state).toBe('partial');
    const d = await c.get(`/api/version?${q({ bucket: 'photos', key: 'a/big.bin', versionId: v2 })}`);
    expect(d.json.map[0].local).toBe(1);
    expect(d.json.map[255].local).toBe(0);
  });

  it('unpins: drops the local copy, keeps the metadata', async () => {
    const r = await c.post('/api/unpin', { bucket: 'photos', key: 'a/big.bin', versionId: v1 });
    expect(r.status).toBe(200);
    expect(r.json.freedBytes).toBeGreaterThan(0);
    expect(r.json.residency.state).toBe('metadata-only');
    const list = await c.get(`/api/object?${q({ bucket: 'photos', key: 'a/big.bin' })}`);
    expect(list.json.versions.map((v: { residency: { state: string } }) => v.residency.state)).toEqual(['metadata-only', 'metadata-only']);
  });

  it('pins: fetches every missing chunk now', async () => {
    const before = await fetchedBytes('east');
    const r = await c.post('/api/pin', { bucket: 'photos', key: 'a/big.bin' });
    expect(r.status).toBe(200);
    expect(r.json.versionId).toBe(v2);
    expect(r.json.fetchedChunks).toBeGreaterThan(1);
    expect(r.json.residency).toMatchObject({ state: 'local', localBytes: data.bigV2.length });
    expect(await fetchedBytes('east')).toBe(before + data.bigV2.length);
    // Reading it over S3 now needs no WAN.
    const s3 = world.s3('east');
    const got = await s3.send(new GetObjectCommand({ Bucket: 'photos', Key: 'a/big.bin' }));
    expect(md5(await got.Body!.transformToByteArray())).toBe(md5(data.bigV2));
    expect(await fetchedBytes('east')).toBe(before + data.bigV2.length);
  });
});

describe('hostile input', () => {
  it('serves no file by path tricks', async () => {
    for (const path of [
      '/app/../server.ts', '/app/%2e%2e/server.ts', '/app/..%2fserver.ts', '/app/..%5cserver.ts', '/app/server.ts',
      '/app/%2e%2e%2f%2e%2e%2fpackage.json', '/..%2f..%2fpackage.json', '/app/', '/app', '/app/tsconfig.json', '/index.html',
      '/api/objects/../../../etc/passwd', '//etc/passwd', '/app/main.ts%00.css', '/app/./../../src/web/server.ts',
      '/../../../../etc/passwd', '/app/%252e%252e/server.ts',
    ]) {
      const r = await rawGet(east, path, c.cookie);
      expect([400, 404], path).toContain(r.status);
      expect(r.body, path).not.toContain('ConsoleServer');
      expect(r.body, path).not.toContain('"dependencies"');
      expect(r.body, path).not.toContain('root:');
    }
    // A path that resolves to an endpoint is that endpoint, with its own authorisation.
    expect((await rawGet(east, '/app/%2e%2e/metrics')).status).toBe(401);
  });

  it('refuses bad names, ids and parameters with 400/404 and a JSON error', async () => {
    const cases: Array<[string, number, string?]> = [
      [`/api/objects?${q({ bucket: '../../etc' })}`, 404, 'NoSuchBucket'],
      [`/api/objects?${q({ bucket: 'nosuchbucket' })}`, 404, 'NoSuchBucket'],
      ['/api/objects', 400, 'BadRequest'],
      [`/api/objects?${q({ bucket: 'photos', limit: 0 })}`, 400, 'BadRequest'],
      [`/api/objects?${q({ bucket: 'photos', limit: 'ten' })}`, 400, 'BadRequest'],
      [`/api/objects?${q({ bucket: 'photos', limit: '1e3' })}`, 400, 'BadRequest'],
      [`/api/objects?${q({ bucket: 'photos', limit: '99999999999999999999' })}`, 200],
      [`/api/objects?bucket=photos&bucket=other`, 400, 'BadRequest'],
      [`/api/objects?${q({ bucket: 'photos', prefix: 'a\0b' })}`, 400, 'BadRequest'],
      [`/api/objects?${q({ bucket: 'photos', prefix: 'x'.repeat(5000) })}`, 400, 'BadRequest'],
      ['/api/objects?bucket=photos&prefix=%E0%A4%A', 200],
      [`/api/object?${q({ bucket: 'photos', key: '../../etc/passwd' })}`, 400, 'InvalidKey'],
      [`/api/object?${q({ bucket: 'photos', key: 'a/../top.txt' })}`, 400, 'InvalidKey'],
      [`/api/object?${q({ bucket: 'photos', key: 'nope' })}`, 404, 'NoSuchKey'],
      [`/api/object?${q({ bucket: 'photos' })}`, 400, 'BadRequest'],
      [`/api/version?${q({ bucket: 'photos', key: 'top.txt', versionId: 'not-a-cid' })}`, 400, 'InvalidVersionId'],
      [`/api/version?${q({ bucket: 'photos', key: 'never-was.txt' })}`, 404, 'NoSuchKey'],
      [`/api/download?${q({ bucket: 'photos', key: '../x' })}`, 400, 'InvalidKey'],
      ['/api/nothing-here', 404, 'NotFound'],
    ];
    for (const [path, status, code] of cases) {
      const r = await c.get(path);
      expect(r.status, path).toBe(status);
      if (code) expect(r.json?.error, path).toBe(code);
    }
    // A version id of another key is not a version of this one.
    const top = await c.get(`/api/object?${q({ bucket: 'photos', key: 'top.txt' })}`);
    const other = await c.get(`/api/version?${q({ bucket: 'photos', key: 'a/small.txt', versionId: top.json.versions[0].versionId })}`);
    expect(other.status).toBe(404);
    expect(other.json.error).toBe('NoSuchVersion');
  });

  it('refuses bad actions', async () => {
    expect((await c.post('/api/pin', '{"bucket":')).status).toBe(400);
    expect((await c.post('/api/pin', { bucket: 'photos' })).status).toBe(400);
    expect((await c.post('/api/pin', { bucket: ['photos'], key: 'top.txt' })).status).toBe(400);
    expect((await c.post('/api/pin', { bucket: 'photos', key: '../../x' })).json.error).toBe('InvalidKey');
    expect((await c.post('/api/pin', { bucket: 'photos', key: 'gone.txt' })).status).toBe(404);
    const gone = await c.get(`/api/object?${q({ bucket: 'photos', key: 'gone.txt' })}`);
    const marker = await c.post('/api/pin', { bucket: 'photos', key: 'gone.txt', versionId: gone.json.versions[0].versionId });
    expect(marker.status).toBe(400);
    expect((await c.post('/api/unpin', { bucket: 'photos', key: 'top.txt' }, { 'x-stitch-console': '0' })).status).toBe(403);
    expect((await c.get('/api/pin')).status).toBe(405);
    expect((await c.request('DELETE', '/api/objects')).status).toBe(405);
  });

  it('returns names with markup as plain JSON strings', async () => {
    const r = await c.get(`/api/objects?${q({ bucket: 'photos', prefix: 'weird/' })}`);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.json.items[0].key).toBe('weird/<img src=x onerror="window.__xss=1">.txt');
  });
});

describe('metrics and logs', () => {
  it('serves Prometheus text to a session or the bearer token, not to a wrong token', async () => {
    // One S3 request on west, to see it counted and logged there.
    const head = await world.s3('west').send(new HeadObjectCommand({ Bucket: 'photos', Key: 'top.txt' }));
    const requestId = head.$metadata.requestId!;
    const westClient = await ConsoleClient.signIn(west);
    const m = await westClient.get('/metrics');
    expect(m.status).toBe(200);
    expect(m.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(m.text).toMatch(/^stitch_s3_requests_total\{op="HeadObject",status="200"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^stitch_s3_request_duration_seconds_bucket\{op="HeadObject",le="\+Inf"\} [1-9]\d*$/m);
    expect(m.text).toMatch(/^stitch_isgw_peer_up\{peer="east"\} 1$/m);
    expect(m.text).toMatch(/^stitch_isgw_chunk_bytes_served_total [1-9]\d*$/m);
    expect(m.text).toMatch(/^stitch_replication_backlog_versions 0$/m);
    expect(m.text).toMatch(/^# TYPE stitch_fuse_operations_total counter$/m);
    const e = await new ConsoleClient(east).get('/metrics', { authorization: `Bearer ${METRICS_TOKEN}` });
    expect(e.status).toBe(200);
    expect(e.text).toMatch(/^stitch_chunk_fetches_total\{result="ok"\} [1-9]\d*$/m);
    expect(e.text).toMatch(/^stitch_chunk_reads_total\{source="remote"\} [1-9]\d*$/m);
    expect(e.text).toMatch(/^stitch_chunk_reads_total\{source="local"\} [1-9]\d*$/m);
    expect(e.text).toMatch(/^stitch_chunk_fetch_duration_seconds_count\{result="ok"\} [1-9]\d*$/m);
    expect(e.text).toMatch(/^stitch_isgw_metadata_lag_seconds\{origin="west"\} [\d.e+-]+$/m);
    expect((await new ConsoleClient(east).get('/metrics', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await new ConsoleClient(east).get('/metrics', { authorization: `Basic ${METRICS_TOKEN}` })).status).toBe(401);
    // The S3 request's log line carries the id the client got back.
    const line = await waitFor(() => world.stderr('west').split('\n').find((l) => l.includes(requestId)), 5_000, 'the request log line');
    expect(JSON.parse(line)).toMatchObject({ level: 'info', reqId: requestId, op: 'HeadObject', status: 200, component: 's3', segment: 'west' });
  });
});

describe('stitch ls beside the running segment', () => {
  type Row = { key: string; origin: string; versionId: string; residency: { state: string } };
  const ls = async (args: string[]) => {
    const r = await world.cli('east', ['--json', 'ls', ...args]);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Row[];
  };

  it('shows origin and residency columns', async () => {
    const rows = await ls(['photos/a/']);
    expect(rows.map((r) => [r.key, r.origin, r.residency.state])).toEqual([['a/big.bin', 'west', 'local'], ['a/small.txt', 'west', 'local']]);
    const versions = await ls(['photos/a/big', '--versions']);
    expect(versions.map((r) => r.residency.state)).toEqual(['local', 'partial']);
    const human = await world.cli('east', ['ls', 'photos/a/big', '--versions']);
    expect(human.stdout).toMatch(/^\S+ \S+ +3145728 local +west +a\/big\.bin +\(latest\) /m);
    expect(human.stdout).toMatch(/^\S+ \S+ +3145728 partial +west +a\/big\.bin /m);
  });

  it('--segment NAME lists what NAME holds', async () => {
    const west = await ls(['photos', '--segment', 'west']);
    // Every current object, all written by west (implies -r: no folding).
    expect(west).toHaveLength(DIR_KEYS + 4);
    expect(west.every((r) => r.origin === 'west')).toBe(true);
    // This segment holds what is local or partly local here (tiny objects live in the manifest).
    const here = await ls(['photos', '--versions', '--segment', 'east']);
    expect(here.every((r) => ['local', 'partial'].includes(r.residency.state))).toBe(true);
    expect(here.filter((r) => r.key === 'a/big.bin').map((r) => r.residency.state)).toEqual(['local', 'partial']);
    expect(await ls(['photos', '--segment', 'nosuch'])).toEqual([]);
  });
});

// Last: it locks 127.0.0.1 out of sign-in on east for a minute.
describe('sign-in rate limit', () => {
  it('answers 429 after repeated failures, while existing sessions keep working', async () => {
    const anon = new ConsoleClient(east);
    let last = 0;
    for (let i = 0; i < 12; i++) last = (await anon.login('STITCHWORLDKEY000001', `wrong-${i}`)).status;
    expect(last).toBe(429);
    expect((await anon.login('STITCHWORLDKEY000001', 'stitch-world-secret-0123456789abcdefghijk')).status).toBe(429);
    expect((await c.get('/api/session')).status).toBe(200);
  });
});

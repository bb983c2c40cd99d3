// The console in a real browser (Debian's chromium, driven by playwright-core; no browser
// download): sign in on `east`, browse a bucket that lives on `west`, open an object, check its
// versions and residency, pin it. Browsing must move zero chunk bytes; pinning moves exactly the
// object. Screenshots are kept in test-artifacts/ (git-ignored).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, type World } from '../helpers/world-cluster.ts';
import { waitFor } from '../helpers/world-cluster.ts';
import { ACCESS_KEY_ID, consoleUrl, consoleWorld, SECRET_ACCESS_KEY, seed, type Seeded } from '../helpers/web-world.ts';

const CHROMIUM = process.env.STITCH_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const FLAGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];
const DIR_KEYS = 230;

if (!existsSync(CHROMIUM)) console.warn(`web-console: ${CHROMIUM} not found (apt-get install chromium): browser test skipped`);

describe.skipIf(!existsSync(CHROMIUM))('web console in a browser', () => {
  let world: World;
  let data: Seeded;
  let url: string;
  let profile: string;
  let ctx: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  const fetched = async () => (await world.status('east')).counters.chunkBytesFetched;
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    world = await consoleWorld({ names: ['west', 'east'], links: [{ from: 'west', to: 'east' }], noStart: ['west'] });
    data = await seed(world.dataDir('west'), 'west', DIR_KEYS);
    await world.start('west');
    url = await consoleUrl(world, 'east');
    await waitFor(async () => (await world.status('east')).stats.objects >= DIR_KEYS + 4, 60_000, 'east to learn west');
    await waitFor(async () => (await world.status('east')).peers.every((p) => p.connected), 30_000, 'the link to be up');
    profile = mkdtempSync(join(tmpdir(), 'stitch-chromium-'));
    // A persistent context is what takes a --user-data-dir: a fresh profile, nothing shared.
    ctx = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, args: FLAGS, viewport: { width: 1280, height: 900 }, acceptDownloads: true,
    });
    page = ctx.pages()[0] ?? await ctx.newPage();
    page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/401 \(Unauthorized\)/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  }, 180_000);

  afterAll(async () => {
    await ctx?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await world?.stop();
  });

  it('signs in with an access key', async () => {
    await page.goto(url);
    await page.getByTestId('sign-in').waitFor();
    await page.getByTestId('access-key-id').fill(ACCESS_KEY_ID);
    await page.getByTestId('secret').fill('wrong secret');
    await page.getByTestId('sign-in-submit').click();
    await expect.poll(() => page.getByTestId('error').textContent()).toContain('Unauthorized');
    await page.getByTestId('secret').fill(SECRET_ACCESS_KEY);
    await page.getByTestId('sign-in-submit').click();
    await page.getByTestId('segment-map').waitFor();
    expect(await page.getByTestId('segment-name').textContent()).toBe('east');
    // The cookie is not readable by scripts.
    expect(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie)).toBe('');
  });

  it('draws the map of segments and links', async () => {
    await page.getByTestId('node-west').waitFor();
    expect(await page.getByTestId('edge-west').getAttribute('data-state')).toBe('up');
    expect(await page.getByTestId('link-west').getByTestId('link-state').textContent()).toBe('up');
    expect(await page.getByTestId('link-west').getByTestId('not-local').textContent()).toMatch(/^[1-9]\d* versions, /);
    await shot('web-console-segments.png');
  });

  it('browses a bucket that lives on another segment, a page at a time', async () => {
    await page.getByTestId('nav-buckets').click();
    await page.getByTestId('bucket-photos').getByRole('link', { name: 'photos' }).click();
    await page.getByTestId('listing').waitFor();
    expect(await page.getByTestId('dir-row').allTextContents()).toEqual(['📁 a/', '📁 dir/', '📁 weird/']);
    const top = page.locator('[data-testid=object-row][data-key="top.txt"]');
    expect(await top.locator('td').nth(3).textContent()).toBe('west');
    expect(await top.getByTestId('residency').getAttribute('data-state')).toBe('local');

    // A name made of markup is shown as text, never run.
    await page.getByTestId('dir-weird/').click();
    await page.locator('[data-testid=object-row]').first().waitFor();
    expect(await page.locator('[data-testid=object-row] a').first().textContent()).toBe('<img src=x onerror="window.__xss=1">.txt');
    expect(await page.evaluate(() => (globalThis as { __xss?: number }).__xss)).toBeUndefined();

    // A directory bigger than a page: Next and Previous walk server-side pages.
    await page.getByTestId('crumb-bucket').click();
    await page.getByTestId('dir-dir/').click();
    await expect.poll(() => page.getByTestId('page-info').textContent()).toMatch(/^page 1 · 0 folders, 100 objects · more$/);
    expect(await page.locator('[data-testid=object-row]').first().getAttribute('data-key')).toBe('dir/f000000');
    await page.getByTestId('next-page').click();
    await expect.poll(() => page.getByTestId('page-info').textContent()).toMatch(/^page 2 · /);
    expect(await page.locator('[data-testid=object-row]').first().getAttribute('data-key')).toBe('dir/f000100');
    await shot('web-console-listing.png');
    await page.getByTestId('next-page').click();
    await expect.poll(() => page.getByTestId('page-info').textContent()).toBe(`page 3 · 0 folders, ${DIR_KEYS - 200} objects`);
    expect(await page.getByTestId('next-page').isDisabled()).toBe(true);
    await page.getByTestId('prev-page').click();
    await expect.poll(() => page.getByTestId('page-info').textContent()).toMatch(/^page 2 · /);
    expect(await page.locator('[data-testid=object-row]').first().getAttribute('data-key')).toBe('dir/f000100');

    // Search by prefix.
    await page.getByTestId('prefix-input').fill('dir/f00015');
    await page.getByTestId('search').getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('[data-testid=object-row]').count()).toBe(10);
  });

  it('opens an object: versions with origin, residency and chunk map, zero bytes moved', async () => {
    await page.goto(`${url}/#/b/photos?prefix=a%2F`);
    await page.getByTestId('object-a/big.bin').click();
    await page.getByTestId('versions').waitFor();
    await page.getByTestId('chunk-map').waitFor();
    expect(await page.getByTestId('object-key').textContent()).toBe('a/big.bin');
    expect(await page.getByTestId('version-row').count()).toBe(2);
    expect(await page.getByTestId('version-origin').allTextContents()).toEqual(['west', 'west']);
    expect(await page.getByTestId('detail-origin').textContent()).toBe('west');
    expect(await page.getByTestId('detail-size').textContent()).toBe(`3.0 MiB (${data.bigV2.length} bytes)`);
    const detail = page.getByTestId('detail');
    expect(await detail.getByTestId('residency').getAttribute('data-state')).toBe('metadata-only');
    expect(await page.getByTestId('residency-text').textContent()).toMatch(/^0 B of 3\.0 MiB here · 0 of \d+ chunks$/);
    expect(await page.getByTestId('versions').getByTestId('residency').evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))))
      .toEqual(['metadata-only', 'metadata-only']);
    expect(await fetched()).toBe(0);
    await shot('web-console-object-metadata-only.png');
  });

  it('pins the object: its chunks are fetched now, and it shows as local', async () => {
    await page.getByTestId('pin').click();
    await expect.poll(() => page.getByTestId('action-status').textContent(), { timeout: 30_000 }).toMatch(/^Pinned: \d+ chunks fetched; now local\.$/);
    await expect.poll(() => page.getByTestId('detail').getByTestId('residency').getAttribute('data-state')).toBe('local');
    expect(await page.getByTestId('residency-text').textContent()).toMatch(/^3\.0 MiB of 3\.0 MiB here · (\d+) of \1 chunks$/);
    expect(await page.getByTestId('pin').isDisabled()).toBe(true);
    // The older version shares its first 2 MiB: partly here now.
    expect(await page.getByTestId('versions').getByTestId('residency').evaluateAll((els) => els.map((e) => e.getAttribute('data-state'))))
      .toEqual(['local', 'partial']);
    expect(await fetched()).toBe(data.bigV2.length);
    await shot('web-console-object-pinned.png');
  });

  it('selects an older version and downloads it', async () => {
    await page.getByTestId('version-row').nth(1).click();
    await expect.poll(() => page.getByTestId('detail').getByTestId('residency').getAttribute('data-state')).toBe('partial');
    await shot('web-console-object-partial.png');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download').click()]);
    expect(download.suggestedFilename()).toBe('big.bin');
    const path = await download.path();
    const { readFileSync } = await import('node:fs');
    expect(Buffer.compare(readFileSync(path), data.bigV1)).toBe(0);
  });

  it('signs out', async () => {
    await page.getByTestId('sign-out').click();
    await page.getByTestId('sign-in').waitFor();
    await page.goto(`${url}/#/buckets`);
    await page.getByTestId('sign-in').waitFor();
    expect(problems).toEqual([]);
  });
});

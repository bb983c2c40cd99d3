// The console: hash routes, one view at a time, everything fetched from the JSON API.
//   #/segments                      segments and links (the map), throughput
//   #/buckets                       buckets and how they are linked
//   #/b/BUCKET?prefix=&after=&limit=&flat=1   object browser (server-side pages)
//   #/o/BUCKET?key=KEY&v=VERSION     one object: versions, residency, chunk map, actions
import { api, ApiError, whenSignedOut, type Listing, type ObjectVersions, type SegmentsView, type VersionDetail, type VersionRow } from './api.ts';
import { bytes, clear, h, hlc, rate, seconds, shortId, time } from './dom.ts';
import { chunkMap, chunkStrip, residencyBar, segmentMap, sparkline } from './viz.ts';

const root = document.getElementById('app')!;
let who: { accessKeyId: string; segment: string } | undefined;
let refresh: number | undefined;
let generation = 0;

interface Route {
  view: string;
  arg: string;
  q: URLSearchParams;
}

function route(): Route {
  const hash = location.hash.replace(/^#/, '') || '/segments';
  const qi = hash.indexOf('?');
  const path = qi < 0 ? hash : hash.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : hash.slice(qi + 1));
  const parts = path.split('/').filter(Boolean);
  return { view: parts[0] ?? 'segments', arg: decodeURIComponent(parts.slice(1).join('/')), q };
}

function link(view: string, arg?: string, q?: Record<string, string | number | boolean | undefined>): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(q ?? {})) if (v !== undefined && v !== '' && v !== false) qs.set(k, String(v));
  return `#/${view}${arg !== undefined ? `/${encodeURIComponent(arg)}` : ''}${qs.size ? `?${qs}` : ''}`;
}

function errorBox(err: unknown): HTMLElement {
  const msg = err instanceof ApiError ? `${err.code}: ${err.message}` : String((err as Error)?.message ?? err);
  return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }, msg);
}

// ---- shell ----

function shell(active: string, ...content: Array<HTMLElement | null>): void {
  const nav = (id: string, label: string) => h('a', { href: link(id), class: active === id ? 'active' : '', 'data-testid': `nav-${id}` }, label);
  clear(root,
    h('header', {},
      h('span', { class: 'brand' }, 'stitchfs'),
      h('span', { class: 'segname', 'data-testid': 'segment-name' }, who?.segment ?? ''),
      h('nav', {}, nav('segments', 'Segments'), nav('buckets', 'Buckets')),
      h('span', { class: 'spacer' }),
      h('span', { class: 'who' }, who?.accessKeyId ?? ''),
      h('button', { type: 'button', class: 'link', 'data-testid': 'sign-out', onclick: () => void signOut() }, 'Sign out'),
    ),
    h('main', {}, ...content),
  );
}

async function signOut(): Promise<void> {
  await api.logout().catch(() => {});
  who = undefined;
  showSignIn();
}

function showSignIn(message?: string): void {
  clearInterval(refresh);
  generation++;
  const id = h('input', { name: 'accessKeyId', autocomplete: 'username', required: true, 'data-testid': 'access-key-id', spellcheck: 'false' }) as HTMLInputElement;
  const secret = h('input', { name: 'secret', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'secret' }) as HTMLInputElement;
  const status = h('div', { class: 'status' }, message ?? '');
  const form = h('form', {
    class: 'signin', 'data-testid': 'sign-in',
    onsubmit: (e: Event) => {
      e.preventDefault();
      status.textContent = 'Signing in…';
      api.login(id.value.trim(), secret.value).then((s) => {
        who = s;
        secret.value = '';
        if (route().view === 'signin') location.hash = link('segments');
        void render();
      }, (err: unknown) => {
        clear(status, errorBox(err));
      });
    },
  },
  h('h1', {}, 'stitchfs console'),
  h('label', {}, 'Access key ID', id),
  h('label', {}, 'Secret access key', secret),
  h('button', { type: 'submit', 'data-testid': 'sign-in-submit' }, 'Sign in'),
  h('p', { class: 'hint' }, 'Use an S3 access key of this segment. The secret stays in this browser: it only signs a one-time challenge.'),
  status,
  );
  clear(root, form);
  id.focus();
}

// ---- segments ----

async function segmentsView(gen: number): Promise<void> {
  const draw = (v: SegmentsView) => {
    if (gen !== generation) return;
    const st = v.self.stats;
    const card = (label: string, value: string, id?: string) => h('div', { class: 'card', 'data-testid': id }, h('div', { class: 'cardlabel' }, label), h('div', { class: 'cardvalue' }, value));
    const t = v.throughput;
    shell('segments',
      h('h2', {}, 'Segments and links'),
      h('div', { class: 'cards' },
        card('objects', String(st.objects), 'stat-objects'), card('versions', String(st.versions)),
        card('logical bytes', bytes(st.logicalBytes)), card('stored here', bytes(st.storedBytes)),
        card('chunks here', String(st.chunks)), card('dedup', `${st.dedupRatio.toFixed(2)}×`),
        card('replication backlog', `${v.replicationBacklog} versions`, 'stat-backlog'),
      ),
      h('div', { class: 'panel' }, segmentMap(v) as unknown as HTMLElement,
        h('div', { class: 'legend' },
          h('span', { class: 'key up' }, 'up'), h('span', { class: 'key down' }, 'down'),
          h('span', { class: 'key allowed' }, 'allowlisted, not linked'), h('span', { class: 'key relayed' }, 'known by relay'),
          h('span', {}, 'numbers in circles: versions known from that origin (this segment: objects)'))),
      h('h3', {}, 'Links'),
      h('table', { class: 'grid', 'data-testid': 'links' },
        h('thead', {}, h('tr', {}, ['segment', 'state', 'metadata lag', 'last catch-up', 'pending at last catch-up', 'data not here', 'buckets'].map((c) => h('th', {}, c)))),
        h('tbody', {}, v.peers.length === 0 ? h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No other segments configured.')) : null,
          v.peers.map((p) => h('tr', { 'data-testid': `link-${p.name}` },
            h('td', {}, h('b', {}, p.name), h('div', { class: 'muted mono' }, shortId(p.peerId))),
            h('td', {}, h('span', { class: `pill only ${!p.linked ? 'allowed' : p.connected ? 'up' : 'down'}`, 'data-testid': 'link-state' }, !p.linked ? 'allowlisted' : p.connected ? 'up' : 'down')),
            h('td', {}, seconds(p.metadataLagSeconds)),
            h('td', {}, p.catchUpAgeSeconds === null ? '–' : `${seconds(p.catchUpAgeSeconds)} ago`),
            h('td', {}, `${p.lastCatchUpEntries} versions`),
            h('td', { 'data-testid': 'not-local' }, `${p.notLocal.versions} versions, ${bytes(p.notLocal.bytes)}${v.notLocalCapped ? '+' : ''}`),
            h('td', {}, p.links.map((l) => h('div', {}, `${l.bucket === '*' ? 'every bucket' : l.bucket}: ${l.mode}, ${l.direction}`))),
          )),
          v.relayed.map((r) => h('tr', {},
            h('td', {}, h('b', {}, r.name)), h('td', {}, h('span', { class: 'pill only relayed' }, 'relayed')),
            h('td', {}, seconds(r.metadataLagSeconds)), h('td', {}, '–'), h('td', {}, '–'),
            h('td', {}, `${r.notLocal.versions} versions, ${bytes(r.notLocal.bytes)}`), h('td', {}, '–'))),
        ),
      ),
      h('h3', {}, 'Recent throughput', h('span', { class: 'muted' }, t.length ? ` (last ${seconds(t.length * 5)}, 5 s samples)` : ' (first sample in 5 s)')),
      h('div', { class: 'sparks' },
        sparkline(t, (x) => x.chunkBytesFetched, 'chunks fetched '),
        sparkline(t, (x) => x.chunkBytesServed, 'chunks served '),
        sparkline(t, (x) => x.s3BytesIn, 'S3 in '),
        sparkline(t, (x) => x.s3BytesOut, 'S3 out '),
        sparkline(t, (x) => x.s3Requests, 'S3 requests ', (n) => `${n.toFixed(1)}/s`),
        sparkline(t, (x) => x.versionsReceived, 'versions received ', (n) => `${n.toFixed(1)}/s`),
      ),
      h('p', { class: 'muted' }, `S3 ${v.self.s3 ?? ''} · gateway ${(v.self.p2p ?? []).join(' ')} · up ${seconds(v.self.uptimeSeconds)} · `,
        h('a', { href: '/metrics', target: '_blank' }, 'metrics')),
    );
  };
  draw(await api.segments());
  refresh = window.setInterval(() => {
    if (gen !== generation) return clearInterval(refresh);
    api.segments().then(draw, () => {});
  }, 5000);
}

// ---- buckets ----

async function bucketsView(gen: number): Promise<void> {
  const { buckets } = await api.buckets();
  if (gen !== generation) return;
  shell('buckets',
    h('h2', {}, 'Buckets'),
    h('table', { class: 'grid', 'data-testid': 'buckets' },
      h('thead', {}, h('tr', {}, ['bucket', 'created', 'versioning', 'shared with'].map((c) => h('th', {}, c)))),
      h('tbody', {}, buckets.length === 0 ? h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'No buckets yet.')) : null,
        buckets.map((b) => h('tr', { 'data-testid': `bucket-${b.name}` },
          h('td', {}, h('a', { href: link('b', b.name) }, b.name)),
          h('td', {}, time(b.created)),
          h('td', {}, b.versioning, b.publicRead ? ' · public read' : ''),
          h('td', {}, b.links.length === 0 ? h('span', { class: 'muted' }, 'this segment only') : b.links.map((l) => h('div', {}, `${l.peer}: ${l.mode}, ${l.direction}`))),
        ))),
    ),
  );
}

// ---- object browser ----

// Markers of the pages before the current one, per listing, for "Previous".
const trails = new Map<string, string[]>();

function crumbs(bucket: string, prefix: string, tail?: string): HTMLElement {
  const parts = prefix.split('/');
  const out: Array<HTMLElement | string> = [h('a', { href: link('buckets') }, 'Buckets'), ' / ', h('a', { href: link('b', bucket), 'data-testid': 'crumb-bucket' }, bucket)];
  let acc = '';
  for (const p of parts.slice(0, -1)) {
    acc += `${p}/`;
    out.push(' / ', h('a', { href: link('b', bucket, { prefix: acc }) }, p));
  }
  if (tail) out.push(' / ', h('span', {}, tail));
  return h('div', { class: 'crumbs', 'data-testid': 'crumbs' }, out);
}

function residencyCell(v: VersionRow): HTMLElement {
  return h('td', { class: 'rescell' }, residencyBar(v.residency));
}

async function browserView(gen: number, r: Route): Promise<void> {
  const bucket = r.arg;
  const prefix = r.q.get('prefix') ?? '';
  const after = r.q.get('after') ?? '';
  const flat = r.q.get('flat') === '1';
  const limit = Number(r.q.get('limit') ?? 100) || 100;
  const page: Listing = await api.objects({ bucket, prefix, after: after || undefined, limit, flat });
  if (gen !== generation) return;
  const trailKey = `${bucket}\0${prefix}\0${flat}\0${limit}`;
  const trail = trails.get(trailKey) ?? [];
  // Landing on the first page (or a page not reached by Next) starts the trail again.
  if (!after) trail.length = 0;
  trails.set(trailKey, trail);
  const dir = prefix.slice(0, prefix.lastIndexOf('/') + 1);
  const search = h('input', { name: 'prefix', value: prefix, placeholder: 'prefix, e.g. photos/2024-', 'data-testid': 'prefix-input', spellcheck: 'false' }) as HTMLInputElement;
  const flatBox = h('input', { type: 'checkbox', name: 'flat', checked: flat }) as HTMLInputElement;
  const size = h('select', { name: 'limit' }, [100, 500, 1000].map((n) => h('option', { value: n, selected: n === limit }, `${n} a page`))) as HTMLSelectElement;
  const go = (q: Record<string, string | number | boolean | undefined>) => {
    location.hash = link('b', bucket, { prefix, limit: limit === 100 ? undefined : limit, flat: flat ? 1 : undefined, ...q });
  };
  const pageNo = trail.length + 1;
  shell('buckets',
    crumbs(bucket, prefix),
    h('form', {
      class: 'search', 'data-testid': 'search',
      onsubmit: (e: Event) => {
        e.preventDefault();
        location.hash = link('b', bucket, { prefix: search.value, flat: flatBox.checked ? 1 : undefined, limit: Number(size.value) === 100 ? undefined : size.value });
      },
    }, search, h('label', { class: 'inline' }, flatBox, ' recursive'), size, h('button', { type: 'submit' }, 'Search')),
    h('table', { class: 'grid listing', 'data-testid': 'listing' },
      h('thead', {}, h('tr', {}, ['name', 'size', 'modified', 'origin', 'residency'].map((c) => h('th', {}, c)))),
      h('tbody', {},
        page.prefixes.map((p) => h('tr', { class: 'dir', 'data-testid': 'dir-row' },
          h('td', { colspan: 5 }, h('a', { href: link('b', bucket, { prefix: p, limit: limit === 100 ? undefined : limit }), 'data-testid': `dir-${p}` }, `📁 ${p.slice(dir.length)}`)))),
        page.items.map((v) => h('tr', { 'data-testid': 'object-row', 'data-key': v.key },
          h('td', {}, h('a', { href: link('o', bucket, { key: v.key }), 'data-testid': `object-${v.key}` }, v.key.slice(dir.length))),
          h('td', { class: 'num' }, bytes(v.size)),
          h('td', {}, time(v.mtime)),
          h('td', {}, v.origin),
          residencyCell(v),
        )),
        page.prefixes.length + page.items.length === 0 ? h('tr', {}, h('td', { colspan: 5, class: 'muted' }, prefix ? `Nothing under '${prefix}'.` : 'Empty bucket.')) : null,
      ),
    ),
    h('div', { class: 'pager', 'data-testid': 'pager' },
      h('button', { type: 'button', disabled: !after, onclick: () => go({}) }, 'First'),
      h('button', {
        type: 'button', disabled: !after, 'data-testid': 'prev-page',
        onclick: () => {
          const prev = trail.pop();
          go({ after: prev || undefined });
        },
      }, 'Previous'),
      h('span', { class: 'muted', 'data-testid': 'page-info' }, `page ${after && trail.length === 0 ? '?' : pageNo} · ${page.prefixes.length} folders, ${page.items.length} objects${page.truncated ? ' · more' : ''}`),
      h('button', {
        type: 'button', disabled: !page.truncated, 'data-testid': 'next-page',
        onclick: () => {
          trail.push(after);
          go({ after: page.next ?? undefined });
        },
      }, 'Next'),
    ),
  );
}

// ---- one object ----

async function objectView(gen: number, r: Route): Promise<void> {
  const bucket = r.arg;
  const key = r.q.get('key') ?? '';
  const versions: ObjectVersions = await api.object({ bucket, key, limit: 100 });
  if (gen !== generation) return;
  let selected = r.q.get('v') ?? versions.head?.versionId ?? versions.versions[0]?.versionId;
  const detailBox = h('div', { class: 'detail', 'data-testid': 'detail' });
  const actionStatus = h('div', { class: 'status', 'data-testid': 'action-status' });
  const tbody = h('tbody', {});
  const more = h('div', {});

  const rows = (list: VersionRow[]) => list.map((v) => h('tr', {
    class: `${v.versionId === selected ? 'selected' : ''}`, 'data-testid': 'version-row', 'data-version': v.versionId,
    onclick: () => {
      selected = v.versionId;
      actionStatus.textContent = '';
      for (const tr of tbody.querySelectorAll('tr')) tr.classList.toggle('selected', tr.getAttribute('data-version') === selected);
      void showDetail();
    },
  },
  h('td', { class: 'mono', title: v.versionId }, shortId(v.versionId), v.isLatest ? h('span', { class: 'pill latest' }, 'latest') : null, v.deleted ? h('span', { class: 'pill deleted' }, 'delete marker') : null),
  h('td', { 'data-testid': 'version-origin' }, v.origin),
  h('td', { title: String(v.hlc) }, hlc(v.hlcTime, v.hlcLogical)),
  h('td', { class: 'num' }, v.deleted ? '–' : bytes(v.size)),
  h('td', { class: 'mono' }, v.etag || '–'),
  residencyCell(v),
  ));

  const showMore = (page: ObjectVersions) => {
    clear(more, page.truncated ? h('button', {
      type: 'button',
      onclick: () => {
        api.object({ bucket, key, after: page.next ?? undefined, limit: 100 }).then((p) => {
          tbody.append(...rows(p.versions));
          showMore(p);
        }, (err) => clear(more, errorBox(err)));
      },
    }, 'More versions') : '');
  };

  const act = async (what: 'pin' | 'unpin') => {
    if (!selected) return;
    actionStatus.textContent = what === 'pin' ? 'Pinning: fetching missing chunks…' : 'Unpinning…';
    try {
      const out = what === 'pin' ? await api.pin({ bucket, key, versionId: selected }) : await api.unpin({ bucket, key, versionId: selected });
      actionStatus.textContent = 'fetchedChunks' in out
        ? `Pinned: ${out.fetchedChunks} chunks fetched; now ${out.residency.state}.`
        : `Unpinned: ${bytes(out.freedBytes)} freed; now ${out.residency.state}.`;
      const fresh = await api.object({ bucket, key, limit: 100 });
      clear(tbody, rows(fresh.versions));
      showMore(fresh);
      await showDetail();
    } catch (err) {
      clear(actionStatus, errorBox(err));
    }
  };

  const showDetail = async () => {
    if (!selected) return clear(detailBox, h('p', { class: 'muted' }, 'No version.'));
    const want = selected;
    let d: VersionDetail;
    try {
      d = await api.version({ bucket, key, versionId: want });
    } catch (err) {
      return clear(detailBox, errorBox(err));
    }
    if (want !== selected || gen !== generation) return;
    const v = d.version;
    const fact = (k: string, val: string | HTMLElement, id?: string) => [h('dt', {}, k), h('dd', { 'data-testid': id }, val)];
    clear(detailBox,
      h('div', { class: 'facts' }, h('dl', {},
        fact('version', h('span', { class: 'mono' }, v.versionId), 'detail-version'),
        fact('origin', v.origin, 'detail-origin'),
        fact('HLC', `${hlc(v.hlcTime, v.hlcLogical)} (${v.hlc})`),
        fact('size', v.deleted ? '–' : `${bytes(v.size)} (${v.size} bytes)`, 'detail-size'),
        fact('ETag', h('span', { class: 'mono' }, v.etag || '–'), 'detail-etag'),
        fact('content type', v.contentType),
        fact('manifest', v.manifest === 'inline' ? `${v.residency.chunks} chunks, inline` : `tree, ${v.residency.chunks} chunks known`),
      )),
      h('div', { class: 'resbox' },
        h('div', { class: 'restitle' }, 'Residency on this segment'),
        residencyBar(v.residency, { large: true }),
        h('div', { class: 'muted', 'data-testid': 'residency-text' }, v.deleted ? 'A delete marker has no data.'
          : `${bytes(v.residency.localBytes)} of ${bytes(v.size)} here · ${v.residency.localChunks} of ${v.residency.chunks} chunks${v.residency.unknownBytes ? ` · ${bytes(v.residency.unknownBytes)} behind manifest blocks not held here` : ''}`),
        d.map.length ? h('div', { class: 'mapbox' }, h('div', { class: 'restitle' }, 'Chunk map'),
          // Every chunk drawn to scale when they are all listed; equal cells of bytes otherwise.
          (d.chunksListed === v.residency.chunks && v.residency.unknownBytes === 0 && d.chunks.length <= 512
            ? chunkStrip(d.chunks, v.size) : chunkMap(d.map)) as unknown as HTMLElement,
          h('div', { class: 'legend' }, h('span', { class: 'key up' }, 'here'), h('span', { class: 'key remote' }, 'elsewhere'), h('span', { class: 'key unknown' }, 'unknown'))) : null,
        d.chunks.length ? h('details', {}, h('summary', {}, `Chunks (${d.chunksListed}${d.chunksListed < v.residency.chunks ? ` of ${v.residency.chunks}` : ''})`),
          h('table', { class: 'grid small' }, h('tbody', {}, d.chunks.map((c) => h('tr', {},
            h('td', { class: 'mono' }, c.cid), h('td', { class: 'num' }, c.offset), h('td', { class: 'num' }, bytes(c.length)),
            h('td', {}, c.local === true ? 'here' : c.local === false ? 'elsewhere' : 'unknown')))))) : null,
      ),
      h('div', { class: 'actions' },
        v.deleted ? null : h('a', { class: 'button', href: api.downloadUrl({ bucket, key, versionId: v.versionId }), download: key.slice(key.lastIndexOf('/') + 1), 'data-testid': 'download' }, 'Download'),
        v.deleted ? null : h('button', { type: 'button', 'data-testid': 'pin', disabled: v.residency.state === 'local', onclick: () => void act('pin') }, 'Pin (fetch now)'),
        v.deleted || v.origin === who?.segment ? null : h('button', { type: 'button', 'data-testid': 'unpin', disabled: v.residency.localBytes === 0 && v.residency.state !== 'partial', onclick: () => void act('unpin') }, 'Unpin (drop local copy)'),
        actionStatus,
      ),
    );
  };

  clear(tbody, rows(versions.versions));
  showMore(versions);
  const dir = key.slice(0, key.lastIndexOf('/') + 1);
  shell('buckets',
    crumbs(bucket, dir, key.slice(dir.length)),
    h('h2', { class: 'objkey', 'data-testid': 'object-key' }, key),
    versions.head?.deleted ? h('p', { class: 'warn' }, 'The current version is a delete marker: the object is deleted; older versions remain.') : null,
    detailBox,
    h('h3', {}, 'Versions'),
    h('table', { class: 'grid versions', 'data-testid': 'versions' },
      h('thead', {}, h('tr', {}, ['version', 'origin', 'HLC time', 'size', 'ETag', 'residency'].map((c) => h('th', {}, c)))),
      tbody),
    more,
  );
  await showDetail();
}

// ---- router ----

async function render(): Promise<void> {
  clearInterval(refresh);
  const gen = ++generation;
  if (!who) {
    try {
      who = await api.session();
    } catch {
      return showSignIn();
    }
  }
  const r = route();
  try {
    if (r.view === 'buckets') await bucketsView(gen);
    else if (r.view === 'b') await browserView(gen, r);
    else if (r.view === 'o') await objectView(gen, r);
    else await segmentsView(gen);
  } catch (err) {
    if (gen !== generation || !who) return;
    shell(r.view === 'segments' ? 'segments' : 'buckets', errorBox(err));
  }
}

whenSignedOut(() => {
  if (!who) return;
  who = undefined;
  showSignIn('Your session ended: sign in again.');
});
window.addEventListener('hashchange', () => void render());
void render();

// Pictures: the residency bar of an object, its chunk map, the map of segments and links, and
// throughput sparklines. All SVG built from data, no library.
import type { Residency, SegmentsView, Throughput } from './api.ts';
import { bytes, h, rate, s, seconds } from './dom.ts';

const STATE_LABEL: Record<string, string> = {
  local: 'local', partial: 'partial', 'metadata-only': 'metadata only', none: 'delete marker',
};

// A bar of the object's bytes: here (green), not known without a fetch (striped), elsewhere (grey).
export function residencyBar(r: Residency, o: { large?: boolean } = {}): HTMLElement {
  const size = Math.max(r.size, 1);
  const local = r.size === 0 ? 100 : (100 * r.localBytes) / size;
  const unknown = r.size === 0 ? 0 : (100 * r.unknownBytes) / size;
  const title = r.state === 'none'
    ? 'delete marker'
    : `${STATE_LABEL[r.state]}: ${bytes(r.localBytes)} of ${bytes(r.size)} here${r.unknownBytes ? `, ${bytes(r.unknownBytes)} unknown` : ''} (${r.localChunks} of ${r.chunks} chunks)`;
  const bar = s('svg', { class: `resbar${o.large ? ' large' : ''}`, viewBox: '0 0 100 10', preserveAspectRatio: 'none', role: 'img', 'aria-label': title },
    s('title', {}, title),
    s('rect', { x: 0, y: 0, width: 100, height: 10, class: 'remote' }),
    r.state === 'none' ? null : s('rect', { x: 0, y: 0, width: local, height: 10, class: 'local' }),
    unknown > 0 ? s('rect', { x: local, y: 0, width: unknown, height: 10, class: 'unknown' }) : null,
  );
  return h('span', { class: `residency state-${r.state}`, 'data-testid': 'residency', 'data-state': r.state },
    bar as unknown as Node, h('span', { class: 'reslabel' }, STATE_LABEL[r.state]));
}

// The object in equal cells, 64 to a row; each cell filled from the bottom by the share of its
// bytes that is here (green) or unknown (amber).
export function chunkMap(cells: Array<{ local: number; unknown: number }>): SVGElement {
  const per = 64;
  const size = 10;
  const gap = 2;
  const rows = Math.max(1, Math.ceil(cells.length / per));
  const width = Math.min(cells.length, per) * (size + gap);
  const svg = s('svg', {
    class: 'chunkmap', 'data-testid': 'chunk-map', viewBox: `0 0 ${Math.max(width, 1)} ${rows * (size + gap)}`,
    width: Math.max(width, 1), height: rows * (size + gap), role: 'img', 'aria-label': 'chunk map',
  });
  cells.forEach((c, i) => {
    const x = (i % per) * (size + gap);
    const y = Math.floor(i / per) * (size + gap);
    const lh = size * c.local;
    const uh = size * c.unknown;
    svg.append(
      s('rect', { x, y, width: size, height: size, class: 'remote', 'data-local': c.local },
        s('title', {}, `${Math.round(c.local * 100)}% here${c.unknown ? `, ${Math.round(c.unknown * 100)}% unknown` : ''}`)),
      lh > 0 ? s('rect', { x, y: y + size - lh, width: size, height: lh, class: 'local' }) : '',
      uh > 0 ? s('rect', { x, y: y + size - lh - uh, width: size, height: uh, class: 'unknown' }) : '',
    );
  });
  return svg;
}

// Every chunk to scale, in order: content-defined chunks have varied lengths, and a partly
// fetched object shows exactly which ranges are here.
export function chunkStrip(chunks: Array<{ cid: string; offset: number; length: number; local: boolean | null }>, size: number): SVGElement {
  const W = 1000;
  const svg = s('svg', { class: 'chunkstrip', 'data-testid': 'chunk-map', viewBox: `0 0 ${W} 28`, preserveAspectRatio: 'none', role: 'img', 'aria-label': 'chunk map' });
  const total = Math.max(size, 1);
  for (const c of chunks) {
    const x = (c.offset / total) * W;
    const w = Math.max(0.5, (c.length / total) * W - (chunks.length > 200 ? 0 : 1.5));
    const cls = c.local === true ? 'local' : c.local === false ? 'remote' : 'unknown';
    svg.append(s('rect', { x, y: 0, width: w, height: 28, class: cls, 'data-local': String(c.local) },
      s('title', {}, `${c.cid}\nbytes ${c.offset}–${c.offset + c.length - 1} (${bytes(c.length)})\n${c.local === true ? 'here' : c.local === false ? 'elsewhere' : 'unknown'}`)));
  }
  return svg;
}

// This segment in the middle, linked segments around it (green: up, red: down, grey: allowed but
// not linked), segments known only through relayed versions further out (dashed).
export function segmentMap(v: SegmentsView): SVGElement {
  const W = 760;
  // One or two peers sit left and right of this segment: no need for height.
  const H = v.peers.length + v.relayed.length <= 2 ? 190 : 340;
  const cx = W / 2;
  const cy = H / 2 - 10;
  const svg = s('svg', { class: 'segmap', 'data-testid': 'segment-map', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'map of segments and links' });
  const edges = s('g', { class: 'edges' });
  const nodes = s('g', { class: 'nodes' });
  svg.append(edges, nodes);
  const around = [
    ...v.peers.map((p) => ({ kind: 'peer' as const, p })),
    ...v.relayed.map((r) => ({ kind: 'relayed' as const, r })),
  ];
  const n = Math.max(around.length, 1);
  around.forEach((item, i) => {
    // The first to the right, then around: one link is a horizontal line, labels stay clear.
    const angle = (2 * Math.PI * i) / n;
    const radius = item.kind === 'peer' ? 115 : 135;
    const x = cx + Math.cos(angle) * radius * 2.3;
    const y = cy + Math.sin(angle) * radius;
    const mx = (cx + x) / 2;
    const my = (cy + y) / 2;
    if (item.kind === 'peer') {
      const p = item.p;
      const cls = !p.linked ? 'allowed' : p.connected ? 'up' : 'down';
      const lag = p.metadataLagSeconds ?? null;
      const label = !p.linked ? 'allowlisted' : p.connected
        ? `lag ${seconds(lag ?? p.catchUpAgeSeconds)}${p.notLocal.versions ? ` · ${p.notLocal.versions} not here` : ''}`
        : 'down';
      edges.append(
        s('line', { x1: cx, y1: cy, x2: x, y2: y, class: `edge ${cls}`, 'data-testid': `edge-${p.name}`, 'data-state': cls }),
        s('text', { x: mx, y: my - 6, class: 'edgelabel', 'text-anchor': 'middle' }, label),
      );
      nodes.append(s('g', { class: `node ${cls}`, 'data-testid': `node-${p.name}` },
        s('title', {}, `${p.name}\n${p.peerId}\n${p.addrs.join(' ')}`),
        s('circle', { cx: x, cy: y, r: 26 }),
        s('text', { x, y: y + 42, 'text-anchor': 'middle', class: 'name' }, p.name),
        s('text', { x, y: y + 4, 'text-anchor': 'middle', class: 'count' }, p.knownSeq),
      ));
    } else {
      const r = item.r;
      edges.append(
        s('line', { x1: cx, y1: cy, x2: x, y2: y, class: 'edge relayed' }),
        s('text', { x: mx, y: my - 6, class: 'edgelabel', 'text-anchor': 'middle' }, `relayed · lag ${seconds(r.metadataLagSeconds)}`),
      );
      nodes.append(s('g', { class: 'node relayed', 'data-testid': `node-${r.name}` },
        s('circle', { cx: x, cy: y, r: 22 }),
        s('text', { x, y: y + 38, 'text-anchor': 'middle', class: 'name' }, r.name),
        s('text', { x, y: y + 4, 'text-anchor': 'middle', class: 'count' }, r.knownSeq),
      ));
    }
  });
  nodes.append(s('g', { class: 'node self', 'data-testid': `node-${v.self.name}` },
    s('circle', { cx, cy, r: 36 }),
    s('text', { x: cx, y: cy + 54, 'text-anchor': 'middle', class: 'name' }, `${v.self.name} (this segment)`),
    s('text', { x: cx, y: cy + 5, 'text-anchor': 'middle', class: 'count' }, v.self.stats.objects),
  ));
  return svg;
}

export function sparkline(samples: Throughput[], pick: (t: Throughput) => number, label: string, fmt: (n: number) => string = rate): HTMLElement {
  const W = 220;
  const H = 40;
  const values = samples.map(pick);
  const max = Math.max(1, ...values);
  const pts = values.length < 2 ? '' : values.map((v, i) => `${(i * W) / (values.length - 1)},${H - 2 - (v / max) * (H - 4)}`).join(' ');
  const last = values.length ? values[values.length - 1] : 0;
  return h('div', { class: 'spark' },
    h('div', { class: 'sparklabel' }, label, h('b', {}, fmt(last))),
    s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, preserveAspectRatio: 'none' },
      s('polyline', { points: pts || `0,${H - 2} ${W},${H - 2}`, class: 'line' })) as unknown as Node,
  );
}

// A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
// exposition format 0.0.4. Enough for one process's own metrics; no dependency, no global state
// (StitchMetrics in index.ts holds the process's registry).

export type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(out: string[]): void;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function labelText(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

// Label values in the declared order; a missing label is an empty string (Prometheus' own rule).
function valuesOf(names: readonly string[], labels: Labels | undefined): string[] {
  return names.map((n) => String(labels?.[n] ?? ''));
}

abstract class Base<T> implements Family {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  protected readonly labelNames: readonly string[];
  protected readonly series = new Map<string, { values: string[]; v: T }>();
  // Series per family are bounded so a bug (or hostile label source) cannot grow memory forever.
  private readonly maxSeries: number;

  constructor(name: string, help: string, labelNames: readonly string[] = [], maxSeries = 1000) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    for (const l of labelNames) if (!LABEL.test(l) || l === 'le') throw new Error(`bad label name ${l}`);
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.maxSeries = maxSeries;
  }

  protected abstract init(): T;

  protected get(labels?: Labels): T | undefined {
    const values = valuesOf(this.labelNames, labels);
    const id = values.join('\u0000');
    let s = this.series.get(id);
    if (!s) {
      if (this.series.size >= this.maxSeries) return undefined;
      s = { values, v: this.init() };
      this.series.set(id, s);
    }
    return s.v;
  }

  reset(): void {
    this.series.clear();
  }

  // Every series with its labels, for in-process readers (the console's graphs).
  entries(): Array<{ labels: Labels; value: T }> {
    return [...this.series.values()].map(({ values, v }) => ({
      labels: Object.fromEntries(this.labelNames.map((n, i) => [n, values[i]])),
      value: v,
    }));
  }

  abstract render(out: string[]): void;

  protected header(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
  }
}

export class Counter extends Base<{ n: number }> {
  readonly type = 'counter';
  protected init() {
    return { n: 0 };
  }

  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) return;
    const s = this.get(labels);
    if (s) s.n += by;
  }

  value(labels?: Labels): number {
    return this.series.get(valuesOf(this.labelNames, labels).join('\u0000'))?.v.n ?? 0;
  }

  render(out: string[]): void {
    this.header(out);
    for (const { values, v } of this.series.values()) out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(v.n)}`);
  }
}

// A gauge is set directly, or computed at scrape time by `collect` (which replaces its series).
export class Gauge extends Base<{ n: number }> {
  readonly type = 'gauge';
  private readonly collect?: (g: Gauge) => void;

  constructor(name: string, help: string, labelNames: readonly string[] = [], collect?: (g: Gauge) => void) {
    super(name, help, labelNames);
    this.collect = collect;
  }

  protected init() {
    return { n: 0 };
  }

  set(labels: Labels | undefined, value: number): void {
    const s = this.get(labels);
    if (s) s.n = value;
  }

  value(labels?: Labels): number | undefined {
    return this.series.get(valuesOf(this.labelNames, labels).join('\u0000'))?.v.n;
  }

  render(out: string[]): void {
    if (this.collect) {
      this.series.clear();
      try {
        this.collect(this);
      } catch {
        // A collector that fails (a closing segment) leaves the family empty, not the scrape broken.
      }
    }
    this.header(out);
    for (const { values, v } of this.series.values()) out.push(`${this.name}${labelText(this.labelNames, values)} ${formatValue(v.n)}`);
  }
}

export class Histogram extends Base<{ counts: number[]; sum: number; count: number }> {
  readonly type = 'histogram';
  readonly buckets: readonly number[];

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames);
    this.buckets = [...buckets].sort((a, b) => a - b);
  }

  protected init() {
    return { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  observe(labels: Labels | undefined, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.get(labels);
    if (!s) return;
    s.sum += value;
    s.count++;
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]) s.counts[i]++;
  }

  snapshot(labels?: Labels): { counts: number[]; sum: number; count: number } | undefined {
    return this.series.get(valuesOf(this.labelNames, labels).join('\u0000'))?.v;
  }

  render(out: string[]): void {
    this.header(out);
    for (const { values, v } of this.series.values()) {
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket${labelText(this.labelNames, values, ['le', formatValue(b)])} ${v.counts[i]}`));
      out.push(`${this.name}_bucket${labelText(this.labelNames, values, ['le', '+Inf'])} ${v.count}`);
      out.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatValue(v.sum)}`);
      out.push(`${this.name}_count${labelText(this.labelNames, values)} ${v.count}`);
    }
  }
}

// A family whose samples are read at scrape time from state kept elsewhere (gateway counters,
// segment stats): the source stays the one truth, the registry only formats it.
export class Collected implements Family {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  private readonly labelNames: readonly string[];
  private readonly fn: () => Array<[Labels | undefined, number]>;

  constructor(type: 'counter' | 'gauge', name: string, help: string, labelNames: readonly string[], fn: () => Array<[Labels | undefined, number]>) {
    if (!NAME.test(name)) throw new Error(`bad metric name ${name}`);
    this.type = type;
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.fn = fn;
  }

  render(out: string[]): void {
    let samples: Array<[Labels | undefined, number]>;
    try {
      samples = this.fn();
    } catch {
      samples = [];
    }
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`);
    for (const [labels, v] of samples) out.push(`${this.name}${labelText(this.labelNames, valuesOf(this.labelNames, labels))} ${formatValue(v)}`);
  }
}

export class Registry {
  private readonly families = new Map<string, Family>();

  register<F extends Family>(f: F): F {
    if (this.families.has(f.name)) throw new Error(`metric ${f.name} registered twice`);
    this.families.set(f.name, f);
    return f;
  }

  counter(name: string, help: string, labels: readonly string[] = []): Counter {
    return this.register(new Counter(name, help, labels));
  }

  gauge(name: string, help: string, labels: readonly string[] = [], collect?: (g: Gauge) => void): Gauge {
    return this.register(new Gauge(name, help, labels, collect));
  }

  histogram(name: string, help: string, labels: readonly string[], buckets: readonly number[]): Histogram {
    return this.register(new Histogram(name, help, labels, buckets));
  }

  collected(type: 'counter' | 'gauge', name: string, help: string, labels: readonly string[], fn: () => Array<[Labels | undefined, number]>): Collected {
    return this.register(new Collected(type, name, help, labels, fn));
  }

  unregister(name: string): void {
    this.families.delete(name);
  }

  // The text exposition format (Content-Type: text/plain; version=0.0.4).
  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) f.render(out);
    return `${out.join('\n')}\n`;
  }
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

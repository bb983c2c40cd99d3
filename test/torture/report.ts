// What a torture scenario tried and what held: one row of the table `npm run torture` prints.

export interface ScenarioResult {
  scenario: string;
  // Crash/restart cycles, fault rounds, partition rounds: the scenario's unit of repetition.
  cycles: number;
  faults: number;
  // Requests sent (S3 operations, fuzzed requests, protocol messages).
  requests: number;
  bytesVerified: number;
  // Acknowledged writes missing or wrong afterwards. Must be 0.
  lost: number;
  // Everything that did not hold (lost writes included). Must be empty.
  problems: string[];
  // Facts worth recording (measured convergence, gaps found, what was skipped and why).
  notes: string[];
  ms: number;
  seed: number;
}

export function newResult(scenario: string, seed: number): ScenarioResult {
  return { scenario, cycles: 0, faults: 0, requests: 0, bytesVerified: 0, lost: 0, problems: [], notes: [], ms: 0, seed };
}

const mib = (n: number) => (n >= 1024 * 1024 * 1024 ? `${(n / 1024 ** 3).toFixed(2)} GiB` : `${(n / 1024 ** 2).toFixed(1)} MiB`);

export function formatTable(rows: ScenarioResult[]): string {
  const head = ['scenario', 'cycles', 'faults', 'requests', 'verified', 'lost', 'problems', 'time', 'held'];
  const body = rows.map((r) => [
    r.scenario, String(r.cycles), String(r.faults), String(r.requests), mib(r.bytesVerified), String(r.lost),
    String(r.problems.length), `${(r.ms / 1000).toFixed(0)} s`, r.lost === 0 && r.problems.length === 0 ? 'yes' : 'NO',
  ]);
  const total = rows.reduce((t, r) => ({
    cycles: t.cycles + r.cycles, faults: t.faults + r.faults, requests: t.requests + r.requests,
    bytes: t.bytes + r.bytesVerified, lost: t.lost + r.lost, problems: t.problems + r.problems.length, ms: t.ms + r.ms,
  }), { cycles: 0, faults: 0, requests: 0, bytes: 0, lost: 0, problems: 0, ms: 0 });
  body.push(['total', String(total.cycles), String(total.faults), String(total.requests), mib(total.bytes), String(total.lost),
    String(total.problems), `${(total.ms / 1000).toFixed(0)} s`, total.lost === 0 && total.problems === 0 ? 'yes' : 'NO']);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ')} |`;
  return [line(head), `|${widths.map((w, i) => (i === 0 ? `:${'-'.repeat(w + 1)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`, ...body.map(line)].join('\n');
}

export function formatNotes(rows: ScenarioResult[]): string {
  const out: string[] = [];
  for (const r of rows) {
    if (r.notes.length === 0 && r.problems.length === 0) continue;
    out.push(`${r.scenario} (seed ${r.seed}):`);
    for (const n of r.notes) out.push(`  - ${n}`);
    for (const p of r.problems.slice(0, 20)) out.push(`  ! ${p}`);
    if (r.problems.length > 20) out.push(`  ! ... ${r.problems.length - 20} more`);
  }
  return out.join('\n');
}

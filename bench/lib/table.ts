// Plain aligned text tables. A row of one string is a section title spanning the table.
export type Cell = string | number | undefined;
export type Row = Cell[] | string;

export interface Column {
  title: string;
  align?: 'left' | 'right';
  // Digits after the point for numbers.
  digits?: number;
}

function show(cell: Cell, col: Column): string {
  if (cell === undefined) return '-';
  if (typeof cell === 'number') return Number.isFinite(cell) ? cell.toFixed(col.digits ?? 0) : '-';
  return cell;
}

export function formatTable(columns: Column[], rows: Row[]): string {
  const cells = rows.map((r) => (typeof r === 'string' ? r : columns.map((c, i) => show(r[i], c))));
  const widths = columns.map((c, i) =>
    Math.max(c.title.length, ...cells.map((r) => (typeof r === 'string' ? 0 : r[i].length))),
  );
  const line = (r: string[]): string =>
    r.map((s, i) => {
      // The last column (free text) is not padded, so lines carry no trailing spaces.
      if (i === r.length - 1 && columns[i].align !== 'right') return s;
      return columns[i].align === 'right' ? s.padStart(widths[i]) : s.padEnd(widths[i]);
    }).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(columns.map((c) => c.title)), rule];
  for (const r of cells) out.push(typeof r === 'string' ? `-- ${r}` : line(r));
  return out.join('\n');
}

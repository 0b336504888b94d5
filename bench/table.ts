// Plain-text tables for the report: aligned columns, and a figure's server CPU as a cell.
import { pct, type Measurement } from './measure.ts';

/** Aligned columns; the columns in `right` (numbers) are right-aligned. */
export function table(header: string[], rows: string[][], right: ReadonlySet<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)];
}

/** A measurement's median server CPU as a cell (empty when unknown). */
export function cpu(m: Measurement | undefined): string {
  if (!m || m.serverCpu === undefined || !Number.isFinite(m.serverCpu)) return '';
  return pct(m.serverCpu);
}

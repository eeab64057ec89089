// Small numeric and formatting helpers for the benchmark report.

export const MiB = 1024 * 1024;

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mibPerSec(bytes: number, ms: number): number {
  return bytes / MiB / (ms / 1000);
}

export const fmt = {
  mibs: (v: number) => `${v.toFixed(0)} MiB/s`,
  rps: (v: number) => `${Math.round(v).toLocaleString('en-US')} req/s`,
  mib: (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`,
  pct: (r: number) => `${(r * 100).toFixed(0)} %`,
  /** A rate of events (or rows) per second, grouped: `312,456 events/s`. */
  perSec: (v: number, unit = 'events') => `${Math.round(v).toLocaleString('en-US')} ${unit}/s`,
  int: (v: number) => Math.round(v).toLocaleString('en-US'),
  secs: (v: number) => `${v.toFixed(3)} s`,
  times: (r: number) => `${r.toFixed(2)}x`,
  list: (xs: readonly number[], digits = 0) => xs.map((x) => x.toFixed(digits)).join(' / '),
};

/** Renders rows as a plain-text table with a header rule; columns sized to fit. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const rule = `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

export const verdict = (ok: boolean) => (ok ? 'PASS' : 'MISS');

/** One part of the run: its rows of the table and its lines under it. */
export interface Section<R> {
  /** The section's figures for `--json`. */
  results: R;
  rows: string[][];
  notes: string[];
}

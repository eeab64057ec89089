// Everything the CLI prints: aligned tables and key/value blocks for people, the
// server's JSON for scripts (--json). Every value that came from the server passes
// through safeText first.

import type { Writable } from 'node:stream';

// C0/C1 control characters and bidirectional overrides.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes a server-supplied value safe to print on a terminal.
 * A description holding ESC sequences could rewrite the screen, hide lines or set the
 * window title; a bidi override could make one name read as another (trojan source).
 */
export function safeText(value: unknown): string {
  if (value === null || value === undefined || value === '') return '-';
  const s = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export interface Column<T> {
  header: string;
  value: (row: T) => unknown;
}

/** Renders rows as a table whose columns are separated by two spaces. */
export function renderTable<T>(columns: readonly Column<T>[], rows: readonly T[]): string {
  const cells = rows.map((r) => columns.map((c) => safeText(c.value(r))));
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (i === values.length - 1 ? v : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.header)), ...cells.map(line)].join('\n')}\n`;
}

/** Renders `key: value` lines with the values aligned. */
export function renderFields(fields: readonly (readonly [string, unknown])[]): string {
  const width = Math.max(0, ...fields.map(([k]) => k.length + 1));
  return `${fields.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${safeText(v)}`).join('\n')}\n`;
}

export function renderJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : 1)} ${UNITS[u]}`;
}

/** Where a command writes: stdout for results, stderr for progress and notes. */
export interface Io {
  readonly stdout: Writable;
  readonly stderr: Writable & { isTTY?: boolean; columns?: number };
}

export function print(io: Io, text: string): void {
  io.stdout.write(text);
}

/** A note for the person at the terminal; never part of the result. */
export function note(io: Io, text: string): void {
  io.stderr.write(`${text}\n`);
}

export type Row = Record<string, unknown>;

/** The array under `key` of a list answer (`{projects:[…]}`), tolerating its absence. */
export function rowsOf(body: unknown, key: string): Row[] {
  const v = typeof body === 'object' && body !== null ? (body as Record<string, unknown>)[key] : undefined;
  return Array.isArray(v) ? v.filter((r): r is Row => typeof r === 'object' && r !== null) : [];
}

/** Prints a list answer: its JSON with --json, else a table (or a note on stderr when empty). */
export function printList(io: Io, json: boolean, body: unknown, key: string, columns: readonly Column<Row>[]): void {
  if (json) {
    print(io, renderJson(body));
    return;
  }
  const rows = rowsOf(body, key);
  if (rows.length === 0) note(io, `no ${key}`);
  else print(io, renderTable(columns, rows));
}

/** A column showing field `field` of each row. */
export function col(header: string, field: string): Column<Row> {
  return { header, value: (r) => r[field] };
}

// Transfer progress on stderr: a redrawn bar (bytes done/total, rate) when stderr is a
// terminal, one line per finished file otherwise (logs and CI stay readable).

import { formatBytes, safeText } from './output.ts';

export interface ProgressStream {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface Progress {
  /** A file starts; `phase` is e.g. 'hashing' or 'uploading'. */
  file(path: string, phase: string): void;
  /** Bytes transferred (counted towards the total). */
  advance(bytes: number): void;
  /** A file is done; `detail` follows its path on the per-file line. */
  fileDone(path: string, size: number, detail?: string): void;
  finish(): void;
}

const REDRAW_MS = 100;

export function createProgress(
  out: ProgressStream,
  verb: string,
  totalBytes: number,
  now: () => number = () => performance.now(),
): Progress {
  const started = now();
  let done = 0;
  let current = '';
  let phase = verb;
  let lastDraw = 0;
  const tty = out.isTTY === true;

  const rate = () => {
    const secs = (now() - started) / 1000;
    return secs > 0 ? done / secs : 0;
  };

  const draw = (force: boolean) => {
    if (!tty) return;
    const t = now();
    if (!force && t - lastDraw < REDRAW_MS) return;
    lastDraw = t;
    const frac = totalBytes > 0 ? Math.min(1, done / totalBytes) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
    const pct = `${Math.floor(frac * 100)}%`.padStart(4);
    let line = `${bar} ${pct} ${formatBytes(done)}/${formatBytes(totalBytes)} ${formatBytes(rate())}/s ${phase} ${current}`;
    const cols = out.columns !== undefined && out.columns >= 40 ? out.columns : 80;
    if (line.length > cols - 1) line = `${line.slice(0, Math.max(0, cols - 2))}…`;
    out.write(`\r\u001b[K${line}`);
  };

  return {
    file(path, p) {
      current = safeText(path);
      phase = p;
      draw(true);
    },
    advance(bytes) {
      done += bytes;
      draw(false);
    },
    fileDone(path, size, detail) {
      if (!tty) out.write(`${verb} ${safeText(path)} (${formatBytes(size)})${detail ? ` ${detail}` : ''}\n`);
      else draw(true);
    },
    finish() {
      if (tty) {
        current = '';
        phase = 'done';
        draw(true);
        out.write('\n');
      }
    },
  };
}

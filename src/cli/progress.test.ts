// Progress output: a redrawn bar only on a terminal; plain per-file lines otherwise, with
// no carriage return or escape sequence that would garble a log or a pipe.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createProgress } from './progress.ts';

function sink(isTTY: boolean) {
  const chunks: string[] = [];
  return { isTTY, columns: 100, write: (s: string) => chunks.push(s), text: () => chunks.join('') };
}

test('on a terminal: a redrawn bar, finished with a newline', () => {
  const out = sink(true);
  let t = 0;
  const p = createProgress(out, 'downloaded', 2048, () => t);
  p.file('model.bin', 'downloading');
  t = 1000;
  p.advance(1024);
  p.fileDone('model.bin', 2048);
  p.finish();
  const text = out.text();
  assert.ok(text.includes('\r\u001b[K[############------------]  50% 1.0 KiB/2.0 KiB'), JSON.stringify(text));
  assert.ok(text.endsWith('\n'));
  assert.doesNotMatch(text, /^downloaded model\.bin/m, 'no per-file log line on a terminal');
});

test('not a terminal: one line per file, no control characters at all', () => {
  const out = sink(false);
  const p = createProgress(out, 'uploaded', 10);
  p.file('a\u001b[2Jb.bin', 'uploading');
  p.advance(10);
  p.fileDone('a\u001b[2Jb.bin', 10, 'sha256 ok');
  p.finish();
  assert.equal(out.text(), 'uploaded a\\u001b[2Jb.bin (10 B) sha256 ok\n');
});

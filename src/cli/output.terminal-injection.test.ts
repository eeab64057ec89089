// Server-supplied text must not be able to drive the terminal (escape sequences) or
// disguise itself (bidi overrides) when the CLI prints it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatBytes, renderFields, renderTable, safeText } from './output.ts';

test('safeText neutralises control characters and bidi overrides', () => {
  assert.equal(safeText('\u001b]0;pwned\u0007title'), '\\u001b]0;pwned\\u0007title');
  assert.equal(safeText('line\nbreak\rreturn'), 'line\\u000abreak\\u000dreturn');
  assert.equal(safeText('admin\u202egnp.exe'), 'admin\\u202egnp.exe');
  assert.equal(safeText('\u009b31m'), '\\u009b31m');
  assert.equal(safeText('plain-name_1.bin'), 'plain-name_1.bin');
  assert.equal(safeText('café ✓'), 'café ✓');
  assert.equal(safeText(null), '-');
  assert.equal(safeText(''), '-');
  assert.equal(safeText({ a: 1 }), '{"a":1}');
});

test('tables and fields pass every cell through safeText', () => {
  const t = renderTable([{ header: 'NAME', value: (r: { n: string }) => r.n }], [{ n: 'x\u001b[2Jy' }]);
  assert.ok(!t.includes('\u001b'));
  const f = renderFields([['description', 'a\u001b[1Ab']]);
  assert.ok(!f.includes('\u001b'));
});

test('renderTable aligns columns and trims trailing space', () => {
  const t = renderTable(
    [
      { header: 'A', value: (r: { a: string; b: string }) => r.a },
      { header: 'B', value: (r) => r.b },
    ],
    [
      { a: 'long-value', b: '1' },
      { a: 'x', b: '' },
    ],
  );
  assert.equal(t, 'A           B\nlong-value  1\nx           -\n');
});

test('formatBytes', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(5 * 1024 * 1024), '5.0 MiB');
  assert.equal(formatBytes(150 * 1024 ** 3), '150 GiB');
});

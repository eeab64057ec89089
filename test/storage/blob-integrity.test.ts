// Integrity on read: a blob changed on disk after it was stored (or after it was last
// verified) fails its whole-file read instead of being served as the recorded digest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { after, test } from 'node:test';
import { FsBlobStore } from '../../src/storage/index.ts';

const root = mkdtempSync(join(tmpdir(), 'mk-blob-int-'));
after(() => rmSync(root, { recursive: true, force: true }));

async function* chunks(s: string) {
  yield Buffer.from(s);
}

test('a verified blob is served again; once its bytes change on disk, the read fails', async () => {
  const store = await FsBlobStore.open(root);
  const body = 'model weights v1';
  const { sha256 } = await store.put(chunks(body), { maxBytes: 1024 });
  assert.equal(sha256, createHash('sha256').update(body).digest('hex'));
  const first = await store.open(sha256);
  assert.ok(first);
  assert.equal(await text(first), body);
  const second = await store.open(sha256);
  assert.ok(second);
  assert.equal(await text(second), body, 'the verified blob is served again');

  // An insider edits the stored file in place (same size).
  writeFileSync(join(root, 'sha256', sha256.slice(0, 2), sha256), 'model weights v2');
  const tampered = await store.open(sha256);
  assert.ok(tampered);
  await assert.rejects(text(tampered), /integrity check/);

  // A range read is not hashed (it cannot be), but a whole read keeps failing.
  const again = await store.open(sha256);
  assert.ok(again);
  await assert.rejects(text(again), /integrity check/);
});

test('a blob tampered with before its first read is never served whole', async () => {
  const store = await FsBlobStore.open(join(root, 'b'));
  const { sha256 } = await store.put(chunks('original bytes'), { maxBytes: 1024 });
  writeFileSync(join(root, 'b', 'sha256', sha256.slice(0, 2), sha256), 'replaced bytes');
  const s = await store.open(sha256);
  assert.ok(s);
  await assert.rejects(text(s), /integrity check/);
});

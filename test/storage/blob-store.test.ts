// FsBlobStore: content addressing, limits, digest checks and crash leftovers. Every
// failure path must leave nothing under sha256/ and nothing in tmp/.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { isModelkeepError } from '../../src/core/index.ts';
import { FsBlobStore } from '../../src/storage/index.ts';

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Yields `data` in slices of `size` bytes, each a fresh copy, with an await between them. */
async function* chunks(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) {
    await Promise.resolve();
    yield Buffer.from(data.subarray(off, off + size));
  }
}

/** Every regular file below `dir` (relative paths). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(dir.length + 1))
    .sort();
}

async function readAll(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('FsBlobStore', () => {
  let root: string;
  let store: FsBlobStore;
  const dirs: string[] = [];
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'mk-blobs-'));
    dirs.push(root);
    store = await FsBlobStore.open(root);
  });
  after(async () => {
    await store.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A store of its own, so failure tests can assert "nothing at all under sha256/". */
  async function freshStore(): Promise<{ root: string; store: FsBlobStore }> {
    const r = mkdtempSync(join(tmpdir(), 'mk-blobs-'));
    dirs.push(r);
    return { root: r, store: await FsBlobStore.open(r) };
  }

  async function assertNothingStored(r: string, s: FsBlobStore): Promise<void> {
    assert.deepEqual(filesUnder(join(r, 'sha256')), []);
    assert.deepEqual(await s.tempFiles(), []);
  }

  test('put of a multi-chunk source stores it at sha256/ab/<digest> with mode 0600', async () => {
    // 3.5 MiB in odd-sized chunks: several batched writes and a partial last batch.
    const data = randomBytes(3.5 * MiB);
    const digest = sha256(data);
    const info = await store.put(chunks(data, 300_001), { maxBytes: 4 * MiB });
    assert.deepEqual(info, { sha256: digest, size: data.length });
    const path = join(root, 'sha256', digest.slice(0, 2), digest);
    assert.deepEqual(filesUnder(join(root, 'sha256')), [join(digest.slice(0, 2), digest)]);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.ok((await readFile(path)).equals(data));
    assert.deepEqual(await store.stat(digest), { size: data.length });
    assert.deepEqual(await store.tempFiles(), []);
  });

  test('identical content put twice is stored once and both puts succeed', async () => {
    const data = randomBytes(MiB + 17);
    const digest = sha256(data);
    const a = await store.put(chunks(data, 65_536), { maxBytes: 2 * MiB });
    const b = await store.put(chunks(data, 1_000_000), { maxBytes: 2 * MiB, expectedSha256: digest });
    assert.deepEqual(a, { sha256: digest, size: data.length });
    assert.deepEqual(b, a);
    assert.equal(filesUnder(join(root, 'sha256')).filter((f) => f.endsWith(digest)).length, 1);
    const s = await store.open(digest);
    assert.ok(s);
    assert.ok((await readAll(s)).equals(data));
    assert.deepEqual(await store.tempFiles(), []);
  });

  test('an empty source stores the empty blob', async () => {
    const info = await store.put(chunks(Buffer.alloc(0), 1), { maxBytes: 1 });
    assert.deepEqual(info, { sha256: sha256(new Uint8Array(0)), size: 0 });
  });

  test('exceeding maxBytes fails with payload_too_large and stores nothing', async () => {
    const f = await freshStore();
    const data = randomBytes(3 * MiB);
    await assert.rejects(f.store.put(chunks(data, 256 * 1024), { maxBytes: 2 * MiB + 1 }), (err) => isModelkeepError(err) && err.code === 'payload_too_large');
    await assertNothingStored(f.root, f.store);
    // Exactly at the limit is accepted.
    const ok = await f.store.put(chunks(data.subarray(0, 2 * MiB + 1), MiB), { maxBytes: 2 * MiB + 1 });
    assert.equal(ok.size, 2 * MiB + 1);
  });

  test('a digest mismatch fails with digest_mismatch and stores nothing', async () => {
    const f = await freshStore();
    const data = randomBytes(2 * MiB + 5);
    const wrong = sha256(Buffer.concat([data, Buffer.from('x')]));
    await assert.rejects(f.store.put(chunks(data, 512 * 1024), { maxBytes: 4 * MiB, expectedSha256: wrong }), (err) => {
      return isModelkeepError(err) && err.code === 'digest_mismatch';
    });
    await assertNothingStored(f.root, f.store);
    assert.equal(await f.store.stat(sha256(data)), null);
    assert.equal(await f.store.stat(wrong), null);
  });

  test('a source that throws midway (client abort) leaves nothing', async () => {
    const f = await freshStore();
    const data = randomBytes(4 * MiB);
    const abort = new Error('client went away');
    let sent = 0;
    async function* aborting(): AsyncGenerator<Uint8Array> {
      for await (const c of chunks(data, 512 * 1024)) {
        yield c;
        sent += c.byteLength;
        // Past the first batched write: bytes are already on disk in tmp when it fails.
        if (sent >= 2.5 * MiB) throw abort;
      }
    }
    let seenOnDisk = 0;
    await assert.rejects(
      f.store.put(aborting(), {
        maxBytes: 8 * MiB,
        onBytes: () => {
          seenOnDisk = Math.max(seenOnDisk, ...readdirSync(join(f.root, 'tmp')).map((n) => statSync(join(f.root, 'tmp', n)).size));
        },
      }),
      (err) => err === abort,
    );
    assert.ok(seenOnDisk >= MiB, 'the partial upload had reached the temp file');
    await assertNothingStored(f.root, f.store);
    assert.equal(await f.store.stat(sha256(data)), null);
  });

  test('open with a range returns exactly those bytes', async () => {
    const data = randomBytes(3 * MiB + 123);
    const { sha256: digest } = await store.put(chunks(data, MiB), { maxBytes: 4 * MiB });
    const ranges = [
      { start: 0, end: 0 },
      { start: 10, end: 19 },
      { start: MiB - 5, end: MiB + 5 }, // across a read-chunk boundary
      { start: 1, end: 3 * MiB }, // more than one read chunk
      { start: data.length - 1, end: data.length - 1 },
    ];
    for (const r of ranges) {
      const s = await store.open(digest, r);
      assert.ok(s);
      const got = await readAll(s);
      assert.equal(got.length, r.end - r.start + 1, `length of ${r.start}-${r.end}`);
      assert.ok(got.equals(data.subarray(r.start, r.end + 1)), `bytes of ${r.start}-${r.end}`);
    }
  });

  test('open and stat of an unknown digest return null', async () => {
    const unknown = sha256(Buffer.from('never stored'));
    assert.equal(await store.open(unknown), null);
    assert.equal(await store.open(unknown, { start: 0, end: 1 }), null);
    assert.equal(await store.stat(unknown), null);
  });

  test('reopening the store clears temp files left by a crash and keeps blobs', async () => {
    const f = await freshStore();
    const data = randomBytes(MiB);
    const kept = await f.store.put(chunks(data, MiB), { maxBytes: MiB });
    // What a process killed mid-upload leaves behind.
    writeFileSync(join(f.root, 'tmp', 'up_crashed'), randomBytes(64 * 1024));
    writeFileSync(join(f.root, 'tmp', 'up_crashed_empty'), '');
    assert.deepEqual((await f.store.tempFiles()).sort(), ['up_crashed', 'up_crashed_empty']);
    const reopened = await FsBlobStore.open(f.root);
    assert.deepEqual(await reopened.tempFiles(), []);
    assert.deepEqual(filesUnder(join(f.root, 'sha256')), [join(kept.sha256.slice(0, 2), kept.sha256)]);
    const s = await reopened.open(kept.sha256);
    assert.ok(s);
    assert.ok((await readAll(s)).equals(data));
    await reopened.close();
  });
});

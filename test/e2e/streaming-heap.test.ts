// Artifacts larger than the server's memory stream through it. The server runs in a child
// process with a 48 MB V8 heap; a 160 MiB artifact goes up and comes back down. A server
// that buffered the body as a string or in the heap would die of a heap OOM; one that
// buffered it in Buffers (outside the V8 heap) would show a peak RSS grown by the whole
// artifact, which the memory check below catches.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, expectOk, json, PASSWORD, stepUpWithNewTotp } from '../helpers/server.ts';
import { type ChildServer, digestOf, MiB, Payload, spawnServer, streamUpload } from './fixtures/harness.ts';

const SIZE = 160 * MiB;
const HEAP_MB = 48;
const ARTIFACT = '/v1/projects/heap/models/big/versions/1/artifacts/weights/model.bin';

describe('streaming an artifact larger than the server heap', () => {
  let dataDir: string;
  let server: ChildServer | undefined;
  let mle: Client;
  const payload = new Payload(SIZE);
  let uploadedSha256 = '';

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'mk-heap-'));
    server = await spawnServer(
      {
        dataDir,
        users: [
          { username: 'admin', password: PASSWORD, platformAdmin: true },
          { username: 'mle', password: PASSWORD, platformAdmin: false },
        ],
      },
      // Node 24 sizes the young generation apart from --max-old-space-size (up to 192 MB
      // more); a small semi-space keeps the whole V8 heap near 48 MB.
      [`--max-old-space-size=${HEAP_MB}`, '--max-semi-space-size=2'],
    );
    const admin = new Client(server.url);
    await expectOk(await admin.login('admin'));
      // Granting roles needs a fresh second factor: the admin enrolls one and steps up.
      await stepUpWithNewTotp(admin);
    await expectOk(await admin.post('/v1/projects', { name: 'heap' }));
    await expectOk(await admin.post('/v1/projects/heap/bindings', { principal: 'user:mle', role: 'ml-engineer' }));
    mle = new Client(server.url);
    await expectOk(await mle.login('mle'));
    await expectOk(await mle.post('/v1/projects/heap/models', { name: 'big' }));
    await expectOk(await mle.post('/v1/projects/heap/models/big/versions', {}));
  });

  after(async () => {
    await server?.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('the heap limit is in force in the server child', async () => {
    const s = await server!.stats();
    // Old space plus young generation: the whole V8 heap is far smaller than the artifact.
    assert.ok(s.heapLimit <= (HEAP_MB + 8) * MiB, `heap limit ${s.heapLimit}`);
  });

  test('a 160 MiB upload streams in, is finalized and streams back out intact', async () => {
    const srv = server!;
    const before = await srv.stats();
    const hash = createHash('sha256');
    const up = await streamUpload(`${srv.url}${ARTIFACT}`, mle.headers(), payload.stream({ hash }), SIZE);
    uploadedSha256 = hash.digest('hex');
    assert.equal(up.status, 201, `upload failed: ${up.body}\n${srv.stderr()}`);
    const art = JSON.parse(up.body) as { path: string; size: number; sha256: string };
    assert.deepEqual(art.size, SIZE);
    assert.equal(art.sha256, uploadedSha256);
    assert.ok(srv.alive(), `server died during upload:\n${srv.stderr()}`);

    await expectOk(await mle.post('/v1/projects/heap/models/big/versions/1/finalize'));

    const down = await mle.get(ARTIFACT);
    assert.equal(down.status, 200);
    assert.equal(down.headers.get('content-length'), String(SIZE));
    assert.equal(down.headers.get('x-content-sha256'), uploadedSha256);
    assert.ok(down.body);
    const got = await digestOf(down.body);
    assert.deepEqual(got, { sha256: uploadedSha256, size: SIZE });

    assert.ok(srv.alive(), `server died:\n${srv.stderr()}`);
    assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
    const after = await srv.stats();
    // 160 MiB went up and 160 MiB came down: a server holding either whole, in the heap or
    // in Buffers, would have peaked at least that far above its resident size before.
    // (The peak also covers start-up and logins: argon2 hashing adds some 20 MiB.)
    const growth = after.maxRss - before.rss;
    assert.ok(growth < SIZE / 2, `peak RSS was ${(growth / MiB).toFixed(1)} MiB above the resident size before the transfer`);
  });

  test('a Range request returns exactly the requested bytes', async () => {
    assert.ok(uploadedSha256, 'the upload test ran first');
    const ranges: Array<[number, number]> = [
      [5 * MiB - 10, 5 * MiB + 20], // across a chunk boundary
      [100 * MiB + 3, 103 * MiB + 7], // several MiB in the middle
      [SIZE - 100, SIZE - 1], // the tail
    ];
    for (const [start, end] of ranges) {
      const r = await mle.get(ARTIFACT, { range: `bytes=${start}-${end}` });
      assert.equal(r.status, 206);
      assert.equal(r.headers.get('content-range'), `bytes ${start}-${end}/${SIZE}`);
      const body = Buffer.from(await r.arrayBuffer());
      assert.equal(body.length, end - start + 1);
      assert.ok(body.equals(payload.slice(start, end)), `bytes ${start}-${end} differ`);
    }
    const suffix = await mle.get(ARTIFACT, { range: 'bytes=-16' });
    assert.equal(suffix.status, 206);
    assert.ok(Buffer.from(await suffix.arrayBuffer()).equals(payload.slice(SIZE - 16, SIZE - 1)));
    assert.ok(server!.alive());
    const v = await json<{ state: string; artifacts: Array<{ size: number }> }>(await mle.get('/v1/projects/heap/models/big/versions/1'));
    assert.equal(v.state, 'ready');
    assert.deepEqual(
      v.artifacts.map((a) => a.size),
      [SIZE],
    );
  });
});

// Crash safety of uploads: a client cut off mid-body and a server killed mid-body both
// leave no artifact row, no blob under its digest and (after restart) no temp file.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, type Backend, Client, createPgDatabase, expectOk, json, PASSWORD, stepUpWithNewTotp, type World, world } from '../helpers/server.ts';
import { type ChildServer, digestOf, filesUnder, largestFileIn, MiB, Payload, spawnServer, startPartialUpload, streamUpload, waitFor } from './fixtures/harness.ts';

const SIZE = 20 * MiB;
const HALF = 10 * MiB;
const VERSION = '/v1/projects/fraud/models/crash/versions/1';
const ARTIFACT = `${VERSION}/artifacts/weights/model.bin`;

interface VersionBody {
  state: string;
  artifacts: Array<{ path: string; sha256: string; size: number }>;
}

/** Uploads the whole payload, checks the answer, finalizes and reads it back. */
async function uploadAndVerify(c: Client, payload: Payload): Promise<void> {
  const hash = createHash('sha256');
  const up = await streamUpload(`${c.base}${ARTIFACT}`, c.headers(), payload.stream({ hash }), payload.size);
  const digest = hash.digest('hex');
  assert.equal(up.status, 201, up.body);
  assert.equal((JSON.parse(up.body) as { sha256: string }).sha256, digest);
  await expectOk(await c.post(`${VERSION}/finalize`));
  const down = await c.get(ARTIFACT);
  assert.equal(down.status, 200);
  assert.ok(down.body);
  assert.deepEqual(await digestOf(down.body), { sha256: digest, size: payload.size });
}

/** No file under blobs/sha256 holds (a prefix of) the payload. */
function assertNoPartialBlob(blobsDir: string, payload: Payload): void {
  const head = payload.slice(0, 4095);
  for (const f of filesUnder(join(blobsDir, 'sha256'))) {
    const content = readFileSync(join(blobsDir, 'sha256', f));
    assert.ok(!content.subarray(0, head.length).equals(head), `blob ${f} holds part of the interrupted upload`);
  }
}

for (const backend of BACKENDS) {
  describe(`a client that aborts mid-upload (${backend})`, () => {
    let w: World;
    before(async () => {
      w = await world(backend);
      const c = w.as['ml-engineer'];
      await expectOk(await c.post('/v1/projects/fraud/models', { name: 'crash' }));
      await expectOk(await c.post('/v1/projects/fraud/models/crash/versions', {}));
    });
    after(() => w?.server.close());

    test('leaves no artifact, no blob and an empty tmp folder', async () => {
      const c = w.as['ml-engineer'];
      const blobs = w.server.services.blobs;
      const blobsDir = join(w.server.dataDir, 'blobs');
      const payload = new Payload(SIZE);
      const { req, settled } = await startPartialUpload(`${c.base}${ARTIFACT}`, c.headers(), payload, HALF);
      // The server has taken in part of the body: a temp file is growing.
      await waitFor('the partial upload to reach the temp file', () => (largestFileIn(join(blobsDir, 'tmp')) >= 4 * MiB ? true : undefined));
      req.destroy();
      await settled;
      await waitFor('the temp folder to empty', async () => ((await blobs.tempFiles()).length === 0 ? true : undefined));

      const v = await json<VersionBody>(await c.get(VERSION));
      assert.deepEqual(v.artifacts, []);
      assert.deepEqual(filesUnder(join(blobsDir, 'sha256')), []);
      // The failure is on record (written just after the temp file is removed).
      const audit = await waitFor('the failed upload in the audit log', async () => {
        const events = await w.server.services.audit.query({ action: 'artifact.upload', limit: 1000 });
        return events.some((e) => e.outcome === 'failure') ? events : undefined;
      });
      assert.ok(!audit.some((e) => e.outcome === 'success'));

      // The path is free: the same upload, sent whole, succeeds.
      await uploadAndVerify(c, payload);
      assert.deepEqual(await blobs.tempFiles(), []);
    });
  });
}

async function killMidUpload(backend: Backend): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mk-crash-'));
  const pgdb = backend === 'postgres' ? await createPgDatabase() : null;
  const base = { dataDir, ...(pgdb ? { databaseUrl: pgdb.url } : {}) };
  const children: ChildServer[] = [];
  try {
    let server = await spawnServer({
      ...base,
      users: [
        { username: 'admin', password: PASSWORD, platformAdmin: true },
        { username: 'mle', password: PASSWORD, platformAdmin: false },
      ],
    });
    children.push(server);
    const admin = new Client(server.url);
    await expectOk(await admin.login('admin'));
      // Granting roles needs a fresh second factor: the admin enrolls one and steps up.
      await stepUpWithNewTotp(admin);
    await expectOk(await admin.post('/v1/projects', { name: 'fraud' }));
    await expectOk(await admin.post('/v1/projects/fraud/bindings', { principal: 'user:mle', role: 'ml-engineer' }));
    let c = new Client(server.url);
    await expectOk(await c.login('mle'));
    await expectOk(await c.post('/v1/projects/fraud/models', { name: 'crash' }));
    await expectOk(await c.post('/v1/projects/fraud/models/crash/versions', {}));

    const blobsDir = join(dataDir, 'blobs');
    const payload = new Payload(SIZE);
    const { req, settled } = await startPartialUpload(`${server.url}${ARTIFACT}`, c.headers(), payload, HALF);
    await waitFor('the partial upload to reach the temp file', () => (largestFileIn(join(blobsDir, 'tmp')) >= 4 * MiB ? true : undefined));

    // A real crash: no handler runs, nothing is cleaned up.
    const exit = await server.kill('SIGKILL');
    assert.equal(exit.signal, 'SIGKILL');
    await settled;
    req.destroy();
    // What the crash left: a partial temp file, and nothing under any digest.
    assert.ok(largestFileIn(join(blobsDir, 'tmp')) >= 4 * MiB, 'the killed server left its temp file behind');
    assert.deepEqual(filesUnder(join(blobsDir, 'sha256')), []);

    server = await spawnServer(base);
    children.push(server);
    assert.deepEqual(filesUnder(join(blobsDir, 'tmp')), [], 'start-up clears temp files');
    assert.deepEqual(filesUnder(join(blobsDir, 'sha256')), []);
    assertNoPartialBlob(blobsDir, payload);

    c = new Client(server.url);
    await expectOk(await c.login('mle'));
    const v = await json<VersionBody>(await c.get(VERSION));
    assert.equal(v.state, 'draft');
    assert.deepEqual(v.artifacts, []);

    // The same path uploads cleanly after the restart.
    await uploadAndVerify(c, payload);
    assert.deepEqual(filesUnder(join(blobsDir, 'tmp')), []);
    assert.equal(filesUnder(join(blobsDir, 'sha256')).length, 1);
    assert.ok(server.alive());
  } finally {
    for (const child of children) await child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
    await pgdb?.drop();
  }
}

describe('a server killed mid-upload and restarted on the same data', () => {
  for (const backend of BACKENDS) {
    test(`leaves no artifact and no partial blob, and the upload then succeeds (${backend})`, () => killMidUpload(backend));
  }
});

// MC-ART-05 — integrity and immutability. A declared digest that does not match is
// refused and nothing is kept; a finalized version's artifacts never change; a path is
// written once (even under a race); promotion pins the digests; every successful write is
// in the audit log with its digest.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, type Client, json, type World, world } from '../helpers/server.ts';

const MODEL = '/v1/projects/fraud/models/integrity';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface Artifact {
  path: string;
  size: number;
  sha256: string;
}
interface Version {
  version: number;
  state: string;
  stage: string;
  artifacts: Artifact[];
}
interface ErrorBody {
  error: { code: string; message: string };
}

for (const backend of BACKENDS) {
  describe(`MC-ART-05 integrity and immutability (${backend})`, () => {
    let w: World;
    let c: Client;
    /** Every artifact this file uploaded successfully: [resource, sha256]. */
    const uploaded: [string, string][] = [];

    before(async () => {
      w = await world(backend);
      c = w.as['ml-engineer'];
      assert.equal((await c.post('/v1/projects/fraud/models', { name: 'integrity' })).status, 201);
    });
    after(() => w.server.close());

    const newVersion = async (): Promise<number> => {
      const r = await c.post(`${MODEL}/versions`, {});
      assert.equal(r.status, 201);
      return (await json<Version>(r)).version;
    };
    const getVersion = async (v: number) => json<Version>(await c.get(`${MODEL}/versions/${v}`));
    const upload = async (v: number, path: string, content: string, extra: Record<string, string> = {}) => {
      const r = await c.upload(`${MODEL}/versions/${v}/artifacts/${path}`, content, extra);
      if (r.status === 201) uploaded.push([`artifact:fraud/integrity@${v}/${path}`, sha(content)]);
      return r;
    };
    const blobExists = (digest: string) => existsSync(join(w.server.dataDir, 'blobs', 'sha256', digest.slice(0, 2), digest));

    test('a declared X-Content-SHA256 that does not match the content → 422 digest_mismatch, nothing stored', async () => {
      const v = await newVersion();
      const content = `tampered in transit ${backend}`;
      const r = await upload(v, 'model.bin', content, { 'x-content-sha256': sha('what the client meant to send') });
      assert.equal(r.status, 422);
      assert.equal((await json<ErrorBody>(r)).error.code, 'digest_mismatch');
      assert.deepEqual((await getVersion(v)).artifacts, []);
      assert.ok(!blobExists(sha(content)), 'the mismatching content was not kept under its digest');
      assert.deepEqual(await w.server.services.blobs.tempFiles(), []);

      const ok = await upload(v, 'model.bin', content, { 'x-content-sha256': sha(content) });
      assert.equal(ok.status, 201, 'the matching digest is accepted (the check is not just refusing everything)');
      assert.equal((await json<Artifact>(ok)).sha256, sha(content));
      assert.ok(blobExists(sha(content)));
    });

    test('a malformed declared digest → 422, nothing stored', async () => {
      const v = await newVersion();
      const content = `malformed digest ${backend}`;
      const d = sha(content);
      for (const bad of ['abc', `sha256:${d}`, `${d}0`, d.slice(1), `${d.slice(0, 63)}g`, Buffer.from(d, 'hex').toString('base64'), ' ', `${d} ${d}`]) {
        const r = await upload(v, 'model.bin', content, { 'x-content-sha256': bad });
        assert.equal(r.status, 422, `declared digest ${JSON.stringify(bad)}`);
        assert.equal((await json<ErrorBody>(r)).error.code, 'invalid_input');
      }
      assert.deepEqual((await getVersion(v)).artifacts, []);
      assert.ok(!blobExists(d));
      assert.deepEqual(await w.server.services.blobs.tempFiles(), []);
    });

    test('upload to a finalized version → 409 version_immutable, the artifact is unchanged', async () => {
      const v = await newVersion();
      const original = `original weights ${backend}`;
      assert.equal((await upload(v, 'model.bin', original)).status, 201);
      assert.equal((await c.post(`${MODEL}/versions/${v}/finalize`)).status, 200);
      for (const path of ['model.bin', 'extra.bin']) {
        const r = await upload(v, path, `swapped ${path}`);
        assert.equal(r.status, 409, path);
        assert.equal((await json<ErrorBody>(r)).error.code, 'version_immutable');
      }
      const kept = await getVersion(v);
      assert.deepEqual(
        kept.artifacts.map((a) => [a.path, a.sha256]),
        [['model.bin', sha(original)]],
      );
      const down = await c.get(`${MODEL}/versions/${v}/artifacts/model.bin`);
      assert.equal(await down.text(), original);
    });

    test('a second upload to the same path of a draft → 409, the first content stays', async () => {
      const v = await newVersion();
      assert.equal((await upload(v, 'model.bin', 'first')).status, 201);
      const r = await upload(v, 'model.bin', 'second');
      assert.equal(r.status, 409);
      assert.equal((await json<ErrorBody>(r)).error.code, 'conflict');
      assert.deepEqual(
        (await getVersion(v)).artifacts.map((a) => [a.path, a.sha256]),
        [['model.bin', sha('first')]],
      );
      assert.equal(await (await c.get(`${MODEL}/versions/${v}/artifacts/model.bin`)).text(), 'first');
    });

    test('promotion does not change digests, and the promoted version stays immutable', async () => {
      const v = await newVersion();
      const files = { 'model.onnx': `onnx ${backend}`, 'config/params.json': '{"lr":0.1}' };
      for (const [p, content] of Object.entries(files)) assert.equal((await upload(v, p, content)).status, 201);
      assert.equal((await c.post(`${MODEL}/versions/${v}/finalize`)).status, 200);
      const pinned = (await getVersion(v)).artifacts.map((a) => [a.path, a.sha256, a.size]);
      assert.deepEqual(
        pinned,
        Object.entries(files)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([p, content]) => [p, sha(content), Buffer.byteLength(content)]),
      );

      assert.equal((await c.post(`${MODEL}/versions/${v}/promote`, { stage: 'staging' })).status, 200);
      assert.deepEqual((await getVersion(v)).artifacts.map((a) => [a.path, a.sha256, a.size]), pinned);
      assert.equal((await w.as['release-manager'].post(`${MODEL}/versions/${v}/promote`, { stage: 'production' })).status, 200);
      const promoted = await getVersion(v);
      assert.equal(promoted.stage, 'production');
      assert.deepEqual(promoted.artifacts.map((a) => [a.path, a.sha256, a.size]), pinned);

      // Swapping the artifact after promotion is refused like any change to a ready version.
      const swap = await upload(v, 'model.onnx', 'swapped after promotion');
      assert.equal(swap.status, 409);
      assert.equal((await json<ErrorBody>(swap)).error.code, 'version_immutable');
      const down = await c.get(`${MODEL}/versions/${v}/artifacts/model.onnx`);
      assert.equal(down.headers.get('x-content-sha256'), sha(files['model.onnx']));
      assert.equal(down.headers.get('etag'), `"${sha(files['model.onnx'])}"`);
      assert.equal(await down.text(), files['model.onnx']);

      // The promotion's audit event pins the same digests.
      const events = await json<{ events: { resource: string; details: { to?: string; artifacts?: { path: string; sha256: string }[] } }[] }>(
        await w.admin.get('/v1/audit/events?action=version.promote&limit=1000'),
      );
      const prod = events.events.find((e) => e.resource === `version:fraud/integrity@${v}` && e.details.to === 'production');
      assert.ok(prod, 'the promotion to production is audited');
      assert.deepEqual(
        prod.details.artifacts?.map((a) => [a.path, a.sha256]),
        pinned.map(([p, d]) => [p, d]),
      );
    });

    test('two concurrent uploads to the same path → exactly one 201, the other 409', async () => {
      // Several rounds: a race that is lost only sometimes still shows up.
      for (let round = 0; round < 6; round++) {
        const v = await newVersion();
        const a = `racer A round ${round} ${backend}`;
        const b = `racer B round ${round} ${backend}`;
        const [ra, rb] = await Promise.all([upload(v, 'model.bin', a), upload(v, 'model.bin', b)]);
        const statuses = [ra.status, rb.status].sort();
        assert.deepEqual(statuses, [201, 409], `round ${round}: ${await ra.clone().text()} / ${await rb.clone().text()}`);
        const winner = ra.status === 201 ? a : b;
        const loser = ra.status === 201 ? rb : ra;
        assert.equal((await json<ErrorBody>(loser)).error.code, 'conflict');
        const arts = (await getVersion(v)).artifacts;
        assert.deepEqual(
          arts.map((x) => [x.path, x.sha256]),
          [['model.bin', sha(winner)]],
          `round ${round}: one artifact, the winner's`,
        );
        assert.equal(await (await c.get(`${MODEL}/versions/${v}/artifacts/model.bin`)).text(), winner);
      }
      assert.deepEqual(await w.server.services.blobs.tempFiles(), []);
    });

    test('every successful upload has an artifact.upload audit event carrying its sha256', async () => {
      assert.ok(uploaded.length >= 8, 'the tests above uploaded artifacts');
      const r = await w.admin.get('/v1/audit/events?action=artifact.upload&limit=1000');
      assert.equal(r.status, 200);
      const events = (await json<{ events: { action: string; resource: string; outcome: string; details: { sha256?: string; size?: number } }[] }>(r)).events;
      const successes = events.filter((e) => e.outcome === 'success');
      for (const [resource, digest] of uploaded) {
        const e = successes.filter((x) => x.resource === resource);
        assert.equal(e.length, 1, `exactly one success event for ${resource}`);
        assert.equal(e[0]?.details.sha256, digest, `${resource} is audited with its digest`);
        assert.equal(e[0]?.action, 'artifact.upload');
      }
      assert.equal(successes.length, uploaded.length, 'no success event without a stored artifact');
      // The refused digest mismatch is audited too, as a failure.
      assert.ok(events.some((e) => e.outcome === 'failure' && e.resource.endsWith('/model.bin')));
    });
  });
}

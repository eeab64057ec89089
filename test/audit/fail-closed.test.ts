// Fail closed: when the audit log cannot be written, the action does not happen. The
// audit table is renamed away under a running server (as a full disk, a revoked grant or
// a broken replica would make it unwritable); state-changing requests answer 503, and
// once the table is back none of their changes exist and the log still verifies.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { sql } from '../../src/storage/index.ts';
import { BACKENDS, expectOk, json, type World, world } from '../helpers/server.ts';
import { describeResult, newPlace, type Place, pinKey, tempRoot, verifyPlace, withDb } from './fixtures.ts';

const VERSION = '/v1/projects/fraud/models/churn/versions/1';

for (const backend of BACKENDS) {
  describe(`an unwritable audit log stops every change (${backend})`, () => {
    let root = '';
    let place: Place | undefined;
    let w: World | undefined;

    before(async () => {
      root = tempRoot('mk-audit-closed-');
      place = await newPlace(backend, root);
      w = await world(backend, { dataDir: place.dataDir, ...(place.databaseUrl ? { databaseUrl: place.databaseUrl } : {}) });
      const eng = w.as['ml-engineer'];
      await expectOk(await eng.post('/v1/projects/fraud/models', { name: 'churn' }));
      await expectOk(await eng.post('/v1/projects/fraud/models/churn/versions', {}));
    });
    after(async () => {
      await w?.server.close();
      await place?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    test('create model, upload and create project answer 503 and leave no trace', async () => {
      assert.ok(w && place);
      const eng = w.as['ml-engineer'];
      const events = async () => withDb(place!, async (db) => Number((await db.selectFrom('audit_head').select('next_seq').executeTakeFirstOrThrow()).next_seq) - 1);
      const before = await events();

      // An insider (or a failing disk) takes the audit table away from the running server.
      await withDb(place, (db) => sql`ALTER TABLE audit_events RENAME TO audit_events_away`.execute(db).then(() => {}));
      try {
        const model = await eng.post('/v1/projects/fraud/models', { name: 'ghost' });
        assert.equal(model.status, 503, await model.text());
        const upload = await eng.upload(`${VERSION}/artifacts/weights.bin`, 'model weights');
        assert.equal(upload.status, 503, await upload.text());
        const project = await w.admin.post('/v1/projects', { name: 'ghost-project' });
        assert.equal(project.status, 503, await project.text());
      } finally {
        await withDb(place, (db) => sql`ALTER TABLE audit_events_away RENAME TO audit_events`.execute(db).then(() => {}));
      }
      // Not even half a write: no sequence number was used up by the failed requests.
      assert.equal(await events(), before);

      assert.equal((await eng.get('/v1/projects/fraud/models/ghost')).status, 404);
      const v = await json<{ artifacts: unknown[] }>(await expectOk(await eng.get(VERSION)));
      assert.deepEqual(v.artifacts, []);
      assert.equal((await w.admin.get('/v1/projects/ghost-project')).status, 404);
      // and no leaf without its event: the log verifies
      assert.ok(await w.server.services.auditTree.signNow());
      const r = await verifyPlace(place, pinKey(place.dataDir, root));
      assert.ok(r.ok, describeResult(r));

      // The same requests succeed once the log is writable again.
      await expectOk(await eng.post('/v1/projects/fraud/models', { name: 'ghost' }));
      await expectOk(await eng.upload(`${VERSION}/artifacts/weights.bin`, 'model weights'));
    });
  });
}

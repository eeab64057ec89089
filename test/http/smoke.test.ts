import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`registry round trip (${backend})`, () => {
    let w: World;
    before(async () => {
      w = await world(backend);
    });
    after(() => w.server.close());

    test('an ml-engineer creates, uploads, finalizes and downloads a version', async () => {
      const c = w.as['ml-engineer'];
      assert.equal((await c.post('/v1/projects/fraud/models', { name: 'churn' })).status, 201);
      const v = await json<{ version: number; state: string }>(await c.post('/v1/projects/fraud/models/churn/versions', {}));
      assert.deepEqual([v.version, v.state], [1, 'draft']);
      const up = await c.upload('/v1/projects/fraud/models/churn/versions/1/artifacts/model.bin', 'weights');
      assert.equal(up.status, 201);
      assert.equal((await c.post('/v1/projects/fraud/models/churn/versions/1/finalize')).status, 200);
      const down = await c.get('/v1/projects/fraud/models/churn/versions/1/artifacts/model.bin');
      assert.equal(down.status, 200);
      assert.equal(await down.text(), 'weights');
    });

    test('audit filters that are not short printable strings are invalid input, on every backend', async () => {
      for (const q of ['actor=%00', 'action=a%00b', 'outcome=%0a', 'actor=a&actor=b', `action=${'x'.repeat(201)}`]) {
        const r = await w.admin.get(`/v1/audit/events?${q}`);
        assert.equal(r.status, 422, q);
      }
      assert.equal((await w.admin.get('/v1/audit/events?actor=admin&outcome=allow')).status, 200);
    });
  });
}

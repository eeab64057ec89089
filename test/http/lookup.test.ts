// Reading a model resolves its project and model in one statement (Lookup.projectModel);
// every other route under a model resolves them one by one (project(), then model()).
// Both must give the same answer and write the same audit events for every kind of
// name: present, missing, in a project the caller cannot see, malformed.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, type Client, expectOk, json, PASSWORD, type World, world } from '../helpers/server.ts';

type Who = 'viewer' | 'outsider';
const CASES: readonly [Who, string, string][] = [
  ['viewer', 'fraud', 'churn'],
  ['viewer', 'fraud', 'nope'],
  ['viewer', 'nope', 'churn'],
  ['viewer', 'other', 'churn'],
  ['viewer', 'other', 'nope'],
  ['viewer', 'fraud', 'Bad_Name'],
  ['viewer', 'nope', 'Bad_Name'],
  ['viewer', 'other', 'Bad_Name'],
  ['viewer', 'Bad_Name', 'churn'],
  ['outsider', 'fraud', 'churn'],
];

for (const backend of BACKENDS) {
  describe(`model lookup in one statement matches project() then model() (${backend})`, () => {
    let w: World;
    before(async () => {
      w = await world(backend);
      await expectOk(await w.as['ml-engineer'].post('/v1/projects/fraud/models', { name: 'churn', description: 'who leaves' }));
      await expectOk(await w.admin.post('/v1/admin/users', { username: 'other-engineer', password: PASSWORD }));
      await expectOk(await w.admin.post('/v1/projects/other/bindings', { principal: 'user:other-engineer', role: 'ml-engineer' }));
      await expectOk(await (await w.client('other-engineer')).post('/v1/projects/other/models', { name: 'churn' }));
    });
    after(async () => await w?.server.close());

    /** The response (status, body without its request id) and the audit events it wrote. */
    async function observe(c: Client, path: string) {
      const k = w.server.services.db.kysely;
      const last = await k.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirstOrThrow();
      const r = await c.get(path);
      const body = (await json(r)) as { error?: Record<string, unknown> };
      if (body.error) delete body.error.requestId;
      const events = await k
        .selectFrom('audit_events')
        .select(['action', 'outcome', 'resource', 'reason'])
        .where('seq', '>', Number(last.m ?? 0))
        .orderBy('seq')
        .execute();
      return { status: r.status, body, events };
    }

    for (const [who, p, m] of CASES) {
      test(`${who} asks for ${p}/${m}`, async () => {
        const c = w.as[who];
        const one = await observe(c, `/v1/projects/${p}/models/${m}`);
        const stepwise = await observe(c, `/v1/projects/${p}/models/${m}/versions`);
        assert.equal(one.status, stepwise.status);
        if (one.status === 200) {
          assert.deepEqual(one.body, { project: 'fraud', name: 'churn', description: 'who leaves', sensitivity: 'internal', createdAt: (one.body as { createdAt: string }).createdAt, createdBy: 'ml-engineer' });
          assert.deepEqual(one.events.map((e) => [e.action, e.outcome, e.resource]), [['model:read', 'allow', 'model:fraud/churn']]);
          return;
        }
        assert.deepEqual(one.body, stepwise.body);
        assert.deepEqual(one.events, stepwise.events);
        // Malformed names are refused before anything is looked up; the rest are one 404 and one denial.
        if (one.status === 422) assert.deepEqual(one.events, []);
        else {
          assert.equal(one.status, 404);
          assert.equal(one.events.length, 1);
          assert.equal(one.events[0]?.outcome, 'deny');
        }
      });
    }
  });
}

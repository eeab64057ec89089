// MC-AUD-06 — coverage and hygiene of the audit log: a scripted scenario where every
// request is matched, by its X-Request-Id, to the events it must have written; no secret
// reaches the log; only auditors and admins read it; nobody deletes from it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, Client, json, PASSWORD, type World, world } from '../helpers/server.ts';

interface Ev {
  seq: number;
  action: string;
  outcome: string;
  requestId: string | null;
  actor: string | null;
  time: string;
  ip: string | null;
  resource: string | null;
}

for (const backend of BACKENDS) {
  describe(`MC-AUD-06 audit coverage (${backend})`, () => {
    let w: World;
    let admin: Client;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('every request of the scenario is in the log with who, what, when, where and outcome', async () => {
      const expected: { name: string; r: Response; events: [string, string][] }[] = [];
      const step = async (name: string, r: Promise<Response>, events: [string, string][]) => {
        expected.push({ name, r: await r, events });
      };
      const eng = w.as['ml-engineer'];
      const rm = w.as['release-manager'];
      const stranger = new Client(w.server.url);
      await step('login failure', stranger.login('ml-engineer', 'not the password at all'), [['auth.login', 'failure']]);
      await step('login unknown user', stranger.login('nobody', PASSWORD), [['auth.login', 'failure']]);
      const fresh = new Client(w.server.url);
      await step('login success', fresh.login('data-scientist'), [['auth.login', 'success']]);
      await step('create model', eng.post('/v1/projects/fraud/models', { name: 'audited' }), [
        ['model:create', 'allow'],
        ['model.create', 'success'],
      ]);
      await step('create version', eng.post('/v1/projects/fraud/models/audited/versions', {}), [
        ['version:create', 'allow'],
        ['version.create', 'success'],
      ]);
      // Two decisions: before the first byte is read and again when the artifact is recorded.
      await step('upload', eng.upload('/v1/projects/fraud/models/audited/versions/1/artifacts/m.bin', 'bytes'), [
        ['artifact:upload', 'allow'],
        ['artifact:upload', 'allow'],
        ['artifact.upload', 'success'],
      ]);
      await step('finalize', eng.post('/v1/projects/fraud/models/audited/versions/1/finalize'), [
        ['version:finalize', 'allow'],
        ['version.finalize', 'success'],
      ]);
      await step('denied promotion', eng.post('/v1/projects/fraud/models/audited/versions/1/promote', { stage: 'production' }), [['version:promote', 'deny']]);
      await step('promotion', rm.post('/v1/projects/fraud/models/audited/versions/1/promote', { stage: 'production' }), [
        ['version:promote', 'allow'],
        ['version.promote', 'success'],
      ]);
      await step('download', rm.get('/v1/projects/fraud/models/audited/versions/1/artifacts/m.bin'), [['artifact:download', 'allow']]);
      await step('denied download', w.as.viewer.get('/v1/projects/fraud/models/audited/versions/1/artifacts/m.bin'), [['artifact:download', 'deny']]);
      await step('invisible project', w.as.outsider.get('/v1/projects/fraud/models'), [['project:lookup', 'deny']]);
      await step('role change', w.as['project-admin'].post('/v1/projects/fraud/bindings', { principal: 'user:outsider', role: 'viewer' }), [
        ['binding:manage', 'allow'],
        ['binding.create', 'success'],
      ]);
      await step('admin denied download (least privilege)', w.admin.get('/v1/projects/fraud/models/audited/versions/1/artifacts/m.bin'), [
        ['artifact:download', 'deny'],
      ]);
      await step('logout', fresh.post('/v1/auth/logout'), [['auth.logout', 'success']]);
      const idle = await w.client('auditor');
      clock.advance(31 * 60_000);
      await step('session expiry', idle.get('/v1/me'), [['auth.session_expired', 'failure']]);
      await step('expired session used again (already recorded, no new event)', idle.get('/v1/me'), []);

      // Every earlier session idled out with the clock: sign in afresh to read the log.
      admin = await w.client('admin');
      await step('audit read', admin.get('/v1/audit/events?limit=1000'), [['audit:read', 'allow']]);
      const events = (await json<{ events: Ev[] }>(await admin.get('/v1/audit/events?limit=1000'))).events;
      for (const e of expected) {
        const id = e.r.headers.get('x-request-id');
        assert.ok(id, `${e.name}: response carries X-Request-Id`);
        const mine = events.filter((x) => x.requestId === id).map((x) => [x.action, x.outcome]);
        assert.deepEqual(mine, e.events, `${e.name}: events for request ${id}`);
        for (const x of events.filter((x) => x.requestId === id)) {
          assert.match(x.time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'UTC time');
          assert.ok(x.ip, `${e.name}: where`);
          assert.ok(x.resource, `${e.name}: what`);
        }
      }
      // Sequence numbers are gap-free.
      for (const [i, e] of events.entries()) assert.equal(e.seq, i + 1);
    });

    test('no password, session secret or CSRF token ever reaches the log', async () => {
      const c = await w.client('viewer');
      await new Client(w.server.url).login('viewer', 'a wrong password, not stored');
      const text = JSON.stringify((await json(await admin.get('/v1/audit/events?limit=1000'))).events);
      for (const secret of [PASSWORD, 'a wrong password, not stored', c.csrf ?? 'x', (c.cookie ?? '=x').split('=')[1] ?? 'x']) {
        assert.ok(!text.includes(secret), 'a secret reached the audit log');
      }
    });

    test('only auditors and admins read the log, and nobody can delete from it', async () => {
      for (const role of ['viewer', 'data-scientist', 'ml-engineer', 'release-manager'] as const) {
        assert.equal((await (await w.client(role)).get('/v1/audit/events')).status, 403, role);
      }
      assert.equal((await (await w.client('auditor')).get('/v1/audit/events')).status, 200);
      assert.equal((await new Client(w.server.url).get('/v1/audit/events')).status, 401);
      const before = (await json<{ events: Ev[] }>(await admin.get('/v1/audit/events?limit=1000'))).events.length;
      for (const path of ['/v1/audit/events', '/v1/audit/events/1']) {
        for (const method of ['DELETE', 'PUT', 'PATCH']) {
          const r = await admin.req(method, path, method === 'DELETE' ? undefined : {});
          assert.ok(r.status === 404 || r.status === 405, `${method} ${path} → ${r.status}`);
        }
      }
      const afterEvents = (await json<{ events: Ev[] }>(await admin.get('/v1/audit/events?limit=1000'))).events;
      assert.ok(afterEvents.length >= before, 'nothing was deleted');
      for (const [i, e] of afterEvents.entries()) assert.equal(e.seq, i + 1);
    });
  });
}

// MC-AZ-06 — expiry and TOCTOU of time-boxed grants. A grant used one second after its
// end is denied (at the next request, before any sweep, whatever was allowed just
// before); the denial is in the audit log; the expiry itself is audited once; a grant
// cannot be stretched past the configured horizon. (Tokens minted under a grant and the
// decision cache are covered where they are built; the guard reads bindings at decision
// time, so a cached allow must not outlive the binding's expiresAt.)
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, type Client, expectOk, json, PASSWORD, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`MC-AZ-06 grant expiry (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    let temp: Client;
    let bindingId = '';
    let end = 0;

    before(async () => {
      w = await world(backend, { clock, config: { sessions: { idleMinutes: 24 * 60, absoluteHours: 48 } } });
      await expectOk(await w.admin.post('/v1/admin/users', { username: 'jit-user', password: PASSWORD }));
      temp = await w.client('jit-user');
      end = clock.now().getTime() + 15 * 60_000;
      const r = await w.as['project-admin'].post('/v1/projects/fraud/bindings', { principal: 'user:jit-user', role: 'ml-engineer', expiresAt: new Date(end).toISOString() });
      assert.equal(r.status, 201);
      bindingId = (await json<{ id: string }>(r)).id;
      await expectOk(await w.as['data-scientist'].post('/v1/projects/fraud/models', { name: 'churn' }));
    });
    after(() => w.server.close());

    test('used until its last second, the grant is denied one second after its end, at once', async () => {
      // Warm whatever could remember an answer: many allowed calls up to the end.
      for (let i = 0; i < 5; i++) assert.equal((await temp.get('/v1/projects/fraud/models/churn')).status, 200);
      clock.advance(end - 1000 - clock.now().getTime());
      assert.equal((await temp.get('/v1/projects/fraud/models/churn')).status, 200);
      assert.equal((await temp.post('/v1/projects/fraud/models/churn/versions', {})).status, 201);

      clock.advance(2000); // one second after the end; no expiry sweep has run
      const read = await temp.get('/v1/projects/fraud/models/churn');
      assert.equal(read.status, 404);
      const write = await temp.post('/v1/projects/fraud/models/churn/versions', {});
      assert.equal(write.status, 404);
      // Nothing leaks about what the grant covered.
      const body = await read.text();
      assert.doesNotMatch(body, /ml-engineer|expire/i);

      // The refusals are in the audit log as denials.
      const denials = await w.server.services.audit.query({ actor: 'jit-user', outcome: 'deny', limit: 100 });
      // (With no role left in the project, the project itself is no longer visible: the lookup is refused.)
      for (const r of [read, write]) assert.ok(denials.some((e) => e.requestId === r.headers.get('x-request-id') && e.resource === 'project:fraud'));
    });

    test('the expiry is audited exactly once, naming who lost which role where', async () => {
      const s = w.server.services;
      assert.equal(await s.bindingExpiry.sweep(), 1);
      assert.equal(await s.bindingExpiry.sweep(), 0);
      const ev = (await s.audit.query({ action: 'binding.expired', limit: 100 })).filter((e) => e.resource === `binding:${bindingId}`);
      assert.equal(ev.length, 1);
      assert.equal(ev[0]?.outcome, 'success');
      assert.deepEqual(ev[0]?.details, { principal: 'user:jit-user', role: 'ml-engineer', scope: 'fraud', expiresAt: new Date(end).toISOString() });
      assert.equal((await temp.get('/v1/projects/fraud/models/churn')).status, 404);
    });

    test('a grant cannot be stretched beyond the horizon, nor made to end in the past', async () => {
      const pa = w.as['project-admin'];
      const day = 24 * 3600_000;
      const tooFar = await pa.post('/v1/projects/fraud/bindings', { principal: 'user:jit-user', role: 'viewer', expiresAt: new Date(clock.now().getTime() + 366 * day).toISOString() });
      assert.equal(tooFar.status, 422);
      const past = await pa.post('/v1/projects/fraud/bindings', { principal: 'user:jit-user', role: 'viewer', expiresAt: new Date(clock.now().getTime() - 1000).toISOString() });
      assert.equal(past.status, 422);
      assert.equal((await temp.get('/v1/projects/fraud/models/churn')).status, 404);
    });
  });
}

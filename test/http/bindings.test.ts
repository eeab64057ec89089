// Role bindings over HTTP: time-boxed grants (expiresAt), who has what and until when,
// expiry that stops access at the next request and is audited exactly once by the
// expiry job, service-account principals, validation, and who may see or manage them.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { RequestContext } from '../../src/core/index.ts';
import { ManualClock, newId } from '../../src/core/index.ts';
import { BindingExpiry } from '../../src/registry/index.ts';
import type { BusEvent } from '../../src/storage/index.ts';
import { BACKENDS, type Client, expectOk, json, markMfa, PASSWORD, type World, world } from '../helpers/server.ts';

interface BindingView {
  id: string;
  principal: string;
  role: string;
  expiresAt: string | null;
  status: 'active' | 'expired';
}

const MIN = 60_000;

for (const backend of BACKENDS) {
  describe(`role bindings (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    const events: BusEvent[] = [];
    let fraudId = '';
    let otherId = '';
    let users = 0;

    /** A fresh user with no role, signed in. */
    const newUser = async (): Promise<{ name: string; id: string; client: Client }> => {
      const name = `temp-${++users}`;
      const created = await json<{ id: string }>(await expectOk(await w.admin.post('/v1/admin/users', { username: name, password: PASSWORD })));
      return { name, id: created.id, client: await w.client(name) };
    };
    /**
     * Binding management needs a fresh second factor and these tests move the clock by hours:
     * the granting admins pass one again right before each change (markMfa: the fixture's step-up).
     */
    const freshen = async () => {
      for (const who of ['project-admin', 'admin', 'viewer', 'outsider']) await markMfa(w.server, who);
    };
    const removeAsProjectAdmin = async (id: string) => {
      await freshen();
      return w.as['project-admin'].del(`/v1/projects/fraud/bindings/${id}`);
    };
    const grant = async (by: Client, body: Record<string, unknown>, project = 'fraud') => {
      await freshen();
      return by.post(`/v1/projects/${project}/bindings`, body);
    };
    const list = async (by: Client = w.as['project-admin']): Promise<BindingView[]> => {
      const r = await by.get('/v1/projects/fraud/bindings');
      assert.equal(r.status, 200);
      return (await json<{ bindings: BindingView[] }>(r)).bindings;
    };
    const inMinutes = (m: number) => new Date(clock.now().getTime() + m * MIN).toISOString();
    const expiredEvents = () => w.server.services.audit.query({ action: 'binding.expired', limit: 1000 });
    const insertServiceAccount = async (name: string, projectId: string | null, status: 'active' | 'disabled' = 'active'): Promise<string> => {
      const id = newId('sa');
      await w.server.services.db.kysely
        .insertInto('service_accounts')
        .values({
          id,
          name,
          project_id: projectId,
          client_id: newId('cid'),
          secret_hash: 'not-a-secret-test-row',
          scopes: '["read"]',
          status,
          created_at: clock.now().toISOString(),
          created_by: 'test',
          disabled_at: null,
        })
        .execute();
      return id;
    };
    const serviceCtx = (id: string, username: string): RequestContext => ({
      requestId: newId('req'),
      principal: { kind: 'service', id, username, sessionId: null, amr: [], authTime: clock.now(), mfaAt: null, authMethod: 'service-token', scopes: ['read'] },
      ip: null,
      userAgent: null,
      now: clock.now(),
    });

    before(async () => {
      // Sessions outlive the hours this test moves the clock by; bindings are what expire here.
      w = await world(backend, { clock, config: { authz: { maxBindingDays: 30 }, sessions: { idleMinutes: 24 * 60, absoluteHours: 24 * 30 } } });
      w.server.services.bus.subscribe((e) => events.push(e));
      const k = w.server.services.db.kysely;
      fraudId = (await k.selectFrom('projects').select('id').where('name', '=', 'fraud').executeTakeFirstOrThrow()).id;
      otherId = (await k.selectFrom('projects').select('id').where('name', '=', 'other').executeTakeFirstOrThrow()).id;
    });
    after(() => w.server.close());

    test('a time-boxed grant is listed with its end, works until then, and stops at the next request after it', async () => {
      const u = await newUser();
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 404);
      const until = inMinutes(10);
      const before0 = events.length;
      const r = await grant(w.as['project-admin'], { principal: `user:${u.name}`, role: 'data-scientist', expiresAt: until });
      assert.equal(r.status, 201, await r.clone().text());
      const b = await json<BindingView>(r);
      assert.equal(b.expiresAt, until);
      assert.equal(b.status, 'active');
      // Whose cached decisions are stale is named, so the guard drops only theirs.
      assert.deepEqual(events.slice(before0), [{ type: 'bindings.changed', scope: fraudId, principalId: u.id }]);

      // Who has what and until when: project-admin and auditor may read it.
      for (const reader of [w.as['project-admin'], w.as.auditor, w.admin]) {
        const row = (await list(reader)).find((x) => x.id === b.id);
        assert.deepEqual(row && { principal: row.principal, role: row.role, expiresAt: row.expiresAt, status: row.status }, {
          principal: `user:${u.name}`,
          role: 'data-scientist',
          expiresAt: until,
          status: 'active',
        });
      }
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 200);
      clock.advance(10 * MIN - 1000);
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 200);
      // At its end the grant is gone at once, before any sweep ran.
      clock.advance(1000);
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 404);
      const roles = (await json<{ roles: { scope: string }[] }>(await u.client.get('/v1/me'))).roles;
      assert.deepEqual(roles, []);
      assert.equal((await list()).find((x) => x.id === b.id)?.status, 'expired');

      assert.ok((await w.server.services.bindingExpiry.sweep()) >= 1);
      assert.equal((await list()).find((x) => x.id === b.id), undefined);
      const mine = (await expiredEvents()).filter((e) => e.resource === `binding:${b.id}`);
      assert.equal(mine.length, 1);
      assert.equal(mine[0]?.outcome, 'success');
      assert.equal(mine[0]?.actor, null);
      assert.equal(mine[0]?.projectId, fraudId);
      assert.deepEqual(mine[0]?.details, { principal: `user:${u.name}`, role: 'data-scientist', scope: 'fraud', expiresAt: until });
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 404);
    });

    test('the expiry job records each expired binding exactly once, even with two sweepers at once', async () => {
      await w.server.services.bindingExpiry.sweep();
      const start = (await expiredEvents()).length;
      const a = await newUser();
      const b = await newUser();
      const c = await newUser();
      const ids: string[] = [];
      for (const [u, m] of [
        [a, 5],
        [b, 6],
        [c, 60],
      ] as const) {
        const r = await grant(w.admin, { principal: `user:${u.name}`, role: 'viewer', expiresAt: inMinutes(m) });
        assert.equal(r.status, 201);
        ids.push((await json<BindingView>(r)).id);
      }
      clock.advance(7 * MIN);
      const before0 = events.length;
      // A second replica sweeping at the same moment: the row delete decides who records it.
      const s = w.server.services;
      const replica = new BindingExpiry({ db: s.db.kysely, audit: s.audit, bus: s.bus, clock, intervalMs: 60_000 });
      const [n1, n2] = await Promise.all([s.bindingExpiry.sweep(), replica.sweep()]);
      assert.equal(n1 + n2, 2);
      assert.equal(await s.bindingExpiry.sweep(), 0);
      let recorded = (await expiredEvents()).slice(start);
      assert.deepEqual(recorded.map((e) => e.resource).sort(), [`binding:${ids[0]}`, `binding:${ids[1]}`].sort());
      // Each expiry announced once, naming the project and whose access ended (order: sweeper race).
      const byPrincipal = (x: { principalId?: string }, y: { principalId?: string }) => ((x.principalId ?? '') < (y.principalId ?? '') ? -1 : 1);
      assert.deepEqual(
        events
          .slice(before0)
          .filter((e) => e.type === 'bindings.changed')
          .sort(byPrincipal),
        [
          { type: 'bindings.changed', scope: fraudId, principalId: a.id },
          { type: 'bindings.changed', scope: fraudId, principalId: b.id },
        ].sort(byPrincipal),
      );
      // The third is still active, then expires in its turn.
      assert.equal((await list()).find((x) => x.id === ids[2])?.status, 'active');
      clock.advance(60 * MIN);
      assert.equal(await s.bindingExpiry.sweep(), 1);
      recorded = (await expiredEvents()).slice(start);
      assert.equal(recorded.length, 3);
      assert.equal(recorded.filter((e) => e.resource === `binding:${ids[2]}`).length, 1);
    });

    test('granting again after expiry records the old binding as expired once and grants anew', async () => {
      const u = await newUser();
      const r1 = await grant(w.as['project-admin'], { principal: `user:${u.name}`, role: 'viewer', expiresAt: inMinutes(2) });
      assert.equal(r1.status, 201);
      const old = await json<BindingView>(r1);
      // While active, the same grant is a conflict.
      assert.equal((await grant(w.as['project-admin'], { principal: `user:${u.name}`, role: 'viewer' })).status, 409);
      clock.advance(3 * MIN);
      const r2 = await grant(w.as['project-admin'], { principal: `user:${u.name}`, role: 'viewer' });
      assert.equal(r2.status, 201);
      const fresh = await json<BindingView>(r2);
      assert.notEqual(fresh.id, old.id);
      assert.equal(fresh.expiresAt, null);
      await w.server.services.bindingExpiry.sweep();
      assert.equal((await expiredEvents()).filter((e) => e.resource === `binding:${old.id}`).length, 1);
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 200);
    });

    test('service accounts are bound by name, listed as service:NAME, and granted by the guard until expiry', async () => {
      const saId = await insertServiceAccount('ci-bot', fraudId);
      const r = await grant(w.as['project-admin'], { principal: 'service:ci-bot', role: 'ml-engineer', expiresAt: inMinutes(30) });
      assert.equal(r.status, 201, await r.clone().text());
      const b = await json<BindingView>(r);
      assert.equal(b.principal, 'service:ci-bot');
      assert.ok((await list()).some((x) => x.id === b.id && x.principal === 'service:ci-bot' && x.role === 'ml-engineer'));

      const ref = { type: 'model', path: 'fraud/churn', projectId: fraudId, projectName: 'fraud' };
      const guard = w.server.services.guard;
      assert.equal((await guard.check(serviceCtx(saId, 'ci-bot'), 'model:read', ref)).decision, 'allow');
      clock.advance(30 * MIN + 1000);
      assert.equal((await guard.check(serviceCtx(saId, 'ci-bot'), 'model:read', ref)).decision, 'deny');

      // A service account of another project, a disabled one or an unknown one: not found here.
      await insertServiceAccount('other-bot', otherId);
      await insertServiceAccount('off-bot', fraudId, 'disabled');
      for (const name of ['other-bot', 'off-bot', 'no-such-bot']) {
        const x = await grant(w.as['project-admin'], { principal: `service:${name}`, role: 'viewer' });
        assert.equal(x.status, 404, name);
      }
      // A platform-level service account may be bound in any project.
      await insertServiceAccount('platform-bot', null);
      assert.equal((await grant(w.as['project-admin'], { principal: 'service:platform-bot', role: 'viewer' })).status, 201);
    });

    test('removal is audited and announced, and the binding stops granting', async () => {
      const u = await newUser();
      const b = await json<BindingView>(await expectOk(await grant(w.as['project-admin'], { principal: `user:${u.name}`, role: 'viewer' })));
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 200);
      const before0 = events.length;
      assert.equal((await removeAsProjectAdmin(b.id)).status, 204);
      assert.deepEqual(events.slice(before0), [{ type: 'bindings.changed', scope: fraudId, principalId: u.id }]);
      assert.equal((await u.client.get('/v1/projects/fraud/models')).status, 404);
      const del = (await w.server.services.audit.query({ action: 'binding.delete', limit: 1000 })).filter((e) => e.resource === `binding:fraud/${b.id}`);
      assert.equal(del.length, 1);
      assert.equal(del[0]?.details.principal, `user:${u.name}`);
      assert.equal((await removeAsProjectAdmin(b.id)).status, 404);
    });

    test('invalid grants answer 422 and change nothing', async () => {
      const u = await newUser();
      const before0 = (await list()).length;
      const bad: Record<string, unknown>[] = [
        { principal: u.name, role: 'viewer' },
        { principal: `group:${u.name}`, role: 'viewer' },
        { principal: `user:${u.name}`, role: 'owner' },
        { principal: `user:${u.name}`, role: 42 },
        { principal: `user:${u.name}`, role: 'viewer', expiresAt: new Date(clock.now().getTime() - 1000).toISOString() },
        { principal: `user:${u.name}`, role: 'viewer', expiresAt: clock.now().toISOString() },
        { principal: `user:${u.name}`, role: 'viewer', expiresAt: 'tomorrow' },
        { principal: `user:${u.name}`, role: 'viewer', expiresAt: '2099-01-01' },
        { principal: `user:${u.name}`, role: 'viewer', expiresAt: 4102444800000 },
        // Beyond authz.maxBindingDays (30 in this test).
        { principal: `user:${u.name}`, role: 'viewer', expiresAt: inMinutes(31 * 24 * 60) },
      ];
      for (const body of bad) {
        const r = await grant(w.as['project-admin'], body);
        assert.equal(r.status, 422, JSON.stringify(body));
        assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'invalid_input');
      }
      assert.equal((await list()).length, before0);
      const ok = await grant(w.as['project-admin'], { principal: `user:${u.name}`, role: 'viewer', expiresAt: inMinutes(29 * 24 * 60) });
      assert.equal(ok.status, 201);
    });

    test('an outsider gets 404 on every binding route; a viewer gets 403 on reading and managing', async () => {
      const u = await newUser();
      const b = await json<BindingView>(await expectOk(await grant(w.admin, { principal: `user:${u.name}`, role: 'viewer' })));
      const calls = (c: Client) => [
        c.get('/v1/projects/fraud/bindings'),
        c.post('/v1/projects/fraud/bindings', { principal: `user:${u.name}`, role: 'auditor', expiresAt: inMinutes(5) }),
        c.del(`/v1/projects/fraud/bindings/${b.id}`),
      ];
      for (const r of await Promise.all(calls(w.as.outsider))) assert.equal(r.status, 404);
      for (const r of await Promise.all(calls(w.as.viewer))) assert.equal(r.status, 403);
      for (const role of ['data-scientist', 'ml-engineer', 'release-manager', 'auditor'] as const) {
        assert.equal((await grant(w.as[role], { principal: `user:${u.name}`, role: 'auditor' })).status, 403, role);
      }
      assert.ok((await list()).some((x) => x.id === b.id));
    });
  });
}

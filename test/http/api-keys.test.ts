// Personal API keys: shown once, stored as a hash, mandatory bounded expiry, scoped and
// optionally pinned to a project, last use tracked (at most once a minute), and revoked
// for the very next request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { bearer } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

interface Key {
  id: string;
  token: string;
  scopes: string[];
  project: string | null;
  expiresAt: string;
  lastUsedAt: string | null;
}

for (const backend of BACKENDS) {
  describe(`API keys (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock, config: { apiKeys: { maxDays: 30 } } });
    });
    after(() => w.server.close());

    const create = (body: Record<string, unknown>) => w.as.viewer.post('/v1/me/api-keys', { name: 'ci', scopes: ['read'], expiresInDays: 7, ...body });

    test('the token is shown once, prefixed mkp_, and only its SHA-256 is stored', async () => {
      const r = await create({ project: 'fraud' });
      assert.equal(r.status, 201);
      const k = await json<Key>(r);
      assert.match(k.token, /^mkp_[A-Za-z0-9_-]{43}$/);
      assert.equal(k.project, 'fraud');
      const list = await json<{ apiKeys: Record<string, unknown>[] }>(await w.as.viewer.get('/v1/me/api-keys'));
      const listed = list.apiKeys.find((x) => x.id === k.id);
      assert.ok(listed);
      assert.equal(listed.token, undefined);
      const rows = await w.server.services.db.kysely.selectFrom('api_keys').selectAll().execute();
      assert.ok(!JSON.stringify(rows).includes(k.token.slice(4)));
      const audit = await w.server.services.db.kysely.selectFrom('audit_events').select('details').where('action', '=', 'api_key.create').execute();
      assert.ok(audit.length > 0);
      assert.ok(!JSON.stringify(audit).includes(k.token.slice(4)));
    });

    test('expiry is mandatory and bounded by apiKeys.maxDays; scopes must be known', async () => {
      assert.equal((await create({ expiresInDays: undefined })).status, 422);
      assert.equal((await create({ expiresInDays: 31 })).status, 422);
      assert.equal((await create({ expiresInDays: 0 })).status, 422);
      assert.equal((await create({ scopes: ['root'] })).status, 422);
      assert.equal((await create({ scopes: [] })).status, 422);
      assert.equal((await create({ project: 'other' })).status, 404, 'a project the user cannot see');
      assert.equal((await create({ expiresInDays: 30 })).status, 201);
    });

    test('a key authenticates as its owner with its scopes and project; it expires; it cannot mint keys', async () => {
      const k = await json<Key>(await create({ project: 'fraud', expiresInDays: 1 }));
      const me = await bearer(w.server.url, k.token, '/v1/me');
      assert.equal(me.status, 200);
      assert.equal((await json<{ user: { username: string } }>(me)).user.username, 'viewer');
      assert.equal((await bearer(w.server.url, k.token, '/v1/projects/fraud/models')).status, 200);
      const mint = await bearer(w.server.url, k.token, '/v1/me/api-keys', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', scopes: ['read'], expiresInDays: 1 }),
      });
      assert.equal(mint.status, 403);
      // Principal carries the pin (the guard enforces it): checked through the service.
      const r = await w.server.services.apiKeys.authenticate(k.token);
      assert.ok(r.ok);
      assert.equal(r.principal.kind === 'user' && r.principal.projectId, (await w.server.services.db.kysely.selectFrom('projects').select('id').where('name', '=', 'fraud').executeTakeFirstOrThrow()).id);
      assert.deepEqual(r.principal.kind === 'user' && r.principal.scopes, ['read']);
      // The pin holds even where the owner has a role: project `other` does not exist for this key.
      const grant = await w.admin.post('/v1/projects/other/bindings', { principal: 'user:viewer', role: 'viewer' });
      assert.equal(grant.status, 201, await grant.clone().text());
      assert.equal((await w.as.viewer.get('/v1/projects/other/models')).status, 200, 'the owner may read other');
      assert.equal((await bearer(w.server.url, k.token, '/v1/projects/other/models')).status, 404);
      assert.equal((await bearer(w.server.url, k.token, '/v1/projects/other')).status, 404);
      const unpinned = await json<Key>(await create({ expiresInDays: 1 }));
      assert.equal((await bearer(w.server.url, unpinned.token, '/v1/projects/other/models')).status, 200, 'an unpinned key follows its owner');
      clock.advance(86_400_000 + 1000);
      assert.equal((await bearer(w.server.url, k.token, '/v1/me')).status, 401);
      // Sessions idled out with that jump: sign in again for later tests.
      w.as.viewer = await w.client('viewer');
      w.as.auditor = await w.client('auditor');
      w.admin = await w.client('admin');
    });

    test('last use is recorded at most once a minute', async () => {
      const k = await json<Key>(await create({}));
      const lastUsed = async () => (await w.server.services.db.kysely.selectFrom('api_keys').select('last_used_at').where('id', '=', k.id).executeTakeFirstOrThrow()).last_used_at;
      assert.equal(await lastUsed(), null);
      await bearer(w.server.url, k.token, '/v1/me');
      const first = await lastUsed();
      assert.ok(first);
      clock.advance(30_000);
      await bearer(w.server.url, k.token, '/v1/me');
      assert.equal(await lastUsed(), first);
      clock.advance(31_000);
      await bearer(w.server.url, k.token, '/v1/me');
      assert.notEqual(await lastUsed(), first);
    });

    test('deleting a key rejects it at the very next request; another user cannot delete it', async () => {
      const k = await json<Key>(await create({}));
      assert.equal((await bearer(w.server.url, k.token, '/v1/me')).status, 200);
      assert.equal((await w.as.auditor.del(`/v1/me/api-keys/${k.id}`)).status, 404);
      assert.equal((await bearer(w.server.url, k.token, '/v1/me')).status, 200);
      assert.equal((await w.as.viewer.del(`/v1/me/api-keys/${k.id}`)).status, 204);
      const after1 = await bearer(w.server.url, k.token, '/v1/me');
      assert.equal(after1.status, 401);
      assert.equal((await json<{ error: { code: string } }>(after1)).error.code, 'unauthenticated');
      const listed = await json<{ apiKeys: { id: string }[] }>(await w.as.viewer.get('/v1/me/api-keys'));
      assert.ok(!listed.apiKeys.some((x) => x.id === k.id));
    });

    test("deactivating the owner rejects the owner's keys at once", async () => {
      await w.admin.post('/v1/admin/users', { username: 'keyholder', password: 'a long test password 1' });
      const c = await w.client('keyholder');
      const k = await json<Key>(await c.post('/v1/me/api-keys', { name: 'k', scopes: ['read'], expiresInDays: 1 }));
      assert.equal((await bearer(w.server.url, k.token, '/v1/me')).status, 200);
      const users = await json<{ users: { id: string; username: string }[] }>(await w.admin.get('/v1/admin/users'));
      const id = users.users.find((u) => u.username === 'keyholder')?.id;
      assert.equal((await w.admin.post(`/v1/admin/users/${id}/deactivate`)).status, 200);
      assert.equal((await bearer(w.server.url, k.token, '/v1/me')).status, 401);
    });
  });
}

// Thin identity: generic login errors, cookie flags, hashed storage, logout,
// deactivation, idle and absolute session lifetimes (with an injected clock).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, Client, json, PASSWORD, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`sessions and login (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('unknown user and wrong password get the same 401, and the audit log tells them apart', async () => {
      const a = await new Client(w.server.url).login('nobody-here', PASSWORD);
      const b = await new Client(w.server.url).login('viewer', 'wrong password, long');
      assert.equal(a.status, 401);
      assert.equal(b.status, 401);
      const strip = (x: { error: Record<string, unknown> }) => ({ ...x.error, requestId: undefined });
      assert.deepEqual(strip(await json(a)), strip(await json(b)));
      assert.equal(a.headers.get('set-cookie'), null);
      const events = (await json<{ events: { actor: string; action: string; outcome: string; reason: string; resource: string }[] }>(
        await w.admin.get('/v1/audit/events?action=auth.login&outcome=failure'),
      )).events;
      assert.ok(events.some((e) => e.resource === 'user:nobody-here' && e.reason === 'unknown user'));
      assert.ok(events.some((e) => e.resource === 'user:viewer' && e.reason === 'wrong password'));
      // The attempted password never reaches the log.
      assert.ok(!JSON.stringify(events).includes('wrong password, long'));
    });

    test('the session cookie is HttpOnly and SameSite=Strict, and only its hash is stored', async () => {
      const r = await fetch(`${w.server.url}/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'viewer', password: PASSWORD }),
      });
      const cookie = r.headers.get('set-cookie') ?? '';
      assert.match(cookie, /^modelkeep_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
      const token = cookie.split(';')[0]?.split('=')[1] ?? '';
      const { csrfToken } = await json<{ csrfToken: string }>(r);
      const rows = await w.server.services.db.kysely.selectFrom('sessions').selectAll().execute();
      const dump = JSON.stringify(rows);
      assert.ok(!dump.includes(token), 'session secret stored in clear');
      assert.ok(!dump.includes(csrfToken), 'CSRF token stored in clear');
    });

    test('each login gets a new session; logout ends only that one', async () => {
      const c1 = await w.client('data-scientist');
      const c2 = await w.client('data-scientist');
      assert.notEqual(c1.cookie, c2.cookie);
      assert.equal((await c1.post('/v1/auth/logout')).status, 200);
      assert.equal((await c1.get('/v1/me')).status, 401);
      assert.equal((await c2.get('/v1/me')).status, 200);
    });

    test('deactivating a user ends all their sessions at once', async () => {
      assert.equal((await w.admin.post('/v1/admin/users', { username: 'leaver', password: PASSWORD })).status, 201);
      const c1 = await w.client('leaver');
      const c2 = await w.client('leaver');
      const users = (await json<{ users: { id: string; username: string }[] }>(await w.admin.get('/v1/admin/users'))).users;
      const id = users.find((u) => u.username === 'leaver')?.id ?? '';
      const r = await json<{ sessionsEnded: number }>(await w.admin.post(`/v1/admin/users/${id}/deactivate`));
      assert.equal(r.sessionsEnded, 2);
      assert.equal((await c1.get('/v1/me')).status, 401);
      assert.equal((await c2.get('/v1/me')).status, 401);
      assert.equal((await new Client(w.server.url).login('leaver')).status, 401);
      // Only a platform-admin deactivates, and nobody deactivates themselves.
      assert.equal((await w.as['project-admin'].post(`/v1/admin/users/${id}/deactivate`)).status, 403);
    });

    test('an idle session expires after the idle timeout; a busy one at the absolute lifetime', async () => {
      const idle = await w.client('auditor');
      clock.advance(29 * 60_000);
      assert.equal((await idle.get('/v1/me')).status, 200, 'still within 30 idle minutes');
      clock.advance(31 * 60_000);
      assert.equal((await idle.get('/v1/me')).status, 401, 'idle for 31 minutes');

      const busy = await w.client('auditor');
      for (let h = 0; h < 11; h++) {
        clock.advance(20 * 60_000);
        assert.equal((await busy.get('/v1/me')).status, 200);
        clock.advance(20 * 60_000);
        assert.equal((await busy.get('/v1/me')).status, 200);
        clock.advance(20 * 60_000);
        assert.equal((await busy.get('/v1/me')).status, 200);
      }
      // At 11 h: two more active 20-minute steps are fine, the third reaches 12 h while only 20 minutes idle.
      clock.advance(20 * 60_000);
      assert.equal((await busy.get('/v1/me')).status, 200);
      clock.advance(20 * 60_000);
      assert.equal((await busy.get('/v1/me')).status, 200);
      clock.advance(20 * 60_000);
      assert.equal((await busy.get('/v1/me')).status, 401, 'at 12 hours however busy');
    });

    test('GET /v1/me shows the user, the session and the roles', async () => {
      const c = await w.passwordOnly('ml-engineer'); // a password login: amr is ['pwd']
      const me = await json<{ user: { username: string }; session: { amr: string[] }; roles: { scope: string; role: string }[] }>(await c.get('/v1/me'));
      assert.equal(me.user.username, 'ml-engineer');
      assert.deepEqual(me.session.amr, ['pwd']);
      assert.deepEqual(me.roles, [{ scope: 'project:fraud', role: 'ml-engineer' }]);
    });
  });
}

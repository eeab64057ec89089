// MC-SES-04 — Logout and logout-everywhere. The pre-logout cookie replayed is refused; after
// "sign out everywhere" on device A, device B's cookie is refused; the deleting Set-Cookie
// repeats the cookie's name and attributes, and Clear-Site-Data is sent; the server-side
// session state is revoked (not just the cookie dropped); an admin deactivating a user ends
// their sessions. Token families are the token module's: it listens for
// 'user.sessions_revoked' and compares iat with users.tokens_not_before.
// Sources: ASVS 5.0 7.4.1, 7.4.5, 7.5.2, 14.3.1.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, json, PASSWORD, type World, world } from '../helpers/server.ts';

const DELETION = /^modelkeep_session=; Path=\/; HttpOnly; SameSite=Strict; Max-Age=0$/;

for (const backend of BACKENDS) {
  describe(`MC-SES-04 logout and logout everywhere (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 3, 6, 9, 0, 0));
    before(async () => {
      w = await world(backend, { clock });
      await w.admin.post('/v1/admin/users', { username: 'wanda', password: PASSWORD });
      await w.admin.post('/v1/admin/users', { username: 'xena', password: PASSWORD });
    });
    after(() => w.server.close());

    test('logout: the cookie is deleted with the same attributes, Clear-Site-Data is sent, and a replay is refused', async () => {
      const c = await w.client('wanda');
      const cookie = c.cookie ?? '';
      const csrf = c.csrf ?? '';
      const r = await c.post('/v1/auth/logout');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('set-cookie') ?? '', DELETION);
      assert.equal(r.headers.get('clear-site-data'), '"cookies"');
      // Replay of the pre-logout cookie (an attacker who copied it): refused everywhere.
      assert.equal((await fetch(`${w.server.url}/v1/me`, { headers: { cookie } })).status, 401);
      const again = await fetch(`${w.server.url}/v1/auth/logout`, { method: 'POST', headers: { cookie, 'x-csrf-token': csrf } });
      assert.equal(again.status, 401);
      const row = await w.server.services.db.kysely.selectFrom('sessions').select(['revoked_at', 'revoked_reason']).where('token_hash', '!=', '').orderBy('created_at', 'desc').execute();
      assert.ok(row.some((s) => s.revoked_reason === 'logout'), 'revoked on the server, not only in the browser');
    });

    test("logout-all on device A: device B's session is refused at its very next request", async () => {
      const a = await w.client('xena');
      const b = await w.client('xena');
      const bCookie = b.cookie ?? '';
      assert.equal((await b.get('/v1/me')).status, 200);
      const r = await a.post('/v1/auth/logout-all');
      assert.equal(r.status, 200);
      assert.match(r.headers.get('set-cookie') ?? '', DELETION);
      assert.equal(r.headers.get('clear-site-data'), '"cookies"');
      assert.equal((await fetch(`${w.server.url}/v1/me`, { headers: { cookie: bCookie } })).status, 401);
      assert.equal((await a.get('/v1/me')).status, 401);
      // Signing in again works: logout-all is not a lockout.
      const back = await w.client('xena');
      assert.equal((await back.get('/v1/me')).status, 200);
      const sessions = await json<{ sessions: unknown[] }>(await back.get('/v1/me/sessions'));
      assert.equal(sessions.sessions.length, 1);
    });

    test('an admin deactivating a user ends every session of that user', async () => {
      await w.admin.post('/v1/admin/users', { username: 'yuri', password: PASSWORD });
      const y1 = await w.client('yuri');
      const y2 = await w.client('yuri');
      const users = (await json<{ users: { id: string; username: string }[] }>(await w.admin.get('/v1/admin/users'))).users;
      const id = users.find((u) => u.username === 'yuri')?.id ?? '';
      assert.equal((await w.admin.post(`/v1/admin/users/${id}/deactivate`)).status, 200);
      assert.equal((await y1.get('/v1/me')).status, 401);
      assert.equal((await y2.get('/v1/me')).status, 401);
    });
  });
}

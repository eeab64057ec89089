// MC-OA-03 — refresh-token constraints (ASVS 5.0 10.4.8, 10.4.11; RFC 9700 s4.14.2:
// refresh tokens MUST be bound to scope and resource servers). A refresh asking for a scope
// never granted is invalid_scope; another client_id is invalid_grant; another resource is
// invalid_target; after the idle expiry invalid_grant; and refreshing continuously (sliding
// renewal) never carries a login past its absolute lifetime. Time runs on an injected clock.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { bearer, deviceLogin, refresh, type Tokens } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

const IDLE_HOURS = 1;
const ABSOLUTE_HOURS = 3;
const HOUR = 3600_000;

for (const backend of BACKENDS) {
  describe(`MC-OA-03 refresh-token constraints (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock, config: { tokens: { refreshIdleHours: IDLE_HOURS, refreshAbsoluteHours: ABSOLUTE_HOURS } } });
    });
    after(() => w.server.close());

    const error = async (r: Response) => {
      assert.equal(r.status, r.status === 401 ? 401 : 400);
      return (await json<{ error: string }>(r)).error;
    };
    /** A device login approved by a freshly signed-in viewer (the fixture's sessions may have idled out on this clock). */
    const login = async (scope: string) => deviceLogin(w.server.url, await w.client('viewer'), scope);

    test('a wider scope than granted is invalid_scope, and the refresh token still works for the granted one', async () => {
      const t = await login('read');
      assert.equal(await error(await refresh(w.server.url, t.refresh_token, { scope: 'read write' })), 'invalid_scope');
      assert.equal(await error(await refresh(w.server.url, t.refresh_token, { scope: 'admin' })), 'invalid_scope');
      assert.equal(await error(await refresh(w.server.url, t.refresh_token, { scope: 'registry:admin' })), 'invalid_scope');
      const ok = await refresh(w.server.url, t.refresh_token, { scope: 'read' });
      assert.equal(ok.status, 200);
      const t2 = await json<Tokens>(ok);
      assert.equal(t2.scope, 'read');
      // Narrowing is allowed, and a narrowed refresh does not widen the next one back past the grant.
      assert.equal(await error(await refresh(w.server.url, t2.refresh_token, { scope: 'read download' })), 'invalid_scope');
    });

    test('another client_id (or none) is invalid_grant; another resource is invalid_target', async () => {
      const t = await login('read');
      assert.equal(await error(await refresh(w.server.url, t.refresh_token, { client_id: 'evil-client' })), 'invalid_grant');
      assert.equal(await error(await refresh(w.server.url, t.refresh_token, { client_id: '' })), 'invalid_grant');
      assert.equal(await error(await refresh(w.server.url, t.refresh_token, { resource: 'https://evil.example' })), 'invalid_target');
      // The legitimate client can still use it (the attempts did not spend it).
      assert.equal((await refresh(w.server.url, t.refresh_token)).status, 200);
    });

    test('after the idle expiry the refresh token is invalid_grant', async () => {
      const t = await login('read');
      clock.advance(IDLE_HOURS * HOUR + 1000);
      assert.equal(await error(await refresh(w.server.url, t.refresh_token)), 'invalid_grant');
    });

    test('just before the idle expiry it works, and each rotation restarts the idle window', async () => {
      let t = await login('read');
      for (let i = 0; i < 2; i++) {
        clock.advance(IDLE_HOURS * HOUR - 60_000);
        const r = await refresh(w.server.url, t.refresh_token);
        assert.equal(r.status, 200, await r.clone().text());
        t = await json<Tokens>(r);
      }
    });

    test('continuous sliding refresh cannot pass the absolute lifetime; the last access token dies with the family', async () => {
      const start = clock.now().getTime();
      let t = await login('read');
      let refreshed = 0;
      // Refresh every 50 minutes (well inside the idle window) until the absolute lifetime.
      while (clock.now().getTime() + 50 * 60_000 < start + ABSOLUTE_HOURS * HOUR) {
        clock.advance(50 * 60_000);
        const r = await refresh(w.server.url, t.refresh_token);
        assert.equal(r.status, 200, await r.clone().text());
        t = await json<Tokens>(r);
        refreshed++;
      }
      assert.ok(refreshed >= 3);
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/me')).status, 200);
      // The newest refresh token's own idle window reaches past the absolute end: it is capped.
      clock.advance(start + ABSOLUTE_HOURS * HOUR - clock.now().getTime());
      assert.equal(await error(await refresh(w.server.url, t.refresh_token)), 'invalid_grant');
      // The access token minted minutes ago is refused too: its family reached the end.
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/me')).status, 401);
      const family = await w.server.services.db.kysely
        .selectFrom('refresh_tokens')
        .select(['expires_at'])
        .orderBy('created_at', 'desc')
        .executeTakeFirstOrThrow();
      assert.ok(Date.parse(family.expires_at) <= start + ABSOLUTE_HOURS * HOUR + 1000, 'no refresh token outlives the family');
    });
  });
}

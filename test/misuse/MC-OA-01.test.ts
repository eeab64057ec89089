// MC-OA-01 — refresh-token reuse after rotation (RFC 9700 §4.14.2): redeem RT1 → AT2+RT2;
// the attacker redeems RT1 again → invalid_grant, and the whole family dies: RT2 and AT2
// fail at once, and a high-severity audit event `auth.refresh_reuse` names the family.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { bearer, deviceLogin, refresh, type Tokens } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`MC-OA-01 refresh-token reuse (${backend})`, () => {
    let w: World;
    before(async () => {
      w = await world(backend);
    });
    after(() => w.server.close());

    test('a spent refresh token presented again revokes RT2 and AT2 and is audited as high severity', async () => {
      const t1 = await deviceLogin(w.server.url, w.as.viewer);
      const t2 = await json<Tokens>(await refresh(w.server.url, t1.refresh_token));
      assert.equal((await bearer(w.server.url, t2.access_token, '/v1/me')).status, 200);
      const reuse = await refresh(w.server.url, t1.refresh_token);
      assert.equal(reuse.status, 400);
      assert.equal((await json(reuse)).error, 'invalid_grant');
      const rt2 = await refresh(w.server.url, t2.refresh_token);
      assert.equal((await json(rt2)).error, 'invalid_grant');
      assert.equal((await bearer(w.server.url, t2.access_token, '/v1/me')).status, 401);
      assert.equal((await bearer(w.server.url, t1.access_token, '/v1/me')).status, 401);
      const claims = JSON.parse(Buffer.from(t2.access_token.split('.')[1] ?? '', 'base64url').toString()) as { fid: string };
      const events = await w.server.services.db.kysely.selectFrom('audit_events').selectAll().where('action', '=', 'auth.refresh_reuse').execute();
      assert.equal(events.length, 1);
      const details = JSON.parse(events[0]?.details ?? '{}') as { familyId: string; severity: string };
      assert.equal(details.familyId, claims.fid);
      assert.equal(details.severity, 'high');
      assert.equal(events[0]?.actor, 'viewer');
      // The token family is revoked in the DB too (another process, a restart).
      const fam = await w.server.services.db.kysely.selectFrom('token_families').select('revoked_reason').where('id', '=', claims.fid).executeTakeFirstOrThrow();
      assert.equal(fam.revoked_reason, 'refresh token reuse');
      // Other logins of the same user are untouched.
      const other = await deviceLogin(w.server.url, w.as.viewer);
      assert.equal((await bearer(w.server.url, other.access_token, '/v1/me')).status, 200);
    });

    test('two concurrent redemptions of one refresh token: at most one wins, and the loser kills the family', async () => {
      const t1 = await deviceLogin(w.server.url, w.as.viewer);
      const [a, b] = await Promise.all([refresh(w.server.url, t1.refresh_token), refresh(w.server.url, t1.refresh_token)]);
      const ok = [a, b].filter((r) => r.status === 200);
      assert.ok(ok.length <= 1);
      for (const r of ok) {
        const t = await json<Tokens>(r);
        assert.equal((await bearer(w.server.url, t.access_token, '/v1/me')).status, 401);
      }
    });
  });
}

// OAuth 2.0 for the API and the CLI: metadata (RFC 8414), JWKS with public keys only,
// device login, bearer authentication, refresh rotation, client_credentials for service
// accounts, revocation (RFC 7009) and signing-key rotation with overlap.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { bearer, CLI, deviceLogin, form, refresh, type Tokens } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`oauth (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('metadata names every endpoint; the JWKS publishes public Ed25519 keys only', async () => {
      const m = await json(await fetch(`${w.server.url}/.well-known/oauth-authorization-server`));
      assert.equal(m.issuer, w.server.url);
      assert.equal(m.token_endpoint, `${w.server.url}/oauth/token`);
      assert.equal(m.device_authorization_endpoint, `${w.server.url}/oauth/device_authorization`);
      assert.equal(m.revocation_endpoint, `${w.server.url}/oauth/revoke`);
      assert.equal(m.jwks_uri, `${w.server.url}/.well-known/jwks.json`);
      assert.deepEqual(m.grant_types_supported, ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'client_credentials']);
      await deviceLogin(w.server.url, w.as.viewer);
      const jwks = await json<{ keys: Record<string, unknown>[] }>(await fetch(`${w.server.url}/.well-known/jwks.json`));
      assert.ok(jwks.keys.length >= 1);
      for (const k of jwks.keys) {
        assert.equal(k.kty, 'OKP');
        assert.equal(k.crv, 'Ed25519');
        assert.equal(k.alg, 'EdDSA');
        assert.equal(k.d, undefined, 'the private part is never published');
      }
    });

    test('a device login gives a bearer token that works without cookie or CSRF token, with the approved scopes', async () => {
      const t = await deviceLogin(w.server.url, w.as['data-scientist'], 'read write');
      assert.equal(t.token_type, 'Bearer');
      assert.equal(t.scope, 'read write');
      assert.equal(t.expires_in, 300);
      assert.match(t.refresh_token, /^mkr_/);
      const me = await json<{ user: { username: string } }>(await bearer(w.server.url, t.access_token, '/v1/me'));
      assert.equal(me.user.username, 'data-scientist');
      const models = await bearer(w.server.url, t.access_token, '/v1/projects/fraud/models');
      assert.equal(models.status, 200);
      // A state change with the bearer alone: no CSRF token is asked for.
      const created = await bearer(w.server.url, t.access_token, '/v1/projects/fraud/models', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'via-token' }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const claims = JSON.parse(Buffer.from(t.access_token.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
      for (const c of ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'sid', 'scope', 'amr', 'auth_time', 'fid']) assert.ok(c in claims, `claim ${c}`);
      assert.equal(claims.iss, w.server.url);
      // amr is the approving console session's (the fixture's sessions passed a second factor).
      const approver = await json<{ session: { amr: string[] } }>(await w.as.viewer.get('/v1/me'));
      assert.deepEqual(claims.amr, approver.session.amr);
    });

    test('refresh rotates: each refresh token works once and a new one comes back', async () => {
      const t = await deviceLogin(w.server.url, w.as.viewer);
      const r1 = await refresh(w.server.url, t.refresh_token);
      assert.equal(r1.status, 200);
      const t2 = await json<Tokens>(r1);
      assert.notEqual(t2.refresh_token, t.refresh_token);
      assert.notEqual(t2.access_token, t.access_token);
      assert.equal((await bearer(w.server.url, t2.access_token, '/v1/me')).status, 200);
      const r3 = await refresh(w.server.url, t2.refresh_token, { scope: 'read' });
      assert.equal(r3.status, 200);
      assert.equal((await json<Tokens>(r3)).scope, 'read');
    });

    test('RFC 7009: revoking the refresh token ends the family at once; unknown tokens answer 200', async () => {
      const t = await deviceLogin(w.server.url, w.as.viewer);
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/me')).status, 200);
      const r = await form(w.server.url, '/oauth/revoke', { token: t.refresh_token, client_id: CLI });
      assert.equal(r.status, 200);
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/me')).status, 401);
      const again = await refresh(w.server.url, t.refresh_token);
      assert.equal(again.status, 400);
      assert.equal((await json(again)).error, 'invalid_grant');
      assert.equal((await form(w.server.url, '/oauth/revoke', { token: 'mkr_unknown' })).status, 200);
    });

    test('client_credentials: a service account created by the platform admin gets a scoped token without refresh token', async () => {
      const denied = await w.as['project-admin'].post('/v1/admin/service-accounts', { name: 'ci-bot-x', project: 'fraud', roles: ['viewer'] });
      assert.equal(denied.status, 403);
      const c = await w.admin.post('/v1/admin/service-accounts', { name: 'ci-bot', project: 'fraud', roles: ['viewer'], scopes: ['read'] });
      assert.equal(c.status, 201, await c.clone().text());
      const sa = await json<{ id: string; clientId: string; clientSecret: string }>(c);
      assert.match(sa.clientSecret, /^mks_/);
      const bad = await form(w.server.url, '/oauth/token', { grant_type: 'client_credentials', client_id: sa.clientId, client_secret: `${sa.clientSecret}x` });
      assert.equal(bad.status, 401);
      assert.equal((await json(bad)).error, 'invalid_client');
      const basic = Buffer.from(`${sa.clientId}:${sa.clientSecret}`).toString('base64');
      const ok = await form(w.server.url, '/oauth/token', { grant_type: 'client_credentials' }, { authorization: `Basic ${basic}` });
      assert.equal(ok.status, 200, await ok.clone().text());
      const t = await json<Tokens>(ok);
      assert.equal(t.refresh_token, undefined);
      assert.equal(t.scope, 'read');
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/projects/fraud/models')).status, 200);
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/projects/other/models')).status, 404);
      const wider = await form(w.server.url, '/oauth/token', { grant_type: 'client_credentials', client_id: sa.clientId, client_secret: sa.clientSecret, scope: 'read write' });
      assert.equal((await json(wider)).error, 'invalid_scope');
      // The secret is stored hashed only.
      const row = await w.server.services.db.kysely.selectFrom('service_accounts').selectAll().where('id', '=', sa.id).executeTakeFirstOrThrow();
      assert.ok(!JSON.stringify(row).includes(sa.clientSecret.slice(4)));
    });

    test('OAuth endpoints take forms only and answer RFC 6749 errors', async () => {
      const r = await fetch(`${w.server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ grant_type: 'refresh_token' }) });
      assert.equal(r.status, 400);
      assert.equal((await json(r)).error, 'invalid_request');
      const dup = await fetch(`${w.server.url}/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=refresh_token&grant_type=client_credentials' });
      assert.equal((await json(dup)).error, 'invalid_request');
      const none = await form(w.server.url, '/oauth/device_authorization', { client_id: 'someone-else' });
      assert.equal(none.status, 401);
      assert.equal((await json(none)).error, 'invalid_client');
    });

    test('signing keys rotate with overlap: old tokens stay valid until they expire, then the old key is unpublished', async () => {
      const s = await world(backend, { clock, config: { tokens: { keyRotationHours: 1 } } });
      try {
        const t1 = await deviceLogin(s.server.url, s.as.viewer);
        const kid = (t: string) => (JSON.parse(Buffer.from(t.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
        clock.advance(59 * 60_000);
        const t2 = await json<Tokens>(await refresh(s.server.url, t1.refresh_token));
        assert.equal(kid(t2.access_token), kid(t1.access_token));
        clock.advance(2 * 60_000); // the first key has retired; t2 has 3 minutes left
        const t3 = await json<Tokens>(await refresh(s.server.url, t2.refresh_token));
        assert.notEqual(kid(t3.access_token), kid(t2.access_token));
        assert.equal((await bearer(s.server.url, t2.access_token, '/v1/me')).status, 200);
        const jwks = await json<{ keys: { kid: string }[] }>(await fetch(`${s.server.url}/.well-known/jwks.json`));
        assert.deepEqual(new Set(jwks.keys.map((k) => k.kid)), new Set([kid(t2.access_token), kid(t3.access_token)]));
        clock.advance(5 * 60_000); // past every token of the first key, and its skew
        const later = await json<{ keys: { kid: string }[] }>(await fetch(`${s.server.url}/.well-known/jwks.json`));
        assert.deepEqual(later.keys.map((k) => k.kid), [kid(t3.access_token)]);
      } finally {
        await s.server.close();
      }
    });
  });
}

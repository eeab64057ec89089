// MC-AUTHN-04 — MFA bypass by flow manipulation. After the password step there is no
// session: no cookie is set and no session row exists. The pending-state token (mfaToken)
// is accepted only by the second-factor endpoints: as a session cookie, a bearer token or a
// CSRF token it authenticates nothing, and a step-up does not take it. A flag sent by the
// client cannot skip the factor, the token is single-use and expires after 5 minutes.
// Sources: ASVS 5.0 2.3.1, 6.3.4, 6.4.3.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, Client, enrollTotp, json, PASSWORD, passwordStep, totpCode, type World, world } from '../helpers/server.ts';

const STEP = 30_000;

for (const backend of BACKENDS) {
  describe(`MC-AUTHN-04 MFA bypass by flow manipulation (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 3, 3, 10, 0, 0));
    let secret = '';
    const sessionCount = async () =>
      Number(
        (
          await w.server.services.db.kysely
            .selectFrom('sessions')
            .innerJoin('users', 'users.id', 'sessions.user_id')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('users.username', '=', 'release-manager')
            .executeTakeFirstOrThrow()
        ).n,
      );
    before(async () => {
      w = await world(backend, { clock });
      ({ secret } = await enrollTotp(w.as['release-manager'], clock.now()));
      clock.advance(STEP);
    });
    after(() => w.server.close());

    test('the password step alone yields no session, whatever the client claims', async () => {
      const before = await sessionCount();
      for (const extra of [{}, { mfa: false }, { mfaRequired: false }, { status: 'ok' }, { amr: ['pwd', 'otp', 'mfa'] }]) {
        const r = await fetch(`${w.server.url}/v1/auth/login`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: 'release-manager', password: PASSWORD, ...extra }),
        });
        const body = await json<{ status: string; csrfToken?: string }>(r);
        assert.equal(body.status, 'mfa_required', JSON.stringify(extra));
        assert.equal(body.csrfToken, undefined);
        assert.equal(r.headers.get('set-cookie'), null);
      }
      assert.equal(await sessionCount(), before, 'no session row was created');
    });

    test('the mfaToken is refused everywhere but the second-factor endpoints', async () => {
      const { body } = await passwordStep(w.server.url, 'release-manager');
      const token = String(body.mfaToken);
      const probes: [string, Record<string, string>][] = [
        ['as the session cookie', { cookie: `modelkeep_session=${token}` }],
        ['as a bearer token', { authorization: `Bearer ${token}` }],
        ['as cookie and CSRF token', { cookie: `modelkeep_session=${token}`, 'x-csrf-token': token }],
      ];
      for (const [how, headers] of probes) {
        for (const [method, path] of [
          ['GET', '/v1/me'],
          ['GET', '/v1/projects'],
          ['GET', '/v1/me/sessions'],
          ['POST', '/v1/me/mfa/totp'],
          ['POST', '/v1/auth/step-up/totp'],
          ['POST', '/v1/auth/logout'],
        ] as const) {
          const r = await fetch(`${w.server.url}${path}`, {
            method,
            headers: { ...headers, ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
            ...(method === 'POST' ? { body: JSON.stringify({ code: totpCode(secret, clock.now()), mfaToken: token }) } : {}),
          });
          assert.equal(r.status, 401, `${method} ${path} ${how}`);
        }
      }
      // Still good at the one place it belongs, once.
      const c = new Client(w.server.url);
      assert.equal((await c.post('/v1/auth/mfa/totp', { mfaToken: token, code: totpCode(secret, clock.now()) })).status, 200);
      clock.advance(STEP);
      const reuse = await c.post('/v1/auth/mfa/totp', { mfaToken: token, code: totpCode(secret, clock.now()) });
      assert.equal(reuse.status, 401, 'single use');
      assert.equal((await c.post('/v1/auth/mfa/recovery', { mfaToken: token, code: 'aaaa-bbbb-cccc-dddd' })).status, 401);
    });

    test('the mfaToken expires after 5 minutes, and belongs to its own user only', async () => {
      const { body } = await passwordStep(w.server.url, 'release-manager');
      clock.advance(5 * 60_000);
      const r = await new Client(w.server.url).post('/v1/auth/mfa/totp', { mfaToken: body.mfaToken, code: totpCode(secret, clock.now()) });
      assert.equal(r.status, 401);
      // A session of another user cannot finish someone else's pending login as step-up.
      clock.advance(STEP);
      const p2 = await passwordStep(w.server.url, 'release-manager');
      const other = w.as.viewer;
      assert.equal((await other.post('/v1/auth/step-up/totp', { mfaToken: p2.body.mfaToken, code: totpCode(secret, clock.now()) })).status, 401);
    });
  });
}

// MC-AUTHN-06 — WebAuthn registration abuse (ASVS 5.0 7.5.1, 6.3.7; CVE-2026-8830,
// CVE-2026-37982). The server checks everything itself — the options it sent the browser
// are advice, not policy: enrolment needs a recent full authentication, a credential id
// belongs to one account only, algorithms outside policy are refused, a registration
// response cannot be replayed or moved to another account, and a tampered user.id does
// not bind the credential to someone else. Failures answer one generic 422.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';
import {
  authenticatorFor,
  enrollPasskey,
  FLAG_AT,
  FLAG_UV,
  loginOptions,
  postLogin,
  registrationOptions,
  type SoftAuthenticator,
} from '../helpers/soft-authenticator.ts';

const GENERIC = { code: 'invalid_input', message: 'the passkey could not be registered' };

for (const backend of BACKENDS) {
  describe(`MC-AUTHN-06 WebAuthn registration abuse (${backend})`, () => {
    let w: World;
    let auth: SoftAuthenticator;
    const clock = new ManualClock(Date.now());

    before(async () => {
      w = await world(backend, { clock });
      auth = authenticatorFor(w.server.url);
    });
    after(() => w.server.close());

    const passkeysOf = async (username: string) => {
      const u = await w.server.services.db.kysely.selectFrom('users').select('id').where('username', '=', username).executeTakeFirstOrThrow();
      return w.server.services.db.kysely.selectFrom('webauthn_credentials').selectAll().where('user_id', '=', u.id).execute();
    };

    const refused = async (res: Response, why: RegExp) => {
      assert.equal(res.status, 422, await res.clone().text());
      const body = await json<{ error: { code: string; message: string } }>(res.clone());
      assert.deepEqual({ code: body.error.code, message: body.error.message }, GENERIC);
      const rows = await w.server.services.db.kysely
        .selectFrom('audit_events')
        .select(['action', 'outcome', 'reason'])
        .where('request_id', '=', res.headers.get('x-request-id') ?? '')
        .execute();
      assert.ok(
        rows.some((r) => r.action === 'auth.passkey_registered' && r.outcome === 'failure' && why.test(r.reason ?? '')),
        `audited: ${JSON.stringify(rows)}`,
      );
    };

    test('registration without a recent full authentication answers 428 mfa_required', async () => {
      const c = await w.client('auditor');
      const options = await registrationOptions(c);
      clock.advance(16 * 60_000);
      try {
        const late = await c.post('/v1/me/passkeys', { name: 'late', response: auth.create(options).response });
        assert.equal(late.status, 428);
        assert.equal((await json<{ error: { code: string } }>(late)).error.code, 'mfa_required');
        const opt = await c.post('/v1/me/passkeys/options', {});
        assert.equal(opt.status, 428);
        assert.deepEqual(await passkeysOf('auditor'), []);
        // A fresh sign-in is recent enough.
        const again = await w.client('auditor');
        assert.equal((await enrollPasskey(again, auth, 'fresh')).res.status, 201);
      } finally {
        clock.advance(-16 * 60_000);
      }
    });

    test('the same credential id cannot be registered on two accounts (or twice on one)', async () => {
      const alice = w.as.viewer;
      const bob = w.as['data-scientist'];
      const first = await enrollPasskey(alice, auth, 'shared');
      assert.equal(first.res.status, 201);
      await refused((await enrollPasskey(bob, auth, 'stolen id', { credentialId: first.credential.id })).res, /already registered/);
      await refused((await enrollPasskey(alice, auth, 'twice', { credentialId: first.credential.id })).res, /already registered/);
      assert.deepEqual(await passkeysOf('data-scientist'), []);
      assert.equal((await passkeysOf('viewer')).length, 1);
    });

    test('an algorithm outside policy (ES384) is refused even though the browser was only advised', async () => {
      const c = w.as['ml-engineer'];
      await refused((await enrollPasskey(c, auth, 'p384', { alg: 'ES384' })).res, /alg/);
      assert.deepEqual(await passkeysOf('ml-engineer'), []);
    });

    test('a registration response cannot be replayed, nor moved to another account', async () => {
      const alice = w.as['release-manager'];
      const bob = w.as['project-admin'];
      const first = await enrollPasskey(alice, auth, 'once');
      assert.equal(first.res.status, 201);
      // The same response again: its challenge is spent.
      await refused(await alice.post('/v1/me/passkeys', { name: 'replay', response: first.response }), /challenge/);
      // Alice's unused ceremony, completed in bob's session: the challenge is bound to alice.
      const options = await registrationOptions(alice);
      const { response } = auth.create(options);
      await refused(await bob.post('/v1/me/passkeys', { name: 'moved', response }), /challenge/);
      assert.deepEqual(await passkeysOf('project-admin'), []);
      assert.equal((await passkeysOf('release-manager')).length, 1);
    });

    test('a registration for another origin or another RP, or without user presence, is refused', async () => {
      const c = w.as.outsider;
      await refused((await enrollPasskey(c, auth, 'evil', { origin: 'https://console.example.evil.net' })).res, /origin/);
      await refused((await enrollPasskey(c, auth, 'other rp', { rpId: 'example.evil.net' })).res, /RP ID|rpIdHash/i);
      await refused((await enrollPasskey(c, auth, 'no up', { flags: FLAG_UV | FLAG_AT })).res, /present/);
      await refused(await c.post('/v1/me/passkeys', { name: 'junk', response: { id: 'x' } }), /malformed/);
      assert.deepEqual(await passkeysOf('outsider'), []);
    });

    test('a tampered user.id does not bind the credential to another account', async () => {
      const mallory = await w.client('outsider');
      const victim = w.as.viewer;
      const victimOptions = await registrationOptions(victim);
      const options = await registrationOptions(mallory);
      // Mallory's browser swaps in the victim's user handle before creating the credential.
      const { response, credential } = auth.create({ ...options, user: { ...options.user, id: victimOptions.user.id } });
      const res = await mallory.post('/v1/me/passkeys', { name: 'tampered', response });
      // The server binds a credential to the session's account, never to what the client claims.
      assert.equal(res.status, 201);
      const stored = await passkeysOf('outsider');
      assert.deepEqual(
        stored.map((p) => p.credential_id),
        [credential.idB64u],
      );
      // A login with it that names the victim's handle is refused: it proves nobody.
      const login = await loginOptions(w.server.url);
      const r = await postLogin(w.server.url, auth.get(login, credential));
      assert.equal(r.status, 401);
      // Sent without the handle it signs in mallory, never the victim.
      const plain = await loginOptions(w.server.url);
      const ok = await postLogin(w.server.url, auth.get(plain, credential, { userHandle: null }));
      assert.equal(ok.status, 200);
      const events = await w.server.services.db.kysely
        .selectFrom('audit_events')
        .select(['actor'])
        .where('request_id', '=', ok.headers.get('x-request-id') ?? '')
        .where('action', '=', 'auth.login')
        .execute();
      assert.deepEqual(
        events.map((e) => e.actor),
        ['outsider'],
      );
    });
  });
}

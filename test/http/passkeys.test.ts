// Passkeys end to end over real HTTP, on both backends: registration, listing, passwordless
// login, step-up (which rotates the session id) and removal (which needs a fresh MFA). The
// authenticator is a software one building real attestation and assertion objects; the
// server checks them with its real @simplewebauthn code path.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, Client, json, PASSWORD, type World, world } from '../helpers/server.ts';
import { adopt, authenticatorFor, enrollPasskey, loginOptions, postLogin, registrationOptions, type SoftAuthenticator } from '../helpers/soft-authenticator.ts';

interface Passkey {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  transports: string[];
}

for (const backend of BACKENDS) {
  describe(`passkeys (${backend})`, () => {
    let w: World;
    let auth: SoftAuthenticator;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock });
      auth = authenticatorFor(w.server.url);
    });
    after(() => w.server.close());

    /** A user without any factor yet, signed in with a password (every fixture user has a passkey by now). */
    const freshUser = async (username: string): Promise<Client> => {
      const created = await w.admin.post('/v1/admin/users', { username, password: PASSWORD });
      assert.equal(created.status, 201, await created.clone().text());
      return w.client(username);
    };

    const audit = (action: string) =>
      w.server.services.db.kysely.selectFrom('audit_events').select(['actor', 'outcome', 'reason', 'details']).where('action', '=', action).execute();

    test('a signed-in user registers a passkey and lists it; public material only is stored', async () => {
      const c = w.as.viewer;
      const options = await registrationOptions(c);
      assert.equal(options.rp.id, 'localhost');
      const o = options as unknown as Record<string, unknown>;
      assert.deepEqual(
        (o.pubKeyCredParams as { alg: number }[]).map((p) => p.alg),
        [-8, -7, -257],
      );
      assert.deepEqual(o.authenticatorSelection, { residentKey: 'preferred', userVerification: 'preferred', requireResidentKey: false });
      // The challenge is random and long enough (>= 64 bits; the library gives 256).
      assert.ok(Buffer.from(options.challenge, 'base64url').length >= 8);

      const { response, credential } = auth.create(options);
      const res = await c.post('/v1/me/passkeys', { name: 'work laptop', response });
      assert.equal(res.status, 201, await res.clone().text());
      const created = await json<Passkey>(res);
      assert.equal(created.name, 'work laptop');
      assert.deepEqual(created.transports, ['internal', 'hybrid']);

      const list = await json<{ passkeys: Passkey[] }>(await c.get('/v1/me/passkeys'));
      assert.deepEqual(
        list.passkeys.map((p) => p.id),
        [created.id],
      );
      assert.ok(!JSON.stringify(list).includes('publicKey'));

      // The next registration excludes the authenticator already registered.
      const again = (await registrationOptions(c)) as unknown as { excludeCredentials: { id: string }[] };
      assert.deepEqual(
        again.excludeCredentials.map((x) => x.id),
        [credential.idB64u],
      );
      // Only the challenge's hash is kept server-side.
      const rows = await w.server.services.db.kysely.selectFrom('webauthn_challenges').selectAll().execute();
      assert.ok(!JSON.stringify(rows).includes(options.challenge));
      const events = await audit('auth.passkey_registered');
      assert.ok(events.some((e) => e.actor === 'viewer' && e.outcome === 'success'));
    });

    test('passwordless login with a discoverable passkey gives a session with amr hwk and mfa', async () => {
      const owner = w.as['data-scientist'];
      const { res, credential } = await enrollPasskey(owner, auth, 'yubikey');
      assert.equal(res.status, 201);

      const options = await loginOptions(w.server.url);
      assert.equal(options.userVerification, 'required');
      assert.equal(options.allowCredentials, undefined);
      const r = await postLogin(w.server.url, auth.get(options, credential));
      assert.equal(r.status, 200, await r.clone().text());
      const body = await json<{ status: string; csrfToken: string }>(r.clone());
      assert.equal(body.status, 'ok');
      assert.match(r.headers.get('set-cookie') ?? '', /^modelkeep_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/);

      const c = new Client(w.server.url);
      await adopt(c, r);
      const me = await json<{ user: { username: string }; session: { amr: string[] } }>(await c.get('/v1/me'));
      assert.equal(me.user.username, 'data-scientist');
      assert.deepEqual([...me.session.amr].sort(), ['hwk', 'mfa']);
      // The CSRF token works: a state change goes through.
      assert.equal((await c.post('/v1/auth/logout')).status, 200);

      const logins = await audit('auth.login');
      assert.ok(logins.some((e) => e.actor === 'data-scientist' && e.outcome === 'success' && JSON.stringify(e.details).includes('hwk')));
      const row = await w.server.services.db.kysely.selectFrom('webauthn_credentials').selectAll().where('credential_id', '=', credential.idB64u).executeTakeFirstOrThrow();
      assert.equal(Number(row.counter), credential.counter);
      assert.notEqual(row.last_used_at, null);
    });

    test('login options for a username list its passkeys, and have the same shape for an unknown user', async () => {
      const owner = w.as['ml-engineer'];
      const { credential } = await enrollPasskey(owner, auth, 'phone');
      const known = await loginOptions(w.server.url, 'ml-engineer');
      const unknown = await loginOptions(w.server.url, 'nobody-at-all');
      const noPasskey = await loginOptions(w.server.url, 'auditor');
      assert.deepEqual(
        known.allowCredentials?.map((c) => c.id),
        [credential.idB64u],
      );
      const shape = (o: object) =>
        JSON.stringify(o, (k, v) => (k === 'challenge' || k === 'id' ? typeof v : v as unknown));
      assert.equal(shape(unknown), shape(known));
      assert.equal(shape(noPasskey), shape(known));
      // Asked twice, an unknown user's decoy stays the same (a changing id would give it away).
      assert.deepEqual((await loginOptions(w.server.url, 'nobody-at-all')).allowCredentials, unknown.allowCredentials);

      const r = await postLogin(w.server.url, auth.get(known, credential));
      assert.equal(r.status, 200);
    });

    test('step-up with a passkey records MFA in the session and rotates its id', async () => {
      const c = await w.passwordOnly('release-manager');
      const { credential } = await enrollPasskey(c, auth, 'key');
      const before = await json<{ session: { id: string; amr: string[] } }>(await c.get('/v1/me'));
      assert.deepEqual(before.session.amr, ['pwd']);
      const oldCookie = c.cookie;

      const optRes = await c.post('/v1/auth/step-up/passkey/options', {});
      assert.equal(optRes.status, 200);
      const options = await json<{ challenge: string; allowCredentials: { id: string }[] }>(optRes);
      assert.deepEqual(
        options.allowCredentials.map((x) => x.id),
        [credential.idB64u],
      );
      const r = await c.post('/v1/auth/step-up/passkey', { response: auth.get(options, credential) });
      assert.equal(r.status, 200, await r.clone().text());
      await adopt(c, r);
      assert.notEqual(c.cookie, oldCookie);

      const after = await json<{ session: { id: string; amr: string[] } }>(await c.get('/v1/me'));
      assert.notEqual(after.session.id, before.session.id);
      assert.deepEqual([...after.session.amr].sort(), ['hwk', 'mfa', 'pwd']);
      const row = await w.server.services.db.kysely.selectFrom('sessions').select(['mfa_at', 'expires_at']).where('id', '=', after.session.id).executeTakeFirstOrThrow();
      assert.equal(row.mfa_at, clock.now().toISOString());
      // The old session id is dead: a cookie captured before the step-up is worthless.
      const stale = new Client(w.server.url);
      stale.cookie = oldCookie;
      assert.equal((await stale.get('/v1/me')).status, 401);
      const old = await w.server.services.db.kysely.selectFrom('sessions').select(['revoked_reason', 'expires_at']).where('id', '=', before.session.id).executeTakeFirstOrThrow();
      assert.equal(old.revoked_reason, 'step-up');
      // A step-up never extends the absolute lifetime.
      assert.equal(row.expires_at, old.expires_at);
      assert.ok((await audit('auth.step_up')).some((e) => e.actor === 'release-manager' && e.outcome === 'success'));
    });

    test('as a second factor (the seam for the pending password login): bound to the user and the pending login', async () => {
      const svc = w.server.services.webauthn;
      const users = w.server.services.identity.users;
      const owner = await w.client('auditor');
      const { credential } = await enrollPasskey(owner, auth, 'second factor');
      const other = await enrollPasskey(await w.client('outsider'), auth, 'not yours');
      const auditor = await users.byUsername('auditor');
      assert.ok(auditor);
      const ctx = () => ({ requestId: `req_test_${Math.random()}`, principal: { kind: 'anonymous' as const }, ip: null, userAgent: null, now: clock.now() });
      const code = async (p: Promise<unknown>) => {
        try {
          await p;
          return 'ok';
        } catch (err) {
          return (err as { code?: string }).code ?? String(err);
        }
      };
      // UP without UV is enough here: the password was the other factor.
      const o1 = await svc.secondFactorOptions(ctx(), auditor.id, 'pending-1');
      assert.equal(await code(svc.verifyUserAssertion(ctx(), auditor.id, auth.get(o1, credential, { flags: 0x01 }), 'pending-1')), 'ok');
      // Another pending login's challenge, another user's passkey, a spent challenge: refused.
      const o2 = await svc.secondFactorOptions(ctx(), auditor.id, 'pending-2');
      assert.equal(await code(svc.verifyUserAssertion(ctx(), auditor.id, auth.get(o2, credential), 'pending-3')), 'invalid_credentials');
      const o3 = await svc.secondFactorOptions(ctx(), auditor.id, 'pending-4');
      assert.equal(await code(svc.verifyUserAssertion(ctx(), auditor.id, auth.get(o3, other.credential), 'pending-4')), 'invalid_credentials');
      assert.equal(await code(svc.verifyUserAssertion(ctx(), auditor.id, auth.get(o1, credential), 'pending-1')), 'invalid_credentials');
    });

    test('removing a passkey needs a fresh MFA, and only the owner can remove it', async () => {
      const c = await w.passwordOnly('project-admin');
      const { res, credential } = await enrollPasskey(c, auth, 'old key');
      const pk = await json<Passkey>(res);

      const denied = await c.del(`/v1/me/passkeys/${pk.id}`);
      assert.equal(denied.status, 428);
      assert.equal((await json<{ error: { code: string } }>(denied)).error.code, 'mfa_required');
      assert.equal((await json<{ passkeys: Passkey[] }>(await c.get('/v1/me/passkeys'))).passkeys.length, 1);

      const stepUp = async () => {
        const options = await json<{ challenge: string }>(await c.post('/v1/auth/step-up/passkey/options', {}));
        const r = await c.post('/v1/auth/step-up/passkey', { response: auth.get(options, credential) });
        assert.equal(r.status, 200);
        await adopt(c, r);
      };
      await stepUp();
      // Someone else's passkey id is simply not found.
      assert.equal((await c.del('/v1/me/passkeys/pk_doesnotexist')).status, 404);
      const other = await freshUser('pk-other-owner');
      const theirs = await enrollPasskey(other, auth, 'theirs');
      assert.equal((await c.del(`/v1/me/passkeys/${(await json<Passkey>(theirs.res)).id}`)).status, 404);

      // The MFA is fresh only for 15 minutes.
      clock.advance(16 * 60_000);
      assert.equal((await c.del(`/v1/me/passkeys/${pk.id}`)).status, 428);
      await stepUp();
      const ok = await c.del(`/v1/me/passkeys/${pk.id}`);
      assert.equal(ok.status, 204, await ok.clone().text());
      assert.deepEqual((await json<{ passkeys: Passkey[] }>(await c.get('/v1/me/passkeys'))).passkeys, []);
      assert.ok((await audit('auth.passkey_removed')).some((e) => e.actor === 'project-admin' && e.outcome === 'success'));
      assert.ok((await audit('auth.passkey_removed')).some((e) => e.actor === 'project-admin' && e.outcome === 'deny'));
      // And the removed passkey no longer logs in.
      const login = await loginOptions(w.server.url);
      assert.equal((await postLogin(w.server.url, auth.get(login, credential))).status, 401);
    });

    test('a passkey finishes a password login as the second factor; the mfaToken works once', async () => {
      const c = await freshUser('pk-second-factor');
      const { res, credential } = await enrollPasskey(c, auth, 'second factor');
      assert.equal(res.status, 201);
      const stranger = await enrollPasskey(await freshUser('pk-stranger'), auth, 'stranger');
      assert.equal(stranger.res.status, 201);

      const post = (path: string, body: unknown) =>
        fetch(`${w.server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const first = await json<{ status: string; mfaToken: string; methods: string[] }>(await post('/v1/auth/login', { username: 'pk-second-factor', password: PASSWORD }));
      assert.equal(first.status, 'mfa_required');
      assert.ok(first.methods.includes('webauthn'), `methods: ${first.methods.join(',')}`);

      // A garbage mfaToken gets nothing, not even options.
      assert.equal((await post('/v1/auth/mfa/passkey/options', { mfaToken: 'nope' })).status, 401);
      // Another user's passkey does not finish this login.
      const o = await json<{ challenge: string }>(await post('/v1/auth/mfa/passkey/options', { mfaToken: first.mfaToken }));
      assert.equal((await post('/v1/auth/mfa/passkey', { mfaToken: first.mfaToken, response: auth.get(o, stranger.credential) })).status, 401);
      const options = await json<{ challenge: string }>(await post('/v1/auth/mfa/passkey/options', { mfaToken: first.mfaToken }));
      const ok = await post('/v1/auth/mfa/passkey', { mfaToken: first.mfaToken, response: auth.get(options, credential) });
      assert.equal(ok.status, 200, await ok.clone().text());
      const signedIn = new Client(w.server.url);
      await adopt(signedIn, ok);
      const me = await json<{ session: { amr: string[]; mfaAt: string | null } }>(await signedIn.get('/v1/me'));
      assert.deepEqual([...me.session.amr].sort(), ['hwk', 'mfa', 'pwd']);
      assert.notEqual(me.session.mfaAt, null);
      // The pending login is spent: the same mfaToken cannot mint a second session.
      assert.equal((await post('/v1/auth/mfa/passkey/options', { mfaToken: first.mfaToken })).status, 401);
      assert.equal((await post('/v1/auth/mfa/passkey', { mfaToken: first.mfaToken, response: auth.get(options, credential) })).status, 401);
    });
  });
}

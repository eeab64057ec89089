// MC-AUTHN-05 — WebAuthn assertion tampering (W3C WebAuthn L2 §7.2; NIST SP 800-63B-4
// §3.1.6.2, §3.2.5; ASVS 5.0 6.7.2). Each tampered assertion, built by a software
// authenticator and checked by the server's real verification path, is refused with the
// same generic 401; the audit log says what was wrong. A signature counter that goes back
// is flagged as a possible clone and raises a high alert.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, type Client, json, type World, world } from '../helpers/server.ts';
import {
  adopt,
  authenticatorFor,
  enrollPasskey,
  FLAG_UP,
  FLAG_UV,
  loginOptions,
  postLogin,
  type SoftAuthenticator,
  type SoftCredential,
} from '../helpers/soft-authenticator.ts';

const GENERIC = { code: 'invalid_credentials', message: 'the passkey could not be verified' };

for (const backend of BACKENDS) {
  describe(`MC-AUTHN-05 WebAuthn assertion tampering (${backend})`, () => {
    let w: World;
    let auth: SoftAuthenticator;
    let alice: Client;
    let bob: Client;
    let aliceKey: SoftCredential;
    let bobKey: SoftCredential;
    const clock = new ManualClock(Date.now());

    before(async () => {
      w = await world(backend, { clock });
      auth = authenticatorFor(w.server.url);
      alice = w.as.viewer;
      bob = w.as['data-scientist'];
      aliceKey = (await enrollPasskey(alice, auth, 'alice key')).credential;
      bobKey = (await enrollPasskey(bob, auth, 'bob key')).credential;
    });
    after(() => w.server.close());

    /** The failure reasons audited for one request. */
    const reasons = async (res: Response): Promise<string[]> => {
      const rows = await w.server.services.db.kysely
        .selectFrom('audit_events')
        .select(['reason', 'outcome'])
        .where('request_id', '=', res.headers.get('x-request-id') ?? '')
        .execute();
      return rows.filter((r) => r.outcome === 'failure').map((r) => r.reason ?? '');
    };

    /** Asserts the generic refusal, no cookie, and an audited reason matching `why`. */
    const refused = async (res: Response, why: RegExp, status = 401) => {
      assert.equal(res.status, status, await res.clone().text());
      const body = await json<{ error: { code: string; message: string } }>(res.clone());
      assert.deepEqual({ code: body.error.code, message: body.error.message }, GENERIC);
      assert.equal(res.headers.get('set-cookie'), null);
      const audited = await reasons(res);
      assert.ok(
        audited.some((r) => why.test(r)),
        `audited: ${JSON.stringify(audited)}`,
      );
    };

    test('control: an untampered passwordless login succeeds', async () => {
      const options = await loginOptions(w.server.url);
      assert.equal((await postLogin(w.server.url, auth.get(options, aliceKey))).status, 200);
    });

    test('an assertion made for another origin (phishing page) is refused', async () => {
      const options = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(options, aliceKey, { origin: 'https://console.example.evil.net' })), /origin/);
    });

    test('an assertion scoped to another relying party (rpIdHash) is refused', async () => {
      const options = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(options, aliceKey, { rpId: 'example.evil.net' })), /RP ID|rpIdHash/i);
    });

    test('a challenge is single use: a second assertion over a spent challenge is refused', async () => {
      const options = await loginOptions(w.server.url);
      assert.equal((await postLogin(w.server.url, auth.get(options, aliceKey))).status, 200);
      await refused(await postLogin(w.server.url, auth.get(options, aliceKey)), /challenge/);
      // Also a challenge the server never issued.
      await refused(await postLogin(w.server.url, auth.get({ ...options, challenge: Buffer.alloc(32, 7).toString('base64url') }, aliceKey)), /challenge/);
    });

    test('a challenge expires after 5 minutes', async () => {
      const options = await loginOptions(w.server.url);
      clock.advance(5 * 60_000 + 1000);
      try {
        await refused(await postLogin(w.server.url, auth.get(options, aliceKey)), /challenge/);
      } finally {
        clock.advance(-(5 * 60_000 + 1000));
      }
    });

    test("a challenge issued to another user's ceremony is refused", async () => {
      // Login options asked for alice: bob's passkey cannot answer them.
      const forAlice = await loginOptions(w.server.url, 'viewer');
      await refused(await postLogin(w.server.url, auth.get(forAlice, bobKey)), /challenge/);
      // Alice's step-up challenge, answered in bob's session with bob's own passkey.
      const aliceStepUp = await json<{ challenge: string }>(await alice.post('/v1/auth/step-up/passkey/options', {}));
      await refused(await bob.post('/v1/auth/step-up/passkey', { response: auth.get(aliceStepUp, bobKey) }), /challenge/);
      // A step-up challenge is not a login challenge either (bound to its ceremony).
      const bobStepUp = await json<{ challenge: string }>(await bob.post('/v1/auth/step-up/passkey/options', {}));
      await refused(await postLogin(w.server.url, auth.get(bobStepUp, bobKey)), /challenge/);
    });

    test('user presence (UP) cleared is refused', async () => {
      const options = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(options, aliceKey, { flags: FLAG_UV })), /not present|presence/i);
      const stepUp = await json<{ challenge: string }>(await alice.post('/v1/auth/step-up/passkey/options', {}));
      await refused(await alice.post('/v1/auth/step-up/passkey', { response: auth.get(stepUp, aliceKey, { flags: FLAG_UV }) }), /not present|presence/i);
    });

    test('user verification (UV) cleared is refused for passwordless login, where the passkey is the only factor', async () => {
      const options = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(options, aliceKey, { flags: FLAG_UP })), /verification/i);
    });

    test('a forged signature and a user handle naming someone else are refused', async () => {
      const options = await loginOptions(w.server.url);
      const a = auth.get(options, aliceKey) as { response: { signature: string } };
      const sig = Buffer.from(a.response.signature, 'base64url');
      sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 1;
      a.response.signature = sig.toString('base64url');
      await refused(await postLogin(w.server.url, a), /signature|verification failed/);
      const again = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(again, aliceKey, { userHandle: bobKey.userHandle })), /user handle/);
    });

    test('a signature counter lower than (or equal to) the stored one is refused and flagged as a clone', async () => {
      // What the server last accepted (the soft authenticator also counted the refused attempts above).
      const stored = await w.server.services.db.kysely.selectFrom('webauthn_credentials').select('counter').where('credential_id', '=', aliceKey.idB64u).executeTakeFirstOrThrow();
      const seen = Number(stored.counter);
      assert.ok(seen > 1);
      const options = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(options, aliceKey, { counter: seen - 1 })), /counter/);
      const again = await loginOptions(w.server.url);
      await refused(await postLogin(w.server.url, auth.get(again, aliceKey, { counter: seen })), /counter/);
      const flagged = await w.server.services.db.kysely
        .selectFrom('audit_events')
        .select(['actor', 'resource', 'details'])
        .where('action', '=', 'auth.passkey_clone_suspected')
        .execute();
      assert.equal(flagged.length, 2);
      assert.ok(flagged.every((e) => e.resource === 'user:viewer'));
      // The detector raises one high alert for this passkey.
      const deadline = Date.now() + 10_000;
      let alerts: { severity: string }[] = [];
      while (Date.now() < deadline) {
        alerts = await w.server.services.db.kysely.selectFrom('audit_alerts').select('severity').where('rule', '=', 'passkey-clone-suspected').execute();
        if (alerts.length > 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(
        alerts.map((a) => a.severity),
        ['high'],
      );
      // The stored counter did not move: the genuine authenticator still works.
      const ok = await loginOptions(w.server.url);
      assert.equal((await postLogin(w.server.url, auth.get(ok, aliceKey))).status, 200);
    });

    test("another user's credential cannot be used for step-up", async () => {
      const before = alice.cookie;
      const amrBefore = (await json<{ session: { amr: string[] } }>(await alice.get('/v1/me'))).session.amr;
      const options = await json<{ challenge: string }>(await alice.post('/v1/auth/step-up/passkey/options', {}));
      await refused(await alice.post('/v1/auth/step-up/passkey', { response: auth.get(options, bobKey) }), /another user/);
      // Nothing changed: alice's session is still the same one, with the same amr.
      assert.equal(alice.cookie, before);
      const me = await json<{ session: { amr: string[] } }>(await alice.get('/v1/me'));
      assert.deepEqual(me.session.amr, amrBefore);
      // Control: her own passkey works.
      const fresh = await json<{ challenge: string }>(await alice.post('/v1/auth/step-up/passkey/options', {}));
      const ok = await alice.post('/v1/auth/step-up/passkey', { response: auth.get(fresh, aliceKey) });
      assert.equal(ok.status, 200);
      await adopt(alice, ok);
    });

    test('every failure above is generic outside: unknown credential looks like a bad signature', async () => {
      const options = await loginOptions(w.server.url);
      const unknown = auth.create({ challenge: options.challenge, rp: { name: 'x', id: 'localhost' }, user: { id: 'eA', name: 'x' } }).credential;
      await refused(await postLogin(w.server.url, auth.get(options, unknown)), /unknown credential/);
      await refused(await postLogin(w.server.url, { id: 'not a credential' }), /malformed/);
    });
  });
}

// MC-DF-04 — remote (consent) phishing of a device login (RFC 8628 s5.4; ASVS 5.0 10.7.1,
// 10.7.2, 3.5.1). The attacker starts a flow and sends the victim the code. The approval
// info names the client, the scopes, and the requesting IP and user agent; approving takes
// an explicit POST with the session's CSRF token (cross-site or token-less posts are 403,
// GET is no approval); a bearer token or API key cannot approve (only a console session);
// privileged scopes (release, admin) need MFA within 15 minutes (428 mfa_required
// otherwise); a code is approved once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { bearer, CLI, DEVICE_GRANT, deviceLogin, form } from '../helpers/oauth.ts';
import { BACKENDS, Client, expectOk, json, type World, world } from '../helpers/server.ts';

const ATTACKER_UA = 'evil-cli/6.6 (phishing kit)';

for (const backend of BACKENDS) {
  describe(`MC-DF-04 consent phishing (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    const attackerStart = async (scope?: string) => {
      const r = await form(w.server.url, '/oauth/device_authorization', { client_id: CLI, ...(scope ? { scope } : {}) }, { 'user-agent': ATTACKER_UA });
      assert.equal(r.status, 200);
      return json<{ device_code: string; user_code: string }>(r);
    };
    const pending = async (deviceCode: string) =>
      (await json<{ error: string }>(await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: CLI }))).error;

    /** A console session for `username` issued in-process with the given MFA time (TOTP lands with the identity-mfa branch). */
    const sessionWithMfa = async (username: string, mfaAt: Date): Promise<Client> => {
      const user = await w.server.services.identity.users.byUsername(username);
      assert.ok(user);
      const ctx = { requestId: 'test', principal: { kind: 'anonymous' as const }, ip: '127.0.0.1', userAgent: 'test', now: clock.now() };
      const s = await w.server.services.identity.issueSession(ctx, user, ['pwd', 'otp', 'mfa'], mfaAt);
      const c = new Client(w.server.url);
      c.cookie = `modelkeep_session=${s.token}`;
      c.csrf = s.csrfToken;
      return c;
    };

    test('the approval info names the client, the scopes, the requesting address and user agent', async () => {
      const d = await attackerStart('read download');
      const c = await w.client('viewer');
      const r = await c.get(`/v1/auth/device?userCode=${encodeURIComponent(d.user_code)}`);
      assert.equal(r.status, 200);
      const info = await json<{ clientId: string; scopes: string[]; ip: string; userAgent: string; userCode: string; expiresAt: string }>(r);
      assert.equal(info.clientId, CLI);
      assert.deepEqual(info.scopes, ['read', 'download']);
      assert.equal(info.ip, '127.0.0.1');
      assert.equal(info.userAgent, ATTACKER_UA);
      assert.equal(info.userCode, d.user_code);
      assert.ok(Date.parse(info.expiresAt) > clock.now().getTime());
      // Looking is not approving.
      assert.equal(await pending(d.device_code), 'authorization_pending');
    });

    test('approving needs POST with the CSRF token: no token, a wrong token or a cross-site post is 403; GET is no approval', async () => {
      const d = await attackerStart();
      const c = await w.client('viewer');
      const noCsrf = await fetch(`${w.server.url}/v1/auth/device/approve`, {
        method: 'POST',
        headers: { cookie: c.cookie ?? '', 'content-type': 'application/json' },
        body: JSON.stringify({ userCode: d.user_code }),
      });
      assert.equal(noCsrf.status, 403);
      assert.equal((await json<{ error: { code: string } }>(noCsrf)).error.code, 'csrf_failed');
      const wrong = await c.post('/v1/auth/device/approve', { userCode: d.user_code }, { 'x-csrf-token': 'x'.repeat(43) });
      assert.equal(wrong.status, 403);
      const crossSite = await c.post('/v1/auth/device/approve', { userCode: d.user_code }, { 'sec-fetch-site': 'cross-site' });
      assert.equal(crossSite.status, 403);
      const otherOrigin = await c.post('/v1/auth/device/approve', { userCode: d.user_code }, { origin: 'https://evil.example' });
      assert.equal(otherOrigin.status, 403);
      // A classic HTML form post (no JSON) is refused too.
      const htmlForm = await fetch(`${w.server.url}/v1/auth/device/approve`, {
        method: 'POST',
        headers: { cookie: c.cookie ?? '', 'content-type': 'application/x-www-form-urlencoded' },
        body: `userCode=${d.user_code}`,
      });
      assert.ok(htmlForm.status === 403 || htmlForm.status === 415, `form post: ${htmlForm.status}`);
      for (const path of [`/v1/auth/device/approve?userCode=${d.user_code}`, `/v1/auth/device/deny?userCode=${d.user_code}`]) {
        const g = await c.get(path);
        assert.ok(g.status === 404 || g.status === 405, `GET ${path}: ${g.status}`);
      }
      assert.equal(await pending(d.device_code), 'authorization_pending', 'none of it approved the code');
      assert.equal((await c.post('/v1/auth/device/approve', { userCode: d.user_code })).status, 200, 'control: a proper POST approves');
    });

    test('a bearer access token or an API key cannot approve (only a console session)', async () => {
      const c = await w.client('viewer');
      const t = await deviceLogin(w.server.url, c, 'read write');
      const k = await json<{ token: string }>(await expectOk(await c.post('/v1/me/api-keys', { name: 'k', scopes: ['read', 'write'], expiresInDays: 7 })));
      const d = await attackerStart();
      for (const [what, token] of [['access token', t.access_token], ['API key', k.token]] as const) {
        const r = await bearer(w.server.url, token, '/v1/auth/device/approve', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userCode: d.user_code }) });
        assert.equal(r.status, 403, what);
        const info = await bearer(w.server.url, token, `/v1/auth/device?userCode=${d.user_code}`);
        assert.equal(info.status, 403, `${what} (info)`);
      }
      assert.equal(await pending(d.device_code), 'authorization_pending');
    });

    test('privileged scopes need MFA within 15 minutes: 428 without, 428 when stale, approved when fresh', async () => {
      for (const scope of ['read release', 'admin']) {
        const d = await attackerStart(scope);
        const plain = await w.passwordOnly('release-manager');
        const r = await plain.post('/v1/auth/device/approve', { userCode: d.user_code });
        assert.equal(r.status, 428, `${scope}: session without MFA`);
        assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'mfa_required');
        const info = await json<{ mfaRequired: boolean }>(await plain.get(`/v1/auth/device?userCode=${d.user_code}`));
        assert.equal(info.mfaRequired, true);
        const stale = await sessionWithMfa('release-manager', new Date(clock.now().getTime() - 16 * 60_000));
        assert.equal((await stale.post('/v1/auth/device/approve', { userCode: d.user_code })).status, 428, `${scope}: stale MFA`);
        assert.equal(await pending(d.device_code), 'authorization_pending');
        const fresh = await sessionWithMfa('release-manager', clock.now());
        const ok = await fresh.post('/v1/auth/device/approve', { userCode: d.user_code });
        assert.equal(ok.status, 200, await ok.clone().text());
      }
      // A non-privileged scope needs no MFA for an account without a second factor.
      const d = await attackerStart('read');
      assert.equal((await (await w.client('viewer')).post('/v1/auth/device/approve', { userCode: d.user_code })).status, 200);
    });

    test('one approval per code: a second approve (same or another user) and a later deny are errors; the approver stays the first', async () => {
      const d = await attackerStart();
      const viewer = await w.client('viewer');
      assert.equal((await viewer.post('/v1/auth/device/approve', { userCode: d.user_code })).status, 200);
      assert.equal((await viewer.post('/v1/auth/device/approve', { userCode: d.user_code })).status, 422);
      const other = await w.client('auditor');
      assert.equal((await other.post('/v1/auth/device/approve', { userCode: d.user_code })).status, 422);
      assert.equal((await other.post('/v1/auth/device/deny', { userCode: d.user_code })).status, 422);
      const t = await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: CLI });
      assert.equal(t.status, 200);
      const me = await json<{ user: { username: string } }>(await bearer(w.server.url, (await json<{ access_token: string }>(t)).access_token, '/v1/me'));
      assert.equal(me.user.username, 'viewer');
    });
  });
}

// The console's identity and authorization pages against the real routes, in Chromium:
// sign-in with TOTP, a recovery code, a passkey as second factor and alone (Chromium's
// virtual WebAuthn authenticator over CDP); My security (sessions, TOTP, passkeys, API
// keys, notifications and their badge); device approval with an in-place step-up;
// promotion to production with a stale second factor; service accounts on the Users page.
// The console is opened at http://localhost:PORT: WebAuthn refuses IP addresses, and the
// server's default relying party on loopback is rpId 'localhost'. The server runs on a
// hand-moved clock (near real time, so the page's idle countdown is unaffected): TOTP
// codes come from the enrolled secret at that clock, and "stale MFA" is a clock advance.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { ManualClock } from '../../src/core/index.ts';
import { bearer, CLI, DEVICE_GRANT, form, startDevice } from '../helpers/oauth.ts';
import { Client, enrollTotp, expectOk, json, markMfa, PASSWORD, totpCode, type World, world } from '../helpers/server.ts';
import { ensureConsoleBuilt, launch, newContext, shot, signIn } from './browser.ts';

const STEP = 30_000;
const MINUTE = 60_000;

/** A virtual platform authenticator (resident keys, user verification) for this page. */
async function virtualAuthenticator(context: BrowserContext, page: Page): Promise<void> {
  const cdp = await context.newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });
}

/** GET from inside the page (its cookie, same origin): what the server says about this session. */
async function pageGet<T>(page: Page, path: string): Promise<T> {
  return page.evaluate(async (p) => {
    const r = await fetch(p, { credentials: 'same-origin' });
    return (await r.json()) as unknown;
  }, path) as Promise<T>;
}

async function signOut(page: Page): Promise<void> {
  await page.getByTestId('sign-out').click();
  await page.getByTestId('sign-in-form').waitFor();
}

describe('console identity pages in Chromium', () => {
  let w: World;
  let browser: Browser;
  let base: string;
  // Near real time, on a TOTP step boundary.
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP);

  before(async () => {
    ensureConsoleBuilt();
    browser = await launch();
    w = await world('sqlite', { clock });
    base = w.server.url.replace('127.0.0.1', 'localhost');
  });
  after(async () => {
    await browser?.close();
    await w?.server.close();
  });

  test('sign-in page: password then a TOTP code; a recovery code instead of the code', async () => {
    const { secret, recoveryCodes } = await enrollTotp(await w.client('data-scientist'), clock.now());
    clock.advance(STEP);
    const { context, page, problems } = await newContext(browser, base);
    await page.goto('/');
    await page.getByTestId('username').fill('data-scientist');
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('second-factor').waitFor();
    // A wrong code is refused without saying more.
    await page.getByTestId('totp-code').fill(totpCode(secret, clock.now().getTime() + 40 * STEP));
    await page.getByTestId('verify').click();
    await page.locator('[data-testid="second-factor"] .status.error').waitFor();
    await page.getByTestId('totp-code').fill(totpCode(secret, clock.now()));
    await page.getByTestId('verify').click();
    await page.getByTestId('role-summary').waitFor();
    const me = await pageGet<{ session: { amr: string[]; mfaAt: string | null } }>(page, '/v1/me');
    assert.ok(me.session.amr.includes('otp') && me.session.amr.includes('mfa'), JSON.stringify(me.session.amr));
    assert.equal(me.session.mfaAt, clock.now().toISOString());

    await signOut(page);
    await page.getByTestId('username').fill('data-scientist');
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('use-recovery').click();
    await page.getByTestId('recovery-code').fill(recoveryCodes[0] ?? '');
    await page.getByTestId('verify').click();
    await page.getByTestId('role-summary').waitFor();
    const mfa = await pageGet<{ recoveryCodesLeft: number }>(page, '/v1/me/mfa');
    assert.equal(mfa.recoveryCodesLeft, recoveryCodes.length - 1, 'the recovery code is spent');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('my security page registers a passkey (virtual authenticator); the sign-in page uses it as second factor and alone; it is removed again', async () => {
    const { context, page, problems } = await newContext(browser, base);
    await virtualAuthenticator(context, page);
    await signIn(page, 'auditor');
    await page.goto('/#/security');
    await page.getByTestId('passkey-name').fill('laptop');
    await page.getByTestId('passkey-add').click();
    await page.getByTestId('passkeys').getByText('laptop').waitFor();
    await signOut(page);

    // Password, then the passkey as second factor.
    await page.getByTestId('username').fill('auditor');
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('mfa-passkey').click();
    await page.getByTestId('role-summary').waitFor();
    let me = await pageGet<{ user: { username: string }; session: { amr: string[] } }>(page, '/v1/me');
    assert.deepEqual([me.user.username, me.session.amr.includes('hwk'), me.session.amr.includes('mfa')], ['auditor', true, true]);
    await signOut(page);

    // The passkey alone (discoverable credential: no username typed).
    await page.getByTestId('sign-in-passkey').click();
    await page.getByTestId('role-summary').waitFor();
    me = await pageGet(page, '/v1/me');
    assert.equal(me.user.username, 'auditor');
    assert.ok(!me.session.amr.includes('pwd'), JSON.stringify(me.session.amr));
    const storage = await page.evaluate(() => {
      const g = globalThis as unknown as { localStorage: { length: number }; sessionStorage: { length: number }; document: { cookie: string } };
      return [g.localStorage.length, g.sessionStorage.length, g.document.cookie];
    });
    assert.deepEqual(storage, [0, 0, '']);

    // Removing it (the passkey sign-in was a fresh factor: no step-up needed).
    await page.goto('/#/security');
    await page.getByTestId('passkey-remove-laptop').click();
    await page.getByTestId('passkeys-section').getByText('No passkeys yet.').waitFor();
    assert.deepEqual((await json<{ passkeys: unknown[] }>(await w.client('auditor').then((c) => c.get('/v1/me/passkeys')))).passkeys, []);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('device approval page: code, client, scopes, address and program; approval asks for a fresh TOTP in place; the CLI side then gets tokens; deny refuses', async () => {
    const { secret } = await enrollTotp(await w.client('ml-engineer'), clock.now());
    clock.advance(STEP);
    const { context, page, problems } = await newContext(browser, base);
    await page.goto('/');
    await page.getByTestId('username').fill('ml-engineer');
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('totp-code').fill(totpCode(secret, clock.now()));
    await page.getByTestId('verify').click();
    await page.getByTestId('role-summary').waitFor();
    // The second factor of the sign-in is no longer fresh (15 minutes).
    clock.advance(16 * MINUTE);

    const d = await startDevice(w.server.url, 'read download');
    await page.goto(`/device?user_code=${d.user_code}`);
    await page.getByTestId('device-details').waitFor();
    assert.equal(await page.getByTestId('device-code').textContent(), d.user_code);
    assert.equal(await page.getByTestId('device-client').textContent(), CLI);
    assert.equal(await page.getByTestId('device-scopes').textContent(), 'read, download');
    assert.equal(await page.getByTestId('device-ip').textContent(), '127.0.0.1');
    assert.ok(((await page.getByTestId('device-user-agent').textContent()) ?? '').length > 0);
    await shot(page, 'device');

    await page.getByTestId('device-approve').click();
    await page.getByTestId('stepup-dialog').waitFor();
    await page.getByTestId('stepup-code').fill(totpCode(secret, clock.now()));
    await page.getByTestId('stepup-submit').click();
    await page.getByText('Approved. Return to your terminal.').waitFor();
    const t = await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: CLI });
    assert.equal(t.status, 200, await t.clone().text());
    const tokens = await json<{ access_token: string; refresh_token: string; scope: string }>(t);
    assert.equal(tokens.scope, 'read download');
    const me = await json<{ user: { username: string } }>(await bearer(w.server.url, tokens.access_token, '/v1/me'));
    assert.equal(me.user.username, 'ml-engineer');

    const d2 = await startDevice(w.server.url);
    await page.goto(`/device?user_code=${d2.user_code}`);
    await page.getByTestId('device-deny').click();
    await page.getByText('Denied. The device gets no access.').waitFor();
    const t2 = await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d2.device_code, client_id: CLI });
    assert.equal(t2.status, 400);
    assert.equal((await json<{ error: string }>(t2)).error, 'access_denied');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('version page: a release-manager with a password-only session sees "needs a fresh sign-in factor", is asked for the TOTP code in place, and the version ends in production', async () => {
    const M = '/v1/projects/fraud/models/release-me';
    // (ml-engineer has TOTP by now: a fresh ml-engineer authors the model.)
    await expectOk(await w.admin.post('/v1/admin/users', { username: 'author', password: PASSWORD }));
    await markMfa(w.server, 'admin'); // granting needs a fresh second factor; the clock moved
    await expectOk(await w.admin.post('/v1/projects/fraud/bindings', { principal: 'user:author', role: 'ml-engineer' }));
    const mle = await w.client('author');
    await expectOk(await mle.post('/v1/projects/fraud/models', { name: 'release-me' }));
    await expectOk(await mle.post(`${M}/versions`, {}));
    await expectOk(await mle.upload(`${M}/versions/1/artifacts/model.bin`, 'weights'));
    await expectOk(await mle.post(`${M}/versions/1/finalize`));
    await expectOk(await mle.post(`${M}/versions/1/promote`, { stage: 'staging' }));

    // A password-only session (no second factor in it) handed to the browser; then TOTP is enrolled elsewhere.
    // (w.client would mark every session of the user as MFA'd: a plain password login enrolls.)
    const pwd = await w.passwordOnly('release-manager');
    const enroller = new Client(w.server.url);
    await expectOk(await enroller.login('release-manager'));
    const { secret } = await enrollTotp(enroller, clock.now());
    clock.advance(STEP);
    const { context, page, problems } = await newContext(browser, base);
    const [name = '', value = ''] = (pwd.cookie ?? '').split('=');
    await context.addCookies([{ name, value, url: base, httpOnly: true, sameSite: 'Strict' }]);
    await page.goto('/#/projects/fraud/models/release-me/versions/1');
    const promote = page.getByTestId('promote-production');
    await promote.waitFor();
    assert.equal(await promote.isDisabled(), false, 'not disabled: it asks for a factor');
    assert.equal(await page.getByTestId('mfa-note').textContent(), ' needs a fresh sign-in factor');
    assert.match((await page.getByTestId('role-summary').textContent()) ?? '', /promote to production \(needs a fresh sign-in factor\)/);
    const perms = await pageGet<{ actions: Record<string, { allowed: boolean; mfaRequired?: boolean }> }>(page, '/v1/me/permissions?resource=version:fraud/release-me/1');
    assert.deepEqual(perms.actions['version:promote'], { ...perms.actions['version:promote'], allowed: false, mfaRequired: true });

    await promote.click();
    await page.getByTestId('confirm-yes').click();
    await page.getByTestId('stepup-dialog').waitFor();
    await page.getByTestId('stepup-code').fill(totpCode(secret, clock.now()));
    await page.getByTestId('stepup-submit').click();
    await page.locator('h1 [data-testid="stage"]', { hasText: 'production' }).waitFor();
    assert.equal((await json<{ stage: string }>(await mle.get(`${M}/versions/1`))).stage, 'production');
    await shot(page, 'version-release-manager');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('my security page: sessions with the current one flagged, revoke one, TOTP add and remove (step-up), API keys shown once and revoked, notifications and the badge, sign out everywhere', async () => {
    await expectOk(await w.admin.post('/v1/admin/users', { username: 'sec-user', password: PASSWORD }));
    await markMfa(w.server, 'admin'); // granting needs a fresh second factor; the clock moved
    await expectOk(await w.admin.post('/v1/projects/fraud/bindings', { principal: 'user:sec-user', role: 'data-scientist' }));
    const a = await newContext(browser, base);
    const b = await newContext(browser, base);
    await signIn(a.page, 'sec-user');
    await signIn(b.page, 'sec-user');
    const http = new Client(w.server.url);
    await expectOk(await http.login('sec-user'));

    // Sessions: three, this one flagged; revoke the HTTP client's.
    await a.page.goto('/#/security');
    await a.page.getByTestId('sessions').waitFor();
    assert.equal(await a.page.getByTestId('sessions').locator('tbody tr').count(), 3);
    assert.equal(await a.page.getByTestId('session-current').count(), 1);
    assert.match((await a.page.getByTestId('session-current').textContent()) ?? '', /this session/);
    await a.page.getByTestId('session-other').filter({ hasText: 'node' }).getByTestId('revoke-session').click();
    await a.page.waitForFunction(() => (globalThis as unknown as { document: { querySelectorAll(s: string): { length: number } } }).document.querySelectorAll('[data-testid="sessions"] tbody tr').length === 2);
    assert.equal((await http.get('/v1/me')).status, 401);

    // TOTP: QR code and key, a first code, recovery codes shown once with a download.
    await a.page.getByTestId('totp-enroll').click();
    await a.page.getByTestId('totp-qr').waitFor();
    const secret = (await a.page.getByTestId('totp-secret').textContent()) ?? '';
    await a.page.getByTestId('totp-confirm-code').fill(totpCode(secret, clock.now()));
    await a.page.getByTestId('totp-confirm').click();
    const shown = ((await a.page.getByTestId('recovery-codes').textContent()) ?? '').trim().split('\n');
    assert.equal(shown.length, 10);
    const [download] = await Promise.all([a.page.waitForEvent('download'), a.page.getByTestId('recovery-download').click()]);
    assert.deepEqual(readFileSync((await download.path()) ?? '', 'utf8').trim().split('\n'), shown);
    await a.page.reload();
    await a.page.getByTestId('totp-status').getByText('Set up. 10 recovery code(s) left.').waitFor();
    // Removing it needs a fresh factor: this session signed in with a password only.
    clock.advance(STEP);
    await a.page.getByTestId('totp-remove').click();
    await a.page.getByTestId('stepup-code').fill(totpCode(secret, clock.now()));
    await a.page.getByTestId('stepup-submit').click();
    await a.page.getByTestId('totp-status').getByText('Not set up.').waitFor();

    // API keys: scopes, project, expiry; the token shown once, then usable, then revoked.
    await a.page.getByTestId('api-key-name').fill('ci-key');
    await a.page.getByTestId('api-key-scope-download').check();
    await a.page.getByTestId('api-key-project').fill('fraud');
    await a.page.getByTestId('api-key-days').fill('7');
    await a.page.getByTestId('api-key-create').click();
    const token = (await a.page.getByTestId('api-key-token').textContent()) ?? '';
    assert.match(token, /^mkp_/);
    assert.equal((await bearer(w.server.url, token, '/v1/projects/fraud/models')).status, 200);
    await a.page.getByTestId('api-key-done').click();
    const row = a.page.getByTestId('api-keys').locator('tr', { hasText: 'ci-key' });
    assert.match((await row.textContent()) ?? '', /read download.*fraud/);
    assert.equal(await a.page.getByTestId('api-key-token').count(), 0, 'the token is not shown again');
    await a.page.getByTestId('api-key-revoke-ci-key').click();
    await a.page.getByTestId('api-keys-section').getByText('No API keys.').waitFor();
    assert.equal((await bearer(w.server.url, token, '/v1/projects/fraud/models')).status, 401);

    // Notifications: the sensitive events above, newest first.
    await a.page.reload();
    await a.page.getByTestId('notifications').getByText('New API key "ci-key"').waitFor();
    const notices = await a.page.getByTestId('notifications').locator('li').allTextContents();
    assert.match(notices[0] ?? '', /New API key "ci-key"/);
    assert.ok(notices.some((n) => /Authenticator app \(TOTP\) set up/.test(n)));
    assert.ok(notices.some((n) => /New sign-in/.test(n)));
    await shot(a.page, 'security-notifications', 'console-security.png');
    // A new sign-in elsewhere shows them as a badge on My security.
    const c = await newContext(browser, base);
    await signIn(c.page, 'sec-user');
    const badge = Number(await c.page.getByTestId('notice-badge').textContent());
    assert.ok(badge >= 4, `badge ${badge}`);

    // Sign out everywhere: the other browsers land on sign-in at their next step.
    await a.page.getByTestId('logout-all').click();
    await a.page.getByTestId('sign-in-form').waitFor();
    for (const other of [b, c]) {
      await other.page.getByRole('link', { name: 'fraud' }).click();
      await other.page.getByTestId('sign-in-form').waitFor();
    }
    assert.deepEqual([...a.problems, ...b.problems, ...c.problems], []);
    for (const x of [a, b, c]) await x.context.close();
  });

  test('users page: an admin creates a service account; its secret is shown once and works for client_credentials', async () => {
    const { context, page, problems } = await newContext(browser, base);
    await signIn(page, 'admin');
    await page.goto('/#/admin/users');
    await page.getByTestId('sa-name').fill('ci-deployer');
    await page.getByTestId('sa-project').fill('fraud');
    await page.getByTestId('sa-role').selectOption('viewer');
    await page.getByTestId('sa-create').click();
    const text = (await page.getByTestId('sa-secret').textContent()) ?? '';
    const id = /client_id=(\S+)/.exec(text)?.[1] ?? '';
    const secret = /client_secret=(\S+)/.exec(text)?.[1] ?? '';
    assert.ok(id && secret, text);
    const t = await form(w.server.url, '/oauth/token', { grant_type: 'client_credentials', client_id: id, client_secret: secret });
    assert.equal(t.status, 200, await t.clone().text());
    const at = (await json<{ access_token: string }>(t)).access_token;
    assert.equal((await bearer(w.server.url, at, '/v1/projects/fraud/models')).status, 200);
    await page.reload();
    await page.getByTestId('sa-name').waitFor();
    assert.equal(await page.getByTestId('sa-secret').count(), 0, 'shown once');
    await shot(page, 'admin-service-accounts');
    assert.deepEqual(problems, []);
    await context.close();
  });
});

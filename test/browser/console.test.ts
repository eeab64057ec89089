// The web console as people use it: Debian's Chromium (playwright-core) against a real
// server on loopback (SQLite; the API under it is tested on both backends elsewhere).
// Covers sign-in, browse/create/upload/download, promotion with confirmation, a viewer's
// disabled control (and the server's 403 for the same call), a session ended elsewhere,
// the idle-timeout warning, the audit verifier, the page's own security headers, and
// screenshots of the main pages (test-results/screenshots; two copied to docs/).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { Client, expectOk, json, PASSWORD, type World, world } from '../helpers/server.ts';
import { ensureConsoleBuilt, launch, newContext, REPO, shot, signIn } from './browser.ts';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('web console in Chromium', () => {
  let w: World;
  let browser: Browser;
  const M = '/v1/projects/fraud/models/churn';

  before(async () => {
    ensureConsoleBuilt();
    browser = await launch();
    w = await world('sqlite');
    const mle = w.as['ml-engineer'];
    // A model with one ready version holding a known artifact, for the viewer and promotion tests.
    await expectOk(await mle.post('/v1/projects/fraud/models', { name: 'churn', description: 'Churn predictor' }));
    await expectOk(await mle.post(`${M}/versions`, { description: 'baseline' }));
    await expectOk(await mle.upload(`${M}/versions/1/artifacts/model.bin`, 'baseline weights'));
    await expectOk(await mle.post(`${M}/versions/1/finalize`));
  });
  after(async () => {
    await browser?.close();
    await w?.server.close();
  });

  test('the console is served with a strict CSP, and the built page has no inline script or style', async () => {
    const res = await fetch(`${w.server.url}/`);
    assert.equal(res.status, 200);
    const csp = res.headers.get('content-security-policy') ?? '';
    for (const d of ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'"]) {
      assert.ok(csp.includes(d), `CSP lacks ${d}: ${csp}`);
    }
    assert.ok(!/unsafe-inline|unsafe-eval/.test(csp), csp);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(res.headers.get('referrer-policy'), 'no-referrer');
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);

    const html = readFileSync(join(REPO, 'dist', 'web', 'index.html'), 'utf8');
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    assert.ok(scripts.length > 0, 'no script tag at all');
    for (const [, attrs = '', body = ''] of scripts) {
      assert.match(attrs, /\bsrc="\/assets\/[^"]+\.js"/, `script without src: ${attrs}`);
      assert.equal(body.trim(), '', 'inline script body');
    }
    assert.ok(!/<style\b/i.test(html), 'inline <style>');
    assert.ok(!/\son[a-z]+\s*=/i.test(html), 'inline event handler attribute');
    assert.ok(!/\sstyle\s*=/i.test(html), 'inline style attribute');

    // Assets: the right type, cached for a year, and nothing outside dist/web.
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] ?? '';
    const a = await fetch(`${w.server.url}${asset}`);
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(a.headers.get('cache-control') ?? '', /immutable/);
    for (const bad of ['/assets/..%2f..%2fpackage.json', '/assets/%2e%2e/index.html', '/assets/.env', '/assets/../../package.json', '/assets/x.ts', '/assets/index.html']) {
      const r = await fetch(`${w.server.url}${bad}`);
      const text = await r.text();
      // (fetch normalises dot segments, so some of these reach other, non-console routes: 401.)
      assert.ok([401, 404, 422].includes(r.status), `${bad}: ${r.status}`);
      assert.ok(!text.includes('"name": "modelkeep"'), `${bad} leaked a file`);
    }
  });

  test('sign in with a password: no token in storage, the session cookie is HttpOnly, errors do not enumerate', async () => {
    const { context, page, problems } = await newContext(browser, w.server.url);
    await page.goto('/');
    await page.getByTestId('sign-in-form').waitFor();
    // Wrong password and unknown user read the same.
    const tryLogin = async (u: string, p: string) => {
      await page.getByTestId('username').fill(u);
      await page.getByTestId('password').fill(p);
      await page.getByTestId('sign-in').click();
      await page.locator('.status.error').waitFor();
      return page.locator('.status.error').textContent();
    };
    const wrongPassword = await tryLogin('viewer', 'not the password at all');
    const unknownUser = await tryLogin('nobody-here', 'not the password at all');
    assert.equal(wrongPassword, 'Invalid username or password.');
    assert.equal(unknownUser, wrongPassword);
    await shot(page, 'sign-in');
    // Repeated failures for one account meet the throttle (unknown accounts like real ones):
    // the page says how long to wait; nothing locks the account for good.
    let throttled = false;
    for (let i = 0; i < 10 && !throttled; i++) {
      await page.getByTestId('username').fill('throttle-probe');
      await page.getByTestId('password').fill('not the password at all');
      const [res] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/v1/auth/login')), page.getByTestId('sign-in').click()]);
      throttled = res.status() === 429;
    }
    assert.ok(throttled, 'the sixth failure or so answers 429');
    await page.getByText(/Too many attempts\. Try again in \d+ seconds\./).waitFor();

    await signIn(page, 'ml-engineer');
    await page.getByTestId('projects').getByText('fraud').waitFor();
    assert.match((await page.getByTestId('role-summary').textContent()) ?? '', /You are ml-engineer in fraud/);
    // (Runs in the page; the test project has no DOM types, so the page globals are reached through globalThis.)
    const storage = await page.evaluate(() => {
      const g = globalThis as unknown as { localStorage: { length: number }; sessionStorage: { length: number }; document: { cookie: string } };
      return { local: g.localStorage.length, session: g.sessionStorage.length, cookie: g.document.cookie };
    });
    assert.deepEqual(storage, { local: 0, session: 0, cookie: '' });
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]?.httpOnly, true);
    assert.equal(cookies[0]?.sameSite, 'Strict');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('browse, create a model and version, upload with progress, reload, finalize, download the same bytes', async () => {
    const { context, page, problems } = await newContext(browser, w.server.url);
    await signIn(page, 'data-scientist');
    await page.getByRole('link', { name: 'fraud' }).click();
    await page.getByTestId('model-name').fill('fraud-score');
    await page.getByTestId('create-model').click();
    await page.getByTestId('create-version').click();
    await page.getByTestId('upload-form').waitFor();
    assert.match(page.url(), /#\/projects\/fraud\/models\/fraud-score\/versions\/1$/);

    const bytes = new Uint8Array(3 * 1024 * 1024 + 17).map((_, i) => (i * 31 + 7) % 251);
    await page.getByTestId('upload-file').setInputFiles({ name: 'weights.bin', mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) });
    await page.getByTestId('upload-path').fill('model/weights.bin');
    await page.getByTestId('upload').click();
    await page.getByTestId('artifacts').getByText('model/weights.bin').waitFor();
    assert.ok((await page.getByTestId('artifacts').textContent())?.includes(sha256(bytes)), 'the digest is shown');

    // After a reload the page has no CSRF token in memory: it fetches it (GET /v1/auth/csrf) and mutations still work.
    await page.reload();
    await page.getByTestId('finalize').click();
    assert.match((await page.getByTestId('confirm-text').textContent()) ?? '', /Finalize fraud\/fraud-score v1/);
    await page.getByTestId('confirm-yes').click();
    await page.getByTestId('promote').waitFor();
    const v = await json<{ state: string }>(await w.as['data-scientist'].get('/v1/projects/fraud/models/fraud-score/versions/1'));
    assert.equal(v.state, 'ready');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('download').first().click()]);
    const got = readFileSync((await download.path()) ?? '');
    assert.equal(got.length, bytes.length);
    assert.equal(sha256(got), sha256(bytes));
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('upload progress is reported by the progress bar', async () => {
    const { context, page } = await newContext(browser, w.server.url);
    await signIn(page, 'ml-engineer');
    const v = await json<{ version: number }>(await w.as['ml-engineer'].post(`${M}/versions`, {}));
    await page.goto(`/#/projects/fraud/models/churn/versions/${v.version}`);
    await page.getByTestId('upload-file').setInputFiles({ name: 'a.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(512 * 1024, 1) });
    await page.getByTestId('upload').click();
    await page.getByTestId('artifacts').getByText('a.bin').waitFor();
    // The bar and its label are driven by XMLHttpRequest upload progress events.
    assert.equal(await page.getByTestId('upload-progress').evaluate((el) => (el as unknown as { value: number }).value), 100);
    assert.equal(await page.locator('.progress-label').textContent(), '512.0 KiB of 512.0 KiB');
    const stored = await json<{ artifacts: { path: string; size: number }[] }>(await w.as['ml-engineer'].get(`${M}/versions/${v.version}`));
    assert.deepEqual(stored.artifacts.map((a) => [a.path, a.size]), [['a.bin', 512 * 1024]]);
    await context.close();
  });

  test('promotion asks for confirmation naming the target stage; cancel changes nothing', async () => {
    const { context, page, problems } = await newContext(browser, w.server.url);
    await signIn(page, 'ml-engineer');
    await page.goto('/#/projects/fraud/models/churn/versions/1');
    await page.getByTestId('promote-staging').click();
    assert.match((await page.getByTestId('confirm-text').textContent()) ?? '', /fraud\/churn v1 from no stage to STAGING/);
    await page.getByTestId('confirm-no').click();
    assert.equal((await json<{ stage: string }>(await w.as['ml-engineer'].get(`${M}/versions/1`))).stage, 'none');

    await page.getByTestId('promote-staging').click();
    await page.getByTestId('confirm-yes').click();
    await page.locator('h1 [data-testid="stage"]', { hasText: 'staging' }).waitFor();
    assert.equal((await json<{ stage: string }>(await w.as['ml-engineer'].get(`${M}/versions/1`))).stage, 'staging');
    // ml-engineer may not promote to production: shown disabled with the reason, not hidden.
    assert.equal(await page.getByTestId('promote-production').isDisabled(), true);
    await shot(page, 'version-ml-engineer', 'console-models.png');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('a viewer sees the promote control disabled with the reason, and the API refuses the same call with 403', async () => {
    const { context, page, problems } = await newContext(browser, w.server.url);
    await signIn(page, 'viewer');
    await page.goto('/#/projects/fraud/models/churn/versions/1');
    const button = page.getByTestId('promote-production');
    await button.waitFor();
    assert.equal(await button.isDisabled(), true);
    const reasons = await page.getByTestId('denied-reason').allTextContents();
    assert.ok(
      reasons.some((r) => /cannot promote to production/.test(r) && /Request access/.test(r)),
      `no reason shown: ${JSON.stringify(reasons)}`,
    );
    assert.equal(await page.getByTestId('promote-archived').isDisabled(), true);
    assert.match((await page.getByTestId('role-summary').textContent()) ?? '', /You are viewer in fraud: you can view; you cannot upload/);
    await shot(page, 'version-viewer');

    // The control was only a courtesy: the server enforces the same rule.
    const r = await w.as.viewer.post(`${M}/versions/1/promote`, { stage: 'production' });
    assert.equal(r.status, 403);
    assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'forbidden');
    assert.equal((await json<{ stage: string }>(await w.as['ml-engineer'].get(`${M}/versions/1`))).stage, 'staging');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('a session ended elsewhere (an admin deactivates the account in the console) sends this page to sign-in', async () => {
    await expectOk(await w.admin.post('/v1/admin/users', { username: 'leaver', password: PASSWORD }));
    await expectOk(await w.admin.post('/v1/projects/fraud/bindings', { principal: 'user:leaver', role: 'viewer' }));
    const leaver = await newContext(browser, w.server.url);
    await signIn(leaver.page, 'leaver');
    await leaver.page.getByTestId('projects').waitFor();

    const admin = await newContext(browser, w.server.url);
    await signIn(admin.page, 'admin');
    await admin.page.goto('/#/admin/users');
    await admin.page.getByTestId('deactivate-leaver').click();
    await admin.page.getByText(/leaver is deactivated; 1 session\(s\) ended/).waitFor();
    await shot(admin.page, 'admin-users');

    await leaver.page.getByRole('link', { name: 'fraud' }).click();
    await leaver.page.getByTestId('sign-in-form').waitFor();
    assert.match(leaver.page.url(), /#\/sign-in\?next=/);
    assert.match((await leaver.page.locator('.status').first().textContent()) ?? '', /session has ended/);
    assert.deepEqual([...leaver.problems, ...admin.problems], []);
    await leaver.context.close();
    await admin.context.close();
  });

  test('sign out ends the session on the server; the old cookie is refused afterwards', async () => {
    const { context, page } = await newContext(browser, w.server.url);
    await signIn(page, 'auditor');
    const [cookie] = await context.cookies();
    await page.getByTestId('sign-out').click();
    await page.getByTestId('sign-in-form').waitFor();
    const replay = await fetch(`${w.server.url}/v1/me`, { headers: { cookie: `${cookie?.name}=${cookie?.value}` } });
    assert.equal(replay.status, 401);
    await context.close();
  });

  test('idle-timeout warning before the server would end the session, then sign-in', async () => {
    const { context, page } = await newContext(browser, w.server.url);
    await page.clock.install();
    await signIn(page, 'release-manager');
    await page.getByTestId('projects').waitFor();
    // The default idle limit is 30 minutes: at 28+ minutes without a request the page warns.
    await page.clock.fastForward('28:30');
    await page.getByTestId('idle-warning').waitFor();
    await page.clock.fastForward('02:00');
    await page.getByTestId('sign-in-form').waitFor();
    assert.match((await page.locator('.status').first().textContent()) ?? '', /inactivity/);
    await context.close();
  });

  test('audit viewer: filters, the signed tree head, and verification in the browser', async () => {
    const { context, page, problems } = await newContext(browser, w.server.url);
    await signIn(page, 'admin');
    await page.goto('/#/audit');
    await page.getByTestId('tree-head').waitFor();
    const size = Number(await page.getByTestId('tree-size').textContent());
    assert.ok(size > 10, `tree size ${size}`);
    await page.getByTestId('filter-actor').fill('viewer');
    await page.getByTestId('filter-outcome').selectOption('deny');
    await page.getByTestId('filter-apply').click();
    await page.waitForURL(/actor=viewer/);
    // The filtered page renders after its request returns: wait (bounded) for its rows.
    let rows: string[] = [];
    for (let i = 0; i < 50; i++) {
      rows = await page.getByTestId('events').locator('tbody tr').allTextContents();
      if (rows.length > 0 && rows.every((r) => r.includes('viewer') && r.includes('deny'))) break;
      await page.waitForTimeout(100);
    }
    assert.ok(rows.length >= 1, 'the viewer denial is listed');
    for (const r of rows) assert.ok(r.includes('viewer') && r.includes('deny'), r);

    await page.getByTestId('verify').click();
    await page.getByTestId('verify-summary').waitFor();
    assert.equal(await page.getByTestId('verify-summary').textContent(), 'Verified.');
    const lines = await page.getByTestId('verify-result').locator('li').allTextContents();
    assert.ok(lines.some((l) => /signed by key/.test(l)));
    assert.ok(lines.some((l) => /listed events are included/.test(l)));
    await shot(page, 'audit');
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('my security page, access page, alerts page and the device page (unknown code) render', async () => {
    const { context, page, problems } = await newContext(browser, w.server.url);
    await signIn(page, 'admin');
    await page.goto('/#/security');
    await page.getByRole('heading', { name: 'My security' }).waitFor();
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await shot(page, 'security');
    await page.goto('/#/projects/fraud/access');
    await page.getByTestId('bindings').getByText('user:viewer').waitFor();
    await shot(page, 'bindings');
    await page.goto('/#/alerts');
    await page.getByRole('heading', { name: 'Alerts' }).waitFor();
    await shot(page, 'alerts');
    // The verification link `modelkeep login` prints opens the device page with the code filled in.
    // (An unknown code: the generic answer, never which part was wrong.)
    await page.goto('/device?user_code=WDJB-MJHT');
    assert.equal(await page.getByTestId('user-code').inputValue(), 'WDJB-MJHT');
    await page.getByText('this code is not valid or has expired').waitFor();
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('alerts page: a denial burst raises an alert, the admin acknowledges it in the console, the server records who', async () => {
    // An outsider probes a project it cannot see: every answer is a 404 and a denial.
    for (let i = 0; i < 25; i++) await (await w.as.outsider.get('/v1/projects/fraud/models')).arrayBuffer();
    type AlertView = { id: string; rule: string; acknowledgedAt: string | null; acknowledgedBy: string | null };
    let alert: AlertView | undefined;
    for (let i = 0; i < 100 && !alert; i++) {
      const list = await json<{ alerts: AlertView[] }>(await expectOk(await w.admin.get('/v1/alerts?unacknowledged=true')));
      alert = list.alerts.find((a) => a.rule === 'denial-burst');
      if (!alert) await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(alert, 'the denial-burst detector raised an alert');
    const { context, page, problems } = await newContext(browser, w.server.url);
    await signIn(page, 'admin');
    await page.goto('/#/alerts');
    await page.getByTestId(`ack-${alert.id}`).click();
    await page.getByText('acknowledged by admin').first().waitFor();
    const after = await json<{ alerts: AlertView[] }>(await expectOk(await w.admin.get('/v1/alerts')));
    const acked = after.alerts.find((a) => a.id === alert?.id);
    assert.equal(acked?.acknowledgedBy, 'admin');
    assert.ok(acked?.acknowledgedAt);
    assert.deepEqual(problems, []);
    await context.close();
  });

  test('CSRF: the token comes only from this session, and a mutation without it is refused', async () => {
    const c = await w.client('ml-engineer');
    const r = await c.get('/v1/auth/csrf');
    assert.equal(r.status, 200);
    assert.equal((await json<{ csrfToken: string }>(r)).csrfToken, c.csrf);
    const bare = new Client(w.server.url);
    bare.cookie = c.cookie;
    const refused = await bare.post(`${M}/versions`, {});
    assert.equal(refused.status, 403);
  });
});

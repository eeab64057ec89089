// Mandatory second factor for administrators (mfa.requiredForAdmins, on in the product and
// turned on here: the test world turns it off), in Chromium: after the password the console
// shows only the enrollment page — a QR code of the otpauth URI on a canvas, a first code,
// then the recovery codes shown once with a download — and every other page is blocked
// until then (the server refuses them too).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { ManualClock } from '../../src/core/index.ts';
import { bootstrapUser } from '../../src/main.ts';
import { PASSWORD, startTestServer, type TestServer, totpCode } from '../helpers/server.ts';
import { ensureConsoleBuilt, launch, newContext } from './browser.ts';

const STEP = 30_000;

describe('enrollment page in Chromium (mandatory MFA for admins)', () => {
  let server: TestServer;
  let browser: Browser;
  let dataDir: string;
  const clock = new ManualClock(Math.floor(Date.now() / STEP) * STEP);

  before(async () => {
    ensureConsoleBuilt();
    browser = await launch();
    dataDir = mkdtempSync(join(tmpdir(), 'mk-enroll-'));
    await bootstrapUser({ dataDir }, { username: 'root', password: PASSWORD, platformAdmin: true });
    server = await startTestServer('sqlite', { dataDir, clock, config: { mfa: { requiredForAdmins: true } } });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('enrollment page: after the password an admin sees only enrollment (QR code, code, recovery codes once with a download); then the console opens', async () => {
    const { context, page, problems } = await newContext(browser, server.url);
    await page.goto('/#/projects');
    await page.getByTestId('username').fill('root');
    await page.getByTestId('password').fill(PASSWORD);
    await page.getByTestId('sign-in').click();
    await page.getByTestId('enroll').waitFor();
    assert.match(page.url(), /#\/enroll$/);
    // The QR code is drawn (non-blank canvas), the key is shown for typing by hand.
    const qr = page.getByTestId('totp-qr');
    await qr.waitFor();
    const drawn = await qr.evaluate((el) => {
      const c = el as unknown as { width: number; height: number; getContext(k: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let dark = 0;
      for (let i = 0; i < d.length; i += 4) if ((d[i] ?? 255) < 128) dark++;
      return { width: c.width, dark };
    });
    assert.ok(drawn.width >= 200 && drawn.dark > 1000, JSON.stringify(drawn));
    const secret = (await page.getByTestId('totp-secret').textContent()) ?? '';
    assert.match(secret, /^[A-Z2-7]+=*$/);

    // Other pages are blocked: navigating anywhere comes back here.
    for (const hash of ['#/projects', '#/admin/users', '#/audit', '#/security']) {
      await page.goto(`/${hash}`);
      await page.getByTestId('enroll').waitFor();
      assert.match(page.url(), /#\/enroll$/, hash);
    }
    // The server agrees (this is not only the page): the session may not list projects.
    const refused = await page.evaluate(async () => (await fetch('/v1/projects')).status);
    assert.equal(refused, 403);

    // Reloading started a new enrollment (a new secret): confirm with the one now shown.
    const current = (await page.getByTestId('totp-secret').textContent()) ?? '';
    await page.getByTestId('totp-confirm-code').fill(totpCode(current, clock.now()));
    await page.getByTestId('totp-confirm').click();
    const codes = ((await page.getByTestId('recovery-codes').textContent()) ?? '').trim().split('\n');
    assert.equal(codes.length, 10);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('recovery-download').click()]);
    assert.equal(download.suggestedFilename(), 'modelkeep-recovery-codes.txt');
    assert.deepEqual(readFileSync((await download.path()) ?? '', 'utf8').trim().split('\n'), codes);
    await page.getByTestId('enroll-continue').click();
    await page.getByRole('heading', { name: 'Projects' }).waitFor();
    // The enrollment itself is among the account's notifications (the badge).
    assert.equal(await page.getByTestId('notice-badge').textContent(), '1');
    assert.equal(await page.evaluate(async () => (await fetch('/v1/projects')).status), 200);
    // Shown once: the enrollment page is gone and My security shows only the count.
    await page.goto('/#/security');
    await page.getByTestId('totp-status').getByText('Set up. 10 recovery code(s) left.').waitFor();
    assert.equal(await page.getByTestId('recovery-codes').count(), 0);
    assert.deepEqual(problems, []);
    await context.close();
  });
});

// Browser-test harness: Debian's Chromium driven by playwright-core (never a downloaded
// browser), and the console built into dist/web before the server starts.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { PASSWORD } from '../helpers/server.ts';

export const CHROMIUM = process.env.MODELKEEP_CHROMIUM ?? '/usr/bin/chromium';
export const REPO = join(import.meta.dirname, '..', '..');
export const SHOTS = join(REPO, 'test-results', 'screenshots');

/**
 * A full-page screenshot in test-results/screenshots/. With MODELKEEP_UPDATE_DOC_SHOTS=1 the
 * named ones also replace the pictures in docs/ (a test run leaves tracked files alone).
 */
export async function shot(page: Page, name: string, docs?: string): Promise<void> {
  mkdirSync(SHOTS, { recursive: true });
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  if (docs && process.env.MODELKEEP_UPDATE_DOC_SHOTS === '1') copyFileSync(file, join(REPO, 'docs', docs));
}

/** Builds the console when dist/web is missing or older than src/web (fast when it is not). */
export function ensureConsoleBuilt(): void {
  const r = spawnSync(process.execPath, ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', join(REPO, 'scripts', 'build-web.ts'), '--if-stale'], {
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error('building the console (scripts/build-web.ts) failed');
}

export async function launch(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    // Not a skip: CI installs Chromium (.ci/run), and a missing browser must be seen.
    throw new Error(`Chromium is not installed at ${CHROMIUM}. Install it with \`apt-get install -y chromium\` (.ci/run does) or set MODELKEEP_CHROMIUM.`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
}

/** A fresh browser profile (its own cookie jar) that records CSP violations and page errors. */
export async function newContext(browser: Browser, base: string): Promise<{ context: BrowserContext; page: Page; problems: string[] }> {
  const context = await browser.newContext({ baseURL: base, acceptDownloads: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && /Content.Security.Policy|Refused to/i.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { context, page, problems };
}

export async function signIn(page: Page, username: string, password = PASSWORD): Promise<void> {
  await page.goto('/');
  await page.getByTestId('username').fill(username);
  await page.getByTestId('password').fill(password);
  await page.getByTestId('sign-in').click();
  await page.getByTestId('role-summary').waitFor();
}

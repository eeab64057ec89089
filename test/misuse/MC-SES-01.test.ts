// MC-SES-01 — Session fixation and cookie tossing. A session id planted before login is
// never adopted: login always sets a fresh one (≥ 128 bits from a CSPRNG) and the planted
// value authenticates nothing; step-up rotates the id again and kills the old one. Cookie
// attributes: over TLS `__Host-` prefix, Secure, HttpOnly, SameSite=Strict, Path=/, no
// Domain; over plain HTTP (loopback only) the same without the prefix and Secure.
// Sources: ASVS 5.0 7.2.3, 7.2.4, 3.3.1-3.3.4; NIST SP 800-63B-4 s5.1.1; CVE-2023-29019.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { adoptSession, BACKENDS, enrollTotp, expectOk, json, PASSWORD, passwordStep, startTestServer, totpCode, type World, world } from '../helpers/server.ts';

const STEP = 30_000;
const HTTP_COOKIE = /^modelkeep_session=([A-Za-z0-9_-]{43}); Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+$/;

for (const backend of BACKENDS) {
  describe(`MC-SES-01 session fixation (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 3, 4, 10, 0, 0));
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('a planted cookie is ignored at login and a fresh id is set; the planted value stays worthless', async () => {
      const planted = 'A'.repeat(43);
      const step = await passwordStep(w.server.url, 'viewer', PASSWORD, { cookie: `modelkeep_session=${planted}` });
      assert.equal(step.status, 200);
      const m = HTTP_COOKIE.exec(step.setCookie ?? '');
      assert.ok(m, step.setCookie ?? '');
      assert.notEqual(m[1], planted);
      assert.ok(!/Domain=/i.test(step.setCookie ?? ''));
      assert.equal((await fetch(`${w.server.url}/v1/me`, { headers: { cookie: `modelkeep_session=${planted}` } })).status, 401);
      // An attacker's own valid session, tossed into the victim's browser, is replaced at the victim's login.
      const attacker = await w.client('outsider');
      const victim = await passwordStep(w.server.url, 'viewer', PASSWORD, { cookie: attacker.cookie ?? '' });
      assert.notEqual(HTTP_COOKIE.exec(victim.setCookie ?? '')?.[1], attacker.cookie?.split('=')[1]);
      // Two logins never share an id.
      const a = await passwordStep(w.server.url, 'viewer');
      const b = await passwordStep(w.server.url, 'viewer');
      assert.notEqual(a.setCookie, b.setCookie);
    });

    test('step-up rotates the session id and the CSRF token; the old ones are dead', async () => {
      const c = await w.passwordOnly('auditor');
      const { secret } = await enrollTotp(c, clock.now());
      clock.advance(STEP);
      const oldCookie = c.cookie;
      const oldCsrf = c.csrf;
      const before = await json<{ session: { id: string; expiresAt: string; authTime: string } }>(await c.get('/v1/me'));
      const up = await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) });
      assert.equal(up.status, 200);
      const setCookie = up.headers.get('set-cookie') ?? '';
      assert.match(setCookie, HTTP_COOKIE);
      await adoptSession(c, up);
      assert.notEqual(c.cookie, oldCookie);
      assert.notEqual(c.csrf, oldCsrf);
      const after = await json<{ session: { id: string; expiresAt: string; authTime: string; amr: string[]; mfaAt: string } }>(await expectOk(await c.get('/v1/me')));
      assert.notEqual(after.session.id, before.session.id);
      assert.equal(after.session.expiresAt, before.session.expiresAt, 'rotation does not extend the absolute lifetime');
      assert.equal(after.session.authTime, before.session.authTime);
      assert.deepEqual([...after.session.amr].sort(), ['mfa', 'otp', 'pwd']);
      assert.equal(after.session.mfaAt, clock.now().toISOString());
      assert.equal((await fetch(`${w.server.url}/v1/me`, { headers: { cookie: oldCookie ?? '' } })).status, 401, 'old id dead');
      // The old CSRF token does not work with the new cookie.
      const stale = await fetch(`${w.server.url}/v1/auth/logout`, { method: 'POST', headers: { cookie: c.cookie ?? '', 'x-csrf-token': oldCsrf ?? '' } });
      assert.equal(stale.status, 403);
    });
  });
}

describe('MC-SES-01 cookie attributes over TLS', () => {
  let dir = '';
  let server: Awaited<ReturnType<typeof startTestServer>> | null = null;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mk-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=localhost'], { stdio: 'ignore' });
    server = await startTestServer('sqlite', { clock: new ManualClock(Date.UTC(2026, 3, 4, 10, 0, 0)), config: { tls: { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') } } });
    const { bootstrapUser } = await import('../../src/main.ts');
    // The running server shares the SQLite file: a user made offline is visible to it.
    await bootstrapUser({ dataDir: server.dataDir }, { username: 'tls-user', password: PASSWORD, platformAdmin: false });
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> =>
    new Promise((resolve, reject) => {
      const u = new URL(path, server?.url);
      const data = JSON.stringify(body);
      const req = request(u, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data), ...headers } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
      });
      req.on('error', reject);
      req.end(data);
    });

  test('__Host- prefix, Secure, HttpOnly, SameSite=Strict, Path=/, no Domain — and the deletion repeats them', async () => {
    const r = await post('/v1/auth/login', { username: 'tls-user', password: PASSWORD });
    assert.equal(r.status, 200, r.text);
    const set = String(r.headers['set-cookie'] ?? '');
    assert.match(set, /^__Host-modelkeep_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=\d+; Secure$/);
    assert.ok(!/Domain=/i.test(set));
    const cookie = set.split(';')[0] ?? '';
    const csrf = (JSON.parse(r.text) as { csrfToken: string }).csrfToken;
    const out = await post('/v1/auth/logout', {}, { cookie, 'x-csrf-token': csrf });
    assert.equal(out.status, 200, out.text);
    assert.equal(String(out.headers['set-cookie']), '__Host-modelkeep_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Secure');
    assert.equal(out.headers['clear-site-data'], '"cookies"');
  });
});


// MC-AUTHN-01 — Online guessing. Sequential and 50-way parallel wrong passwords for one
// account, wrong TOTP codes after a correct password, and the same from rotating IPs:
// failures are counted before the secret is checked, atomically in the database, so the
// number of guesses that reach verification never exceeds the policy; TOTP failures are
// capped per pending login and force a restart; every wait ends (no permanent lockout).
// Sources: NIST SP 800-63B-4 s3.2.2; ASVS 5.0 6.1.1, 6.3.1; CVE-2024-4629.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { BACKENDS, Client, enrollTotp, json, loginWithTotp, PASSWORD, passwordStep, totpCode, type World, world } from '../helpers/server.ts';

const FREE = 5;
const PROXIES = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

for (const backend of BACKENDS) {
  describe(`MC-AUTHN-01 online guessing (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 3, 1, 10, 0, 0));
    /** Failed logins the server actually verified (the audit log records each with its reason). */
    const verifiedFailures = async (username: string): Promise<number> => {
      const rows = await w.server.services.db.kysely
        .selectFrom('audit_events')
        .select(['reason'])
        .where('action', '=', 'auth.login')
        .where('outcome', '=', 'failure')
        .where('resource', '=', `user:${username}`)
        .execute();
      return rows.filter((r) => r.reason === 'wrong password').length;
    };
    before(async () => {
      w = await world(backend, { clock, config: { throttle: { accountFreeFailures: FREE, ipFreeFailures: 10_000 }, trustedProxies: PROXIES } });
      for (const u of ['seq', 'par', 'rot', 'otp']) await w.admin.post('/v1/admin/users', { username: u, password: PASSWORD });
    });
    after(() => w.server.close());

    test('sequential guessing: five verified, then 429 until the wait ends; the account is never locked for good', async () => {
      const statuses: number[] = [];
      for (let i = 0; i < 30; i++) statuses.push((await passwordStep(w.server.url, 'seq', `guess number ${i} long`)).status);
      assert.deepEqual(statuses, [...Array(FREE).fill(401), ...Array(30 - FREE).fill(429)]);
      assert.equal(await verifiedFailures('seq'), FREE, 'no guess past the cap reached the password check');
      clock.advance(1000);
      assert.equal((await passwordStep(w.server.url, 'seq')).status, 200, 'the owner gets in once the wait is over');
    });

    test('50 parallel wrong passwords: exactly the free ones are verified, the rest answer 429', async () => {
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => passwordStep(w.server.url, 'par', `parallel guess ${i} long`)));
      const by = (s: number) => rs.filter((r) => r.status === s).length;
      assert.equal(by(401), FREE);
      assert.equal(by(429), 50 - FREE);
      assert.ok(rs.filter((r) => r.status === 429).every((r) => Number(r.res.headers.get('retry-after')) >= 1));
      assert.equal(await verifiedFailures('par'), FREE);
      // And 50 more in parallel at the same instant get nothing at all.
      const more = await Promise.all(Array.from({ length: 50 }, () => passwordStep(w.server.url, 'par', PASSWORD)));
      assert.ok(more.every((r) => r.status === 429));
      clock.advance(1000);
      assert.equal((await passwordStep(w.server.url, 'par')).status, 200, 'released');
    });

    test('rotating IPs (X-Forwarded-For from a trusted proxy) meet the same per-account cap', async () => {
      const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => passwordStep(w.server.url, 'rot', `rotating guess ${i} long`, { 'x-forwarded-for': `198.51.100.${i + 1}` })));
      assert.equal(rs.filter((r) => r.status === 401).length, FREE);
      assert.equal(rs.filter((r) => r.status === 429).length, 30 - FREE);
    });

    test('wrong TOTP codes after a correct password: capped per pending login (restart) and per account, in parallel too', async () => {
      const c = await w.client('otp');
      const { secret } = await enrollTotp(c, clock.now());
      clock.advance(30_000);
      const step = await passwordStep(w.server.url, 'otp');
      assert.equal(step.body.status, 'mfa_required');
      const bad = (i: number) => String((Number(totpCode(secret, clock.now())) + 1 + i) % 1_000_000).padStart(6, '0');
      const rs = await Promise.all(Array.from({ length: 50 }, (_, i) => new Client(w.server.url).post('/v1/auth/mfa/totp', { mfaToken: step.body.mfaToken, code: bad(i) })));
      const codes = await Promise.all(rs.map(async (r) => `${r.status} ${(await json<{ error: { code: string } }>(r)).error.code}`));
      const wrong = codes.filter((x) => x === '401 invalid_credentials').length;
      // Codes checked: never more than the cap; the others were throttled or found the login discarded.
      const checked = (
        await w.server.services.db.kysely.selectFrom('audit_events').select('reason').where('action', '=', 'auth.mfa_failure').where('resource', '=', 'user:otp').execute()
      ).filter((e) => /wrong or reused code/.test(e.reason ?? '')).length;
      assert.ok(checked <= FREE, `${checked} codes were checked`);
      assert.ok(wrong >= checked);
      assert.ok(codes.every((x) => x === '401 invalid_credentials' || x === '429 throttled'), codes.join(','));
      // The pending login is dead: even the right code fails, and the user starts over.
      clock.advance(2000);
      assert.equal((await new Client(w.server.url).post('/v1/auth/mfa/totp', { mfaToken: step.body.mfaToken, code: totpCode(secret, clock.now()) })).status, 401);
      const fresh = await loginWithTotp(w.server.url, 'otp', secret, clock.now());
      assert.equal((await fresh.get('/v1/me')).status, 200);
    });
  });
}

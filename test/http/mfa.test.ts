// MFA: TOTP enrollment (RFC 6238), login with a second factor, recovery codes, removal,
// and mandatory MFA for platform and project admins (API.md "Authentication").
// Codes are computed with otpauth from the secret the server returned, at the injected clock.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { bootstrapUser } from '../../src/main.ts';
import {
  adoptSession,
  BACKENDS,
  type Backend,
  Client,
  createPgDatabase,
  enrollTotp,
  expectOk,
  json,
  loginWithTotp,
  PASSWORD,
  passwordStep,
  startTestServer,
  type TestServer,
  totpCode,
  type World,
  world,
} from '../helpers/server.ts';

const STEP = 30_000;
/** A time on a 30 s step boundary, so `clock.advance(STEP)` moves exactly one TOTP step. */
const T0 = Date.UTC(2026, 0, 5, 9, 0, 0);

type AuditEvent = { action: string; outcome: string; resource: string; reason: string | null; actor: string | null };

async function audit(admin: Client, action: string): Promise<AuditEvent[]> {
  return (await json<{ events: AuditEvent[] }>(await expectOk(await admin.get(`/v1/audit/events?action=${action}`)))).events;
}

for (const backend of BACKENDS) {
  describe(`TOTP and recovery codes (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(T0);
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('enrollment: a pending secret, confirmed by a code, gives 10 single-use recovery codes stored hashed', async () => {
      const c = w.as['data-scientist'];
      assert.deepEqual((await json(await c.get('/v1/me/mfa'))).totp, false);
      const begin = await json<{ secret: string; otpauthUrl: string }>(await expectOk(await c.post('/v1/me/mfa/totp')));
      assert.match(begin.secret, /^[A-Z2-7]{32}$/, '160-bit base32 secret');
      const url = new URL(begin.otpauthUrl);
      assert.equal(url.protocol, 'otpauth:');
      assert.equal(url.searchParams.get('secret'), begin.secret);
      assert.equal(url.searchParams.get('algorithm'), 'SHA1');
      assert.equal(url.searchParams.get('digits'), '6');
      assert.equal(url.searchParams.get('period'), '30');
      // Not a factor until confirmed: login still needs the password only.
      assert.equal((await passwordStep(w.server.url, 'data-scientist')).body.status, 'ok');
      const wrong = await c.post('/v1/me/mfa/totp/confirm', { code: totpCode(begin.secret, T0 + 10 * STEP) });
      assert.equal(wrong.status, 422);
      const conf = await json<{ recoveryCodes: string[] }>(await expectOk(await c.post('/v1/me/mfa/totp/confirm', { code: totpCode(begin.secret, clock.now()) })));
      assert.equal(conf.recoveryCodes.length, 10);
      assert.equal(new Set(conf.recoveryCodes).size, 10);
      for (const rc of conf.recoveryCodes) assert.match(rc, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
      const st = await json<{ totp: boolean; recoveryCodesLeft: number; factors: number }>(await c.get('/v1/me/mfa'));
      assert.deepEqual([st.totp, st.recoveryCodesLeft, st.factors], [true, 10, 1]);
      // A second enrollment while one is confirmed is refused.
      assert.equal((await c.post('/v1/me/mfa/totp')).status, 409);
      // Only hashes at rest; nothing secret in the audit log.
      const rows = JSON.stringify(await w.server.services.db.kysely.selectFrom('mfa_recovery_codes').selectAll().execute());
      for (const rc of conf.recoveryCodes) assert.ok(!rows.includes(rc) && !rows.includes(rc.replace(/-/g, '')), 'recovery code stored in clear');
      const events = await audit(w.admin, 'auth.mfa_enrolled');
      assert.ok(events.some((e) => e.outcome === 'success' && e.resource === 'user:data-scientist'));
      assert.ok(events.some((e) => e.outcome === 'failure' && e.resource === 'user:data-scientist'));
      const all = JSON.stringify(await w.server.services.db.kysely.selectFrom('audit_events').selectAll().execute());
      assert.ok(!all.includes(begin.secret), 'TOTP secret in the audit log');
      for (const rc of conf.recoveryCodes) assert.ok(!all.includes(rc), 'recovery code in the audit log');

      // Login now takes two steps: no cookie until the code.
      clock.advance(STEP);
      const step = await passwordStep(w.server.url, 'data-scientist');
      assert.equal(step.body.status, 'mfa_required');
      assert.deepEqual(step.body.methods, ['totp', 'recovery']);
      assert.equal(typeof step.body.mfaToken, 'string');
      assert.equal(step.setCookie, null);
      const done = new Client(w.server.url);
      const r = await done.post('/v1/auth/mfa/totp', { mfaToken: step.body.mfaToken, code: totpCode(begin.secret, clock.now()) });
      assert.equal(r.status, 200);
      await adoptSession(done, r);
      const me = await json<{ session: { amr: string[]; mfaAt: string; authTime: string } }>(await done.get('/v1/me'));
      assert.deepEqual(me.session.amr, ['pwd', 'otp', 'mfa']);
      assert.equal(me.session.mfaAt, clock.now().toISOString());
      assert.ok((await audit(w.admin, 'auth.mfa_success')).some((e) => e.resource === 'user:data-scientist'));

      // A recovery code signs in once, then never again.
      const [rc] = conf.recoveryCodes;
      const s1 = await passwordStep(w.server.url, 'data-scientist');
      const ok = await new Client(w.server.url).post('/v1/auth/mfa/recovery', { mfaToken: s1.body.mfaToken, code: rc?.toUpperCase() });
      assert.equal(ok.status, 200, 'codes are compared case-insensitively');
      const s2 = await passwordStep(w.server.url, 'data-scientist');
      assert.equal((await new Client(w.server.url).post('/v1/auth/mfa/recovery', { mfaToken: s2.body.mfaToken, code: rc })).status, 401);
      assert.equal((await json<{ recoveryCodesLeft: number }>(await c.get('/v1/me/mfa'))).recoveryCodesLeft, 9);
      assert.ok((await audit(w.admin, 'auth.recovery_used')).some((e) => e.resource === 'user:data-scientist'));
    });

    test('wrong codes are capped per pending login: the fifth discards it and the login starts over', async () => {
      const c = w.as['ml-engineer'];
      const { secret } = await enrollTotp(c, clock.now());
      clock.advance(STEP);
      const step = await passwordStep(w.server.url, 'ml-engineer');
      const bad = totpCode(secret, clock.now().getTime() + 20 * STEP);
      const answers: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await new Client(w.server.url).post('/v1/auth/mfa/totp', { mfaToken: step.body.mfaToken, code: bad });
        answers.push(`${r.status} ${(await json<{ error: { code: string } }>(r)).error.code}`);
      }
      assert.deepEqual(answers, Array(5).fill('401 invalid_credentials'));
      clock.advance(2000); // past the per-account back-off that five failures start
      const late = await new Client(w.server.url).post('/v1/auth/mfa/totp', { mfaToken: step.body.mfaToken, code: totpCode(secret, clock.now()) });
      assert.equal(late.status, 401, 'the discarded pending login is dead even with the right code');
      const again = await loginWithTotp(w.server.url, 'ml-engineer', secret, clock.now());
      assert.equal((await again.get('/v1/me')).status, 200);
      const failures = (await audit(w.admin, 'auth.mfa_failure')).filter((e) => e.resource === 'user:ml-engineer');
      assert.ok(failures.some((e) => /sign-in discarded/.test(e.reason ?? '')));
    });

    test('removing the authenticator needs a fresh second factor, then login is password-only again', async () => {
      const c = await w.passwordOnly('release-manager');
      const { secret } = await enrollTotp(c, clock.now());
      // The enrolling session never used the factor: removal wants a step-up.
      const r1 = await c.del('/v1/me/mfa/totp');
      assert.equal(r1.status, 428);
      assert.equal((await json<{ error: { code: string } }>(r1)).error.code, 'mfa_required');
      clock.advance(STEP);
      const up = await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) });
      assert.equal(up.status, 200);
      await adoptSession(c, up);
      assert.equal((await c.del('/v1/me/mfa/totp')).status, 200);
      assert.equal((await json<{ factors: number }>(await c.get('/v1/me/mfa'))).factors, 0);
      assert.equal((await passwordStep(w.server.url, 'release-manager')).body.status, 'ok');
      assert.ok((await audit(w.admin, 'auth.mfa_removed')).some((e) => e.resource === 'user:release-manager'));
    });
  });

  describe(`mandatory MFA for platform and project admins (${backend})`, () => {
    let server: TestServer;
    let dataDir: string;
    let drop: (() => Promise<void>) | null = null;
    const clock = new ManualClock(T0);
    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'mk-mfa-'));
      const pgdb = backend === ('postgres' satisfies Backend) ? await createPgDatabase() : null;
      drop = pgdb ? pgdb.drop : null;
      const store = { dataDir, ...(pgdb ? { databaseUrl: pgdb.url } : {}) };
      await bootstrapUser(store, { username: 'root', password: PASSWORD, platformAdmin: true });
      server = await startTestServer(backend, { ...store, clock, config: { mfa: { requiredForAdmins: true } } });
    });
    after(async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
      await drop?.();
    });

    test('an admin without a factor may only enroll, read /v1/me and sign out, until TOTP is confirmed', async () => {
      const step = await passwordStep(server.url, 'root');
      assert.equal(step.status, 200);
      assert.equal(step.body.mfaEnrollmentRequired, true);
      const root = new Client(server.url);
      await adoptSession(root, step.res);
      const refused = [await root.get('/v1/projects'), await root.post('/v1/projects', { name: 'p1' }), await root.get('/v1/admin/users'), await root.get('/v1/audit/events')];
      for (const r of refused) {
        assert.equal(r.status, 403);
        assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'mfa_enrollment_required');
      }
      const me = await json<{ mfaEnrollmentRequired: boolean }>(await expectOk(await root.get('/v1/me')));
      assert.equal(me.mfaEnrollmentRequired, true);
      await expectOk(await root.get('/v1/me/sessions'));
      await expectOk(await root.get('/v1/me/mfa'));
      const { secret } = await enrollTotp(root, clock.now());
      // The same session may now act.
      await expectOk(await root.post('/v1/projects', { name: 'p1' }));
      assert.equal((await json<{ mfaEnrollmentRequired: boolean }>(await root.get('/v1/me'))).mfaEnrollmentRequired, false);

      // A project-admin anywhere is held to the same rule. Granting a role needs a fresh
      // second factor: enrolling is not using it, so the admin steps up first.
      await expectOk(await root.post('/v1/admin/users', { username: 'pa', password: PASSWORD }));
      assert.equal((await root.post('/v1/projects/p1/bindings', { principal: 'user:pa', role: 'project-admin' })).status, 428);
      clock.advance(30_000);
      const up = await expectOk(await root.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) }));
      await adoptSession(root, up);
      await expectOk(await root.post('/v1/projects/p1/bindings', { principal: 'user:pa', role: 'project-admin' }));
      await expectOk(await root.post('/v1/admin/users', { username: 'plain', password: PASSWORD }));
      const paStep = await passwordStep(server.url, 'pa');
      assert.equal(paStep.body.mfaEnrollmentRequired, true);
      const pa = new Client(server.url);
      await adoptSession(pa, paStep.res);
      assert.equal((await pa.get('/v1/projects/p1')).status, 403);
      const plainStep = await passwordStep(server.url, 'plain');
      assert.equal(plainStep.body.mfaEnrollmentRequired, undefined, 'no role, no obligation');
      // Logout stays possible.
      assert.equal((await pa.post('/v1/auth/logout')).status, 200);

      // A user made admin after signing in is stopped on the next request (checked per request).
      const plain = new Client(server.url);
      await adoptSession(plain, plainStep.res);
      await expectOk(await plain.get('/v1/projects'));
      clock.advance(STEP);
      const rootAgain = await loginWithTotp(server.url, 'root', secret, clock.now());
      await expectOk(await rootAgain.post('/v1/projects/p1/bindings', { principal: 'user:plain', role: 'project-admin' }));
      const now = await plain.get('/v1/projects');
      assert.equal(now.status, 403);
      assert.equal((await json<{ error: { code: string } }>(now)).error.code, 'mfa_enrollment_required');
    });
  });
}

// MC-AUTHN-03 — One-time code replay. The TOTP code that just succeeded is refused again in
// the same 30 s step and in the next step (still inside the ±1 drift window); a code of the
// next step used early burns the current one too; a recovery code works once; an expired
// code (two steps old) is refused. Every refusal has the same generic message.
// Sources: ASVS 5.0 6.5.1, 6.5.2, 6.5.5; NIST SP 800-63B-4 s3.1.5.2; RFC 6238 s5.2.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { adoptSession, BACKENDS, Client, enrollTotp, json, passwordStep, totpCode, type World, world } from '../helpers/server.ts';

const STEP = 30_000;
const T0 = Date.UTC(2026, 3, 2, 10, 0, 0);

for (const backend of BACKENDS) {
  describe(`MC-AUTHN-03 one-time code replay (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(T0);
    let secret = '';
    let recovery: string[] = [];
    /** Second step of a fresh login with `code`: status and error message. */
    const second = async (path: 'totp' | 'recovery', code: string): Promise<{ status: number; message: string; client: Client }> => {
      const step = await passwordStep(w.server.url, 'ml-engineer');
      assert.equal(step.body.status, 'mfa_required');
      const c = new Client(w.server.url);
      const r = await c.post(`/v1/auth/mfa/${path}`, { mfaToken: step.body.mfaToken, code });
      if (r.status === 200) await adoptSession(c, r);
      return { status: r.status, message: r.status === 200 ? '' : (await json<{ error: { message: string } }>(r)).error.message, client: c };
    };
    before(async () => {
      // Throttling is MC-AUTHN-01's subject: here it must not be what refuses a code.
      w = await world(backend, { clock, config: { throttle: { accountFreeFailures: 100, ipFreeFailures: 10_000 } } });
      ({ secret, recoveryCodes: recovery } = await enrollTotp(w.as['ml-engineer'], clock.now()));
    });
    after(() => w.server.close());

    test('the code that succeeded is refused in the same step and in the next one', async () => {
      clock.advance(STEP);
      const code = totpCode(secret, clock.now());
      assert.equal((await second('totp', code)).status, 200);
      const same = await second('totp', code);
      assert.equal(same.status, 401, 'same step');
      clock.advance(STEP);
      const next = await second('totp', code);
      assert.equal(next.status, 401, 'next step, within the drift window');
      const wrong = await second('totp', '000000' === code ? '111111' : '000000');
      assert.equal(same.message, wrong.message, 'a replay is not told apart from a wrong code');
      assert.equal(next.message, wrong.message);
    });

    test('a code of the next step used early burns the current step too', async () => {
      clock.advance(STEP);
      const now = clock.now().getTime();
      assert.equal((await second('totp', totpCode(secret, now + STEP))).status, 200, 'drift +1 accepted');
      assert.equal((await second('totp', totpCode(secret, now))).status, 401, 'an earlier step is never accepted after a later one');
      clock.advance(STEP);
      assert.equal((await second('totp', totpCode(secret, clock.now()))).status, 401, 'that step is spent');
      clock.advance(STEP);
      assert.equal((await second('totp', totpCode(secret, clock.now()))).status, 200);
    });

    test('an expired code (two steps old) is refused', async () => {
      clock.advance(3 * STEP);
      const old = totpCode(secret, clock.now().getTime() - 2 * STEP);
      const r = await second('totp', old);
      assert.equal(r.status, 401);
      assert.equal(r.message, 'invalid code');
    });

    test('parallel use of one code: exactly one login wins', async () => {
      clock.advance(STEP);
      const code = totpCode(secret, clock.now());
      const steps = await Promise.all(Array.from({ length: 10 }, () => passwordStep(w.server.url, 'ml-engineer')));
      const rs = await Promise.all(steps.map((s) => new Client(w.server.url).post('/v1/auth/mfa/totp', { mfaToken: s.body.mfaToken, code })));
      assert.equal(rs.filter((r) => r.status === 200).length, 1);
    });

    test('a recovery code signs in once; its reuse, also in parallel, is refused', async () => {
      const [rc1, rc2] = recovery;
      assert.equal((await second('recovery', rc1 ?? '')).status, 200);
      const again = await second('recovery', rc1 ?? '');
      assert.equal(again.status, 401);
      assert.equal(again.message, (await second('recovery', 'aaaa-bbbb-cccc-dddd')).message);
      const steps = await Promise.all(Array.from({ length: 8 }, () => passwordStep(w.server.url, 'ml-engineer')));
      const rs = await Promise.all(steps.map((s) => new Client(w.server.url).post('/v1/auth/mfa/recovery', { mfaToken: s.body.mfaToken, code: rc2 })));
      assert.equal(rs.filter((r) => r.status === 200).length, 1);
    });

    test('step-up is held to the same rule: a code is accepted once per account', async () => {
      clock.advance(STEP);
      const c = (await second('totp', totpCode(secret, clock.now()))).client;
      clock.advance(STEP);
      const code = totpCode(secret, clock.now());
      const up = await c.post('/v1/auth/step-up/totp', { code });
      assert.equal(up.status, 200);
      await adoptSession(c, up);
      assert.equal((await c.post('/v1/auth/step-up/totp', { code })).status, 401);
      assert.equal((await second('totp', code)).status, 401, 'nor at login');
    });
  });
}

// MC-SES-05 — Sensitive operations on a 3-hour-old session. Removing an MFA factor,
// regenerating recovery codes and adding a factor need a recent second factor (or, for a
// user without one, a recent sign-in): 428 mfa_required, judged on the server from the
// session's mfaAt / authTime. One step-up (rotating the session) then lets the operation
// through, and its freshness lapses again after the window (15 min).
// Sources: ASVS 5.0 6.2.3, 7.5.1, 7.5.3, 6.6.2.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { adoptSession, BACKENDS, type Client, enrollTotp, json, totpCode, type World, world } from '../helpers/server.ts';

const MIN = 60_000;

/** Keeps a session alive (a request every 20 minutes) while `minutes` pass. */
async function age(c: Client, clock: ManualClock, minutes: number): Promise<void> {
  for (let t = 0; t < minutes; t += 20) {
    clock.advance(20 * MIN);
    assert.equal((await c.get('/v1/me')).status, 200);
  }
}

const codeOf = async (r: Response) => (await json<{ error: { code: string } }>(r)).error.code;

for (const backend of BACKENDS) {
  describe(`MC-SES-05 sensitive operations on an old session (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 3, 7, 7, 0, 0));
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('factor removal and new recovery codes on a 3-hour-old session: 428, then one step-up lets them through', async () => {
      const c = await w.client('project-admin');
      const { secret } = await enrollTotp(c, clock.now());
      await age(c, clock, 180);
      const rm = await c.del('/v1/me/mfa/totp');
      assert.equal(rm.status, 428);
      assert.equal(await codeOf(rm), 'mfa_required');
      const regen = await c.post('/v1/me/mfa/recovery-codes');
      assert.equal(regen.status, 428);
      assert.equal((await json<{ totp: boolean }>(await c.get('/v1/me/mfa'))).totp, true, 'nothing was removed');

      const up = await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) });
      assert.equal(up.status, 200);
      await adoptSession(c, up);
      const codes = await json<{ recoveryCodes: string[] }>(await c.post('/v1/me/mfa/recovery-codes'));
      assert.equal(codes.recoveryCodes.length, 10);
      // The window lapses: 16 minutes later the next sensitive operation needs another step-up.
      clock.advance(16 * MIN);
      assert.equal((await c.del('/v1/me/mfa/totp')).status, 428);
      clock.advance(30_000);
      const up2 = await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) });
      await adoptSession(c, up2);
      assert.equal((await c.del('/v1/me/mfa/totp')).status, 200);
    });

    test('adding a first factor on a 3-hour-old password session needs a fresh sign-in', async () => {
      const c = await w.client('auditor');
      await age(c, clock, 180);
      const r = await c.post('/v1/me/mfa/totp');
      assert.equal(r.status, 428);
      const fresh = await w.client('auditor');
      assert.equal((await fresh.post('/v1/me/mfa/totp')).status, 200);
    });
  });
}

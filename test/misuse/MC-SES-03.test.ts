// MC-SES-03 — Timeouts. A session left idle past the idle limit (30 min) is dead; one kept
// busy (a request every few minutes) dies at the absolute limit (12 h); neither a step-up
// (session rotation) nor activity extends the absolute limit. Judged on the server's clock
// (injected here), not by cookie expiry: the same cookie is simply refused.
// Sources: NIST SP 800-63B-4 s2.2.3, s2.3.3, s5.2; ASVS 5.0 7.1.1, 7.3.1, 7.3.2.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { adoptSession, BACKENDS, enrollTotp, json, totpCode, type World, world } from '../helpers/server.ts';

const MIN = 60_000;

for (const backend of BACKENDS) {
  describe(`MC-SES-03 idle and absolute timeouts (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 3, 5, 6, 0, 0));
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    test('idle: alive at 29 minutes of silence, dead at 30, and the expiry is audited once', async () => {
      const c = await w.client('viewer');
      clock.advance(29 * MIN);
      assert.equal((await c.get('/v1/me')).status, 200);
      clock.advance(29 * MIN);
      assert.equal((await c.get('/v1/me')).status, 200, 'activity moved the idle deadline');
      clock.advance(30 * MIN);
      assert.equal((await c.get('/v1/me')).status, 401);
      // Coming back later changes nothing.
      clock.advance(1 * MIN);
      assert.equal((await c.get('/v1/me')).status, 401);
      const admin = await w.client('admin');
      const ev = await json<{ events: { reason: string }[] }>(await admin.get('/v1/audit/events?action=auth.session_expired'));
      assert.ok(ev.events.some((e) => e.reason === 'idle timeout'));
    });

    test('absolute: a busy session, stepped up on the way, still ends at 12 hours', async () => {
      const c = await w.client('data-scientist');
      const { secret } = await enrollTotp(c, clock.now());
      const start = clock.now().getTime();
      let steppedUp = false;
      while (clock.now().getTime() + 10 * MIN < start + 12 * 60 * MIN) {
        clock.advance(10 * MIN);
        if (!steppedUp && clock.now().getTime() - start >= 6 * 60 * MIN) {
          const up = await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) });
          assert.equal(up.status, 200);
          await adoptSession(c, up);
          steppedUp = true;
        }
        assert.equal((await c.get('/v1/me')).status, 200);
      }
      assert.ok(steppedUp);
      clock.advance(start + 12 * 60 * MIN - clock.now().getTime());
      const r = await c.get('/v1/me');
      assert.equal(r.status, 401, 'the absolute limit holds across rotation and activity');
    });
  });
}

// Throttling of authentication (src/identity/throttle.ts): free failures, then 429
// `throttled` with Retry-After doubling up to a cap; released when the wait is over; reset
// by a success; unknown accounts throttled exactly like known ones; a per-IP counter across
// accounts. Also the password rules: length ≥ 12 and the shipped common-password list.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { isCommonPassword } from '../../src/identity/index.ts';
import { BACKENDS, enrollTotp, json, PASSWORD, passwordStep, totpCode, type World, world } from '../helpers/server.ts';

const WRONG = 'not the password at all';

/** "status retry-after code" of one login attempt. */
async function attempt(base: string, username: string, password: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await passwordStep(base, username, password, headers);
  const code = r.status === 200 ? 'ok' : ((r.body.error as { code: string }).code ?? '');
  return `${r.status} ${r.res.headers.get('retry-after') ?? '-'} ${code}`;
}

for (const backend of BACKENDS) {
  describe(`throttling (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 2, 3, 12, 0, 0));
    before(async () => {
      w = await world(backend, {
        clock,
        // The IP counter is tested on its own below; here it must not interfere.
        config: { throttle: { accountFreeFailures: 5, ipFreeFailures: 10_000, maxDelaySeconds: 8 }, trustedProxies: ['127.0.0.1', '::1', '::ffff:127.0.0.1'] },
      });
      for (const u of ['tia', 'ugo', 'vic']) await w.admin.post('/v1/admin/users', { username: u, password: PASSWORD });
    });
    after(() => w.server.close());

    test('five free failures, then waits of 1, 2, 4, 8, 8 s with Retry-After; each wait releases; success resets', async () => {
      const seq: string[] = [];
      for (let i = 0; i < 5; i++) seq.push(await attempt(w.server.url, 'tia', WRONG));
      assert.deepEqual(seq, Array(5).fill('401 - invalid_credentials'));
      // Throttled: even the right password is not looked at.
      assert.equal(await attempt(w.server.url, 'tia', PASSWORD), '429 1 throttled');
      const waits: string[] = [];
      for (const wait of [1, 2, 4, 8, 8]) {
        clock.advance(wait * 1000 - 1);
        waits.push(await attempt(w.server.url, 'tia', WRONG));
        clock.advance(1);
        waits.push(await attempt(w.server.url, 'tia', WRONG));
      }
      assert.deepEqual(waits, [
        '429 1 throttled',
        '401 - invalid_credentials',
        '429 1 throttled',
        '401 - invalid_credentials',
        '429 1 throttled',
        '401 - invalid_credentials',
        '429 1 throttled',
        '401 - invalid_credentials',
        '429 1 throttled',
        '401 - invalid_credentials',
      ]);
      assert.equal(await attempt(w.server.url, 'tia', PASSWORD), '429 8 throttled', 'the cap (8 s here) is never exceeded');
      clock.advance(8000);
      assert.equal(await attempt(w.server.url, 'tia', PASSWORD), '200 - ok', 'released: the right password works');
      // The success reset the account: five free failures again.
      const again: string[] = [];
      for (let i = 0; i < 6; i++) again.push(await attempt(w.server.url, 'tia', WRONG));
      assert.deepEqual(again, [...Array(5).fill('401 - invalid_credentials'), '429 1 throttled']);
    });

    test('an unknown account is throttled exactly like a known one (no enumeration)', async () => {
      const known: string[] = [];
      const unknown: string[] = [];
      for (let i = 0; i < 8; i++) {
        known.push(await attempt(w.server.url, 'ugo', WRONG));
        unknown.push(await attempt(w.server.url, 'nobody-by-this-name', WRONG));
        if (i === 6) clock.advance(1000);
      }
      assert.deepEqual(unknown, known);
      const a = await passwordStep(w.server.url, 'ugo', WRONG);
      const b = await passwordStep(w.server.url, 'nobody-by-this-name', WRONG);
      const strip = (x: Record<string, unknown>) => ({ ...(x.error as object), requestId: undefined });
      assert.deepEqual(strip(a.body), strip(b.body));
    });

    test('rotating client IPs does not escape the per-account counter', async () => {
      const seq: string[] = [];
      for (let i = 0; i < 7; i++) seq.push(await attempt(w.server.url, 'vic', WRONG, { 'x-forwarded-for': `198.51.100.${i + 1}` }));
      assert.deepEqual(seq, [...Array(5).fill('401 - invalid_credentials'), '429 1 throttled', '429 1 throttled']);
    });

    test('step-up codes are throttled per account as well', async () => {
      const c = await w.client('viewer');
      const { secret } = await enrollTotp(c, clock.now());
      clock.advance(30_000);
      const seq: number[] = [];
      for (let i = 0; i < 6; i++) seq.push((await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now().getTime() + 300_000) })).status);
      assert.deepEqual(seq, [401, 401, 401, 401, 401, 429]);
      clock.advance(1000);
      assert.equal((await c.post('/v1/auth/step-up/totp', { code: totpCode(secret, clock.now()) })).status, 200);
    });

    test('passwords: at least 12 characters and not on the common list, whatever the case', async () => {
      const create = (username: string, password: string) => w.admin.post('/v1/admin/users', { username, password });
      const short = await create('pw-a', 'short pass');
      assert.equal(short.status, 422);
      for (const p of ['qwerty123456', 'QWERTY123456', 'Password1234', '1q2w3e4r5t6y', ' iloveyou1234 ']) {
        const r = await create('pw-b', p);
        assert.equal(r.status, 422, p);
        assert.match((await json<{ error: { message: string } }>(r)).error.message, /common/);
      }
      assert.equal((await create('pw-c', 'violet harbour tractor 7')).status, 201);
      assert.ok(isCommonPassword('PASSWORDPASSWORD'));
      assert.ok(!isCommonPassword(PASSWORD));
    });
  });

  describe(`per-IP throttling across accounts (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.UTC(2026, 2, 3, 12, 0, 0));
    before(async () => {
      w = await world(backend, { clock, config: { throttle: { accountFreeFailures: 5, ipFreeFailures: 20 }, trustedProxies: ['127.0.0.1', '::1', '::ffff:127.0.0.1'] } });
    });
    after(() => w.server.close());

    test('one address guessing many accounts is slowed down; other addresses are not', async () => {
      const ip = { 'x-forwarded-for': '203.0.113.9' };
      const seq: string[] = [];
      for (let i = 0; i < 21; i++) seq.push(await attempt(w.server.url, `spray-${i}`, WRONG, ip));
      assert.deepEqual(seq, [...Array(20).fill('401 - invalid_credentials'), '429 1 throttled']);
      // A legitimate user elsewhere signs in normally.
      assert.equal(await attempt(w.server.url, 'viewer', PASSWORD, { 'x-forwarded-for': '192.0.2.77' }), '200 - ok');
      clock.advance(1000);
      assert.equal(await attempt(w.server.url, 'viewer', PASSWORD, ip), '200 - ok', 'released after the wait');
    });
  });
}

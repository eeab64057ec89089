// MC-DF-03 — device_code lifecycle (RFC 8628 s3.5, s5.2; ASVS 5.0 6.6.2). A device code is
// single use and bound to the client that asked for it: a second redemption (another CLI)
// is invalid_grant, after expires_in expired_token, after the user denied access_denied,
// from another client_id invalid_grant (and an unknown client cannot start a flow:
// invalid_client); polling faster than the interval is slow_down, which grows the interval.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ManualClock } from '../../src/core/index.ts';
import { bearer, CLI, DEVICE_GRANT, form, startDevice, type Tokens } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`MC-DF-03 device_code lifecycle (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    before(async () => {
      w = await world(backend, { clock });
    });
    after(() => w.server.close());

    const poll = (deviceCode: string, clientId = CLI) => form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: deviceCode, client_id: clientId });
    const oauthError = async (r: Response) => {
      assert.ok(r.status === 400 || r.status === 401, `status ${r.status}`);
      return (await json<{ error: string }>(r)).error;
    };
    const approver = () => w.client('viewer');

    test('redeemed twice: the second CLI gets invalid_grant and the first tokens keep working', async () => {
      const d = await startDevice(w.server.url);
      assert.equal((await (await approver()).post('/v1/auth/device/approve', { userCode: d.user_code })).status, 200);
      const first = await poll(d.device_code);
      assert.equal(first.status, 200);
      const t = await json<Tokens>(first);
      clock.advance((d.interval + 1) * 1000);
      assert.equal(await oauthError(await poll(d.device_code)), 'invalid_grant');
      assert.equal((await bearer(w.server.url, t.access_token, '/v1/me')).status, 200);
    });

    test('after expires_in: expired_token, approved or not', async () => {
      const pending = await startDevice(w.server.url);
      const approved = await startDevice(w.server.url);
      assert.equal((await (await approver()).post('/v1/auth/device/approve', { userCode: approved.user_code })).status, 200);
      clock.advance(approved.expires_in * 1000 + 1000);
      assert.equal(await oauthError(await poll(pending.device_code)), 'expired_token');
      assert.equal(await oauthError(await poll(approved.device_code)), 'expired_token');
      // And an expired code can no longer be approved.
      const late = await startDevice(w.server.url);
      clock.advance(late.expires_in * 1000 + 1000);
      assert.equal((await (await approver()).post('/v1/auth/device/approve', { userCode: late.user_code })).status, 422);
    });

    test('after the user denied: access_denied, and the code cannot be approved afterwards', async () => {
      const d = await startDevice(w.server.url);
      const c = await approver();
      assert.equal((await c.post('/v1/auth/device/deny', { userCode: d.user_code })).status, 200);
      assert.equal(await oauthError(await poll(d.device_code)), 'access_denied');
      assert.equal((await c.post('/v1/auth/device/approve', { userCode: d.user_code })).status, 422);
      clock.advance((d.interval + 1) * 1000);
      assert.equal(await oauthError(await poll(d.device_code)), 'access_denied');
    });

    test('another client_id: invalid_grant, and the rightful client still redeems; unknown clients cannot start a flow', async () => {
      const d = await startDevice(w.server.url);
      assert.equal((await (await approver()).post('/v1/auth/device/approve', { userCode: d.user_code })).status, 200);
      assert.equal(await oauthError(await poll(d.device_code, 'evil-cli')), 'invalid_grant');
      assert.equal(await oauthError(await form(w.server.url, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code })), 'invalid_grant');
      assert.equal((await poll(d.device_code)).status, 200);
      const start = await form(w.server.url, '/oauth/device_authorization', { client_id: 'evil-cli' });
      assert.equal(await oauthError(start), 'invalid_client');
    });

    test('polling faster than the interval: slow_down, and the interval grows by 5 s', async () => {
      const d = await startDevice(w.server.url);
      assert.equal(await oauthError(await poll(d.device_code)), 'authorization_pending');
      assert.equal(await oauthError(await poll(d.device_code)), 'slow_down');
      // Waiting the old interval is not enough any more.
      clock.advance(d.interval * 1000);
      assert.equal(await oauthError(await poll(d.device_code)), 'slow_down');
      clock.advance((d.interval + 10) * 1000 + 1);
      assert.equal(await oauthError(await poll(d.device_code)), 'authorization_pending');
      const row = await w.server.services.db.kysely.selectFrom('device_authorizations').select('interval_seconds').where('user_code', '=', d.user_code.replace('-', '')).executeTakeFirstOrThrow();
      assert.equal(row.interval_seconds, d.interval + 10);
    });
  });
}

// GET /v1/me/notifications: the caller's own recent sensitive events from the audit log —
// sign-ins, new API keys, logout-all, refresh-token reuse on their families, promotions to
// production of models they created — newest first, limited, and never anyone else's.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { deviceLogin, refresh } from '../helpers/oauth.ts';
import { BACKENDS, Client, expectOk, json, type World, world } from '../helpers/server.ts';

interface N {
  at: string;
  kind: string;
  message: string;
  ip: string | null;
  userAgent: string | null;
}
const list = async (c: Client, q = '') => (await json<{ notifications: N[] }>(await expectOk(await c.get(`/v1/me/notifications${q}`)))).notifications;

for (const backend of BACKENDS) {
  describe(`my notifications (${backend})`, () => {
    let w: World;
    const M = '/v1/projects/fraud/models/notify-me';
    before(async () => {
      w = await world(backend);
    });
    after(() => w.server.close());

    test('own sign-ins, API keys and promotions of my models to production, newest first; others see none of them', async () => {
      const mle = w.as['ml-engineer'];
      await expectOk(await mle.post('/v1/projects/fraud/models', { name: 'notify-me' }));
      await expectOk(await mle.post(`${M}/versions`, {}));
      await expectOk(await mle.upload(`${M}/versions/1/artifacts/m.bin`, 'w'));
      await expectOk(await mle.post(`${M}/versions/1/finalize`));
      await expectOk(await w.as['release-manager'].post(`${M}/versions/1/promote`, { stage: 'staging' }));
      await expectOk(await mle.post('/v1/me/api-keys', { name: 'laptop', scopes: ['read'], expiresInDays: 7 }));
      await expectOk(await w.as['release-manager'].post(`${M}/versions/1/promote`, { stage: 'production' }));

      const mine = await list(mle);
      assert.deepEqual(
        mine.map((n) => n.kind),
        ['promoted_to_production', 'api_key_created', 'sign_in'],
      );
      assert.equal(mine[0]?.message, 'fraud/notify-me@1 was promoted to production');
      assert.equal(mine[1]?.message, 'New API key "laptop"');
      assert.equal(mine[2]?.ip, '127.0.0.1');
      assert.ok(mine.every((n, i) => i === 0 || n.at <= (mine[i - 1]?.at ?? '')));
      // The staging promotion is not a sensitive event; the promoter does not get the model creator's notice.
      const rm = await list(w.as['release-manager']);
      assert.deepEqual(
        rm.map((n) => n.kind),
        ['sign_in'],
      );
      const viewer = await list(w.as.viewer);
      assert.deepEqual(
        viewer.map((n) => n.kind),
        ['sign_in'],
      );
      assert.equal((await list(mle, '?limit=1')).length, 1);
    });

    test('refresh-token reuse on my token family and sign out everywhere are notified', async () => {
      const ds = await w.client('data-scientist');
      const t = await deviceLogin(w.server.url, ds);
      assert.equal((await refresh(w.server.url, t.refresh_token)).status, 200);
      assert.equal((await refresh(w.server.url, t.refresh_token)).status, 400); // reuse: the family is revoked
      const kinds = (await list(ds)).map((n) => n.kind);
      assert.equal(kinds[0], 'refresh_token_reuse');
      // Nobody else hears of it.
      assert.ok(!(await list(w.as['ml-engineer'])).some((n) => n.kind === 'refresh_token_reuse'));

      await expectOk(await ds.post('/v1/auth/logout-all'));
      const again = new Client(w.server.url);
      await expectOk(await again.login('data-scientist'));
      assert.deepEqual(
        (await list(again)).slice(0, 3).map((n) => n.kind),
        ['sign_in', 'signed_out_everywhere', 'refresh_token_reuse'],
      );
    });

    test('signed out: 401', async () => {
      assert.equal((await new Client(w.server.url).get('/v1/me/notifications')).status, 401);
    });
  });
}

// MC-JWT-04 — validity window (ASVS 5.0 9.2.1, 15.3.5). Tokens are signed with the
// server's REAL private key (read from the signing_keys table) so that only the claim
// under test is wrong: exp = now-(skew+1s) is refused while exp = now-(skew-1s) is
// accepted; nbf = now+skew+5s, iat far in the future, no exp, and exp as a string are
// refused. The server clock is injected (ManualClock) so "now" is exact.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { importJWK, type JWK, SignJWT } from 'jose';
import { ManualClock } from '../../src/core/index.ts';
import { bearer, deviceLogin } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

const SKEW = 30;

for (const backend of BACKENDS) {
  describe(`MC-JWT-04 validity window (${backend})`, () => {
    let w: World;
    const clock = new ManualClock(Date.now());
    let claims: Record<string, unknown>;
    let kid: string;
    let key: Awaited<ReturnType<typeof importJWK>>;
    before(async () => {
      w = await world(backend, { clock, config: { tokens: { clockSkewSeconds: SKEW } } });
      const good = (await deviceLogin(w.server.url, w.as.viewer, 'read')).access_token;
      claims = JSON.parse(Buffer.from(good.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
      kid = (JSON.parse(Buffer.from(good.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
      const row = await w.server.services.db.kysely.selectFrom('signing_keys').select('private_jwk').where('kid', '=', kid).executeTakeFirstOrThrow();
      key = await importJWK(JSON.parse(row.private_jwk) as JWK, 'EdDSA');
    });
    after(() => w.server.close());

    const now = () => Math.floor(clock.now().getTime() / 1000);
    /** The genuine claims with `patch` applied (undefined deletes a claim), signed with the real key; a fresh jti so no cache entry is shared. */
    const forge = async (patch: Record<string, unknown>) => {
      const c: Record<string, unknown> = { ...claims, jti: `at_${Math.random().toString(36).slice(2)}` };
      for (const [k, v] of Object.entries(patch)) {
        if (v === undefined) delete c[k];
        else c[k] = v;
      }
      return new SignJWT(c).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).sign(key);
    };
    const status = async (token: string) => {
      const r = await bearer(w.server.url, token, '/v1/projects/fraud/models');
      if (r.status === 401) assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'unauthenticated');
      return r.status;
    };

    test('control: the real key and untouched claims (fresh iat/exp) are accepted', async () => {
      assert.equal(await status(await forge({ iat: now(), exp: now() + 300 })), 200);
    });

    test('exp = now-(skew+1s) is refused; exp = now-(skew-1s) is accepted', async () => {
      assert.equal(await status(await forge({ iat: now() - 600, exp: now() - (SKEW + 1) })), 401);
      assert.equal(await status(await forge({ iat: now() - 600, exp: now() - (SKEW - 1) })), 200);
    });

    test('a token accepted within the skew is refused once the clock passes exp+skew (even though it was cached)', async () => {
      const t = await forge({ iat: now() - 600, exp: now() - (SKEW - 2) });
      assert.equal(await status(t), 200);
      clock.advance(3000);
      assert.equal(await status(t), 401);
    });

    test('nbf = now+skew+5s is refused; nbf within the skew is accepted', async () => {
      assert.equal(await status(await forge({ iat: now(), exp: now() + 300, nbf: now() + SKEW + 5 })), 401);
      assert.equal(await status(await forge({ iat: now(), exp: now() + 300, nbf: now() + SKEW - 5 })), 200);
    });

    test('iat far in the future is refused (also just beyond the skew)', async () => {
      assert.equal(await status(await forge({ iat: now() + 365 * 86400, exp: now() + 365 * 86400 + 300 })), 401);
      assert.equal(await status(await forge({ iat: now() + SKEW + 5, exp: now() + SKEW + 305 })), 401);
    });

    test('no exp, exp as a string, exp as a numeric string, exp null; nbf / iat as strings', async () => {
      assert.equal(await status(await forge({ iat: now(), exp: undefined })), 401);
      assert.equal(await status(await forge({ iat: now(), exp: String(now() + 300) })), 401);
      assert.equal(await status(await forge({ iat: now(), exp: `${now() + 300}.0` })), 401);
      assert.equal(await status(await forge({ iat: now(), exp: null })), 401);
      assert.equal(await status(await forge({ iat: now(), exp: now() + 300, nbf: String(now() - 10) })), 401);
      assert.equal(await status(await forge({ iat: String(now()), exp: now() + 300 })), 401);
      assert.equal(await status(await forge({ iat: undefined, exp: now() + 300 })), 401);
    });
  });
}

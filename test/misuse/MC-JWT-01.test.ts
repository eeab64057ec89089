// MC-JWT-01 — unsigned or tampered JWS. Every variant is a 401 `unauthenticated`, never a
// fall back to anonymous (even on a route anonymous callers may use), and is audited.
// Tokens with duplicate JSON keys or non-canonical base64url are refused even when they
// carry a genuine signature made with the server's own key.
import assert from 'node:assert/strict';
import { KeyObject, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { bearer, deviceLogin } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');

for (const backend of BACKENDS) {
  describe(`MC-JWT-01 unsigned or tampered tokens (${backend})`, () => {
    let w: World;
    let good: string;
    before(async () => {
      w = await world(backend);
      good = (await deviceLogin(w.server.url, w.as.viewer)).access_token;
    });
    after(() => w.server.close());

    /** Signs header.payload text with the server's real current key (the attacker cannot; this proves strict parsing). */
    const signReal = async (header: string, payload: string): Promise<string> => {
      const { key } = await w.server.services.tokens.keys.current();
      const input = `${b64(header)}.${b64(payload)}`;
      return `${input}.${b64(sign(null, Buffer.from(input), KeyObject.from(key)))}`;
    };

    const expect401 = async (token: string, what: string, path = '/v1/me') => {
      const r = await bearer(w.server.url, token, path);
      assert.equal(r.status, 401, what);
      assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'unauthenticated', what);
    };

    test('the genuine token works (control)', async () => {
      assert.equal((await bearer(w.server.url, good, '/v1/me')).status, 200);
    });

    test("alg 'none' / 'None' / 'NONE' with an empty signature", async () => {
      const [, p] = good.split('.');
      for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
        await expect401(`${b64(JSON.stringify({ alg, typ: 'at+jwt' }))}.${p}.`, `alg ${alg}`);
        await expect401(`${b64(JSON.stringify({ alg, kid: 'x', typ: 'at+jwt' }))}.${p}`, `alg ${alg}, two segments`);
      }
    });

    test('payload changed (scope=admin) under the old signature; one signature bit flipped; signature removed', async () => {
      const [h, p, s] = good.split('.') as [string, string, string];
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      await expect401(`${h}.${b64(JSON.stringify({ ...claims, scope: 'read download write release trigger admin' }))}.${s}`, 'tampered payload');
      const sig = Buffer.from(s, 'base64url');
      sig[10] = (sig[10] ?? 0) ^ 0x01;
      await expect401(`${h}.${p}.${b64(sig)}`, 'flipped bit');
      await expect401(`${h}.${p}.`, 'empty signature');
      await expect401(`${h}.${p}`, 'no signature segment');
    });

    test('duplicate JSON keys (two sub) are refused even when genuinely signed', async () => {
      const [h, p] = good.split('.') as [string, string, string];
      const header = Buffer.from(h, 'base64url').toString();
      const payload = Buffer.from(p, 'base64url').toString();
      // Control: re-signing the exact same header and payload works.
      assert.equal((await bearer(w.server.url, await signReal(header, payload), '/v1/me')).status, 200);
      const outsider = (await w.server.services.identity.users.byUsername('outsider'))?.id ?? '';
      const dup = `${payload.slice(0, -1)},"sub":"${outsider}"}`;
      await expect401(await signReal(header, dup), 'duplicate sub');
      await expect401(await signReal(`{"alg":"EdDSA","alg":"none",${header.slice(1)}`, payload), 'duplicate alg');
    });

    test("non-canonical base64url: padding '=', '+' and '/', stray trailing bits", async () => {
      const [h, p, s] = good.split('.') as [string, string, string];
      await expect401(`${h}=.${p}.${s}`, 'padding');
      await expect401(`${h}.${p}.${s.replace(/-/g, '+').replace(/_/g, '/')}${s.includes('-') || s.includes('_') ? '' : '+'}`, "'+' and '/'");
      // The last character of a 64-byte signature carries 2 unused bits: change them only.
      const last = s.at(-1) ?? 'A';
      const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
      const i = alphabet.indexOf(last);
      const sibling = alphabet[(i & ~0b11) | ((i & 0b11) ^ 0b01)] ?? last;
      assert.deepEqual(Buffer.from(`${s.slice(0, -1)}${sibling}`, 'base64url'), Buffer.from(s, 'base64url'), 'decodes to the same bytes');
      await expect401(`${h}.${p}.${s.slice(0, -1)}${sibling}`, 'stray bits');
    });

    test('an invalid token on a route that allows anonymous callers is a 401, not anonymous, and is audited', async () => {
      const before0 = await w.server.services.db.kysely.selectFrom('audit_events').select('seq').where('action', '=', 'auth.bearer').execute();
      await expect401('not-a-token', 'garbage on /healthz', '/healthz');
      await expect401(`${good}x`, 'tampered token on the public key route', '/v1/audit/public-key');
      const r = await fetch(`${w.server.url}/healthz`, { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
      assert.equal(r.status, 401, 'another scheme is not ignored either');
      const after0 = await w.server.services.db.kysely.selectFrom('audit_events').select(['seq', 'outcome', 'reason']).where('action', '=', 'auth.bearer').execute();
      assert.equal(after0.length, before0.length + 3);
      assert.ok(after0.every((e) => e.outcome === 'failure'));
      // Without any Authorization header the anonymous route still answers.
      assert.equal((await fetch(`${w.server.url}/healthz`)).status, 200);
    });
  });
}

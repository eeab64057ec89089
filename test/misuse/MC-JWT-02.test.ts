// MC-JWT-02 — algorithm/key confusion (ASVS 5.0 9.1.2; CVE-2022-23541, CVE-2022-23539,
// CVE-2015-9235 in jsonwebtoken). The verifier takes the algorithm from server-side key
// metadata (one pinned alg per kid, Ed25519 only), never from the token header, so:
// HS256/HS384 tokens keyed with the published public key (PEM text, DER bytes, JWK JSON),
// an RS256 token signed with an RSA-1024 key, ES256 headers over P-256 and P-384
// signatures, and a foreign Ed25519 key under our kid are all 401 — and their claims never
// reach the guard (no `allow` decision is audited while they are presented).
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject, sign } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { bearer, deviceLogin } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
const GUARDED = '/v1/projects/fraud/models';

for (const backend of BACKENDS) {
  describe(`MC-JWT-02 algorithm and key confusion (${backend})`, () => {
    let w: World;
    let good: string;
    let claims: Record<string, unknown>;
    let kid: string;
    let published: JWK;
    before(async () => {
      w = await world(backend);
      good = (await deviceLogin(w.server.url, w.as.viewer, 'read')).access_token;
      claims = JSON.parse(Buffer.from(good.split('.')[1] ?? '', 'base64url').toString()) as Record<string, unknown>;
      // The attacker escalates while forging: every scope.
      claims.scope = 'read download write release trigger admin';
      kid = (JSON.parse(Buffer.from(good.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
      const jwks = await json<{ keys: JWK[] }>(await fetch(`${w.server.url}/.well-known/jwks.json`));
      const k = jwks.keys.find((x) => x.kid === kid);
      assert.ok(k, 'the signing key is published');
      published = k;
    });
    after(() => w.server.close());

    const allowCount = async () =>
      Number(
        (await w.server.services.db.kysely.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).where('outcome', '=', 'allow').executeTakeFirstOrThrow()).n,
      );

    /** Each forged token is a 401 on a guarded read and a guarded write, and no allow decision is recorded meanwhile. */
    const expectRejected = async (tokens: Record<string, string>) => {
      const before0 = await allowCount();
      for (const [what, t] of Object.entries(tokens)) {
        const r = await bearer(w.server.url, t, GUARDED);
        assert.equal(r.status, 401, what);
        assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'unauthenticated', what);
        const wr = await bearer(w.server.url, t, GUARDED, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'forged' }) });
        assert.equal(wr.status, 401, `${what} (write)`);
      }
      assert.equal(await allowCount(), before0, 'no forged claim reached the guard');
    };

    /** header.payload signed by `signer` over the exact bytes (for algorithms jose refuses to produce). */
    const rawSigned = (header: Record<string, unknown>, signer: (input: Buffer) => Buffer) => {
      const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify(claims))}`;
      return `${input}.${b64(signer(Buffer.from(input)))}`;
    };

    test('the genuine token passes the guard (control: the allow count does move)', async () => {
      const n = await allowCount();
      assert.equal((await bearer(w.server.url, good, GUARDED)).status, 200);
      assert.ok((await allowCount()) > n);
    });

    test('HS256 / HS384 keyed with the published public key as PEM text, DER bytes and JWK JSON', async () => {
      const pub: KeyObject = createPublicKey({ key: published as never, format: 'jwk' });
      const secrets: Record<string, Uint8Array> = {
        'PEM text': Buffer.from(pub.export({ type: 'spki', format: 'pem' }) as string),
        'PEM text without trailing newline': Buffer.from((pub.export({ type: 'spki', format: 'pem' }) as string).trim()),
        'DER bytes': pub.export({ type: 'spki', format: 'der' }),
        'JWK JSON': Buffer.from(JSON.stringify(published)),
        'raw x': Buffer.from(String(published.x), 'base64url'),
      };
      const tokens: Record<string, string> = {};
      for (const alg of ['HS256', 'HS384']) {
        for (const [form, secret] of Object.entries(secrets)) {
          tokens[`${alg} ${form}`] = await new SignJWT(claims).setProtectedHeader({ alg, kid, typ: 'at+jwt' }).sign(secret);
        }
      }
      await expectRejected(tokens);
    });

    test('RS256 signed with an RSA-1024 key, under our kid and under a kid of its own', async () => {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      const s = (input: Buffer) => sign('sha256', input, privateKey);
      await expectRejected({
        'RS256/1024 our kid': rawSigned({ alg: 'RS256', kid, typ: 'at+jwt' }, s),
        'RS256/1024 own kid': rawSigned({ alg: 'RS256', kid: 'attacker', typ: 'at+jwt' }, s),
        'RS256/1024 no kid': rawSigned({ alg: 'RS256', typ: 'at+jwt' }, s),
      });
    });

    test('ES256 header over a P-256 signature and over a P-384 signature', async () => {
      const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
      await expectRejected({
        'ES256 P-256': rawSigned({ alg: 'ES256', kid, typ: 'at+jwt' }, (i) => sign('sha256', i, { key: p256, dsaEncoding: 'ieee-p1363' })),
        'ES256 P-384': rawSigned({ alg: 'ES256', kid, typ: 'at+jwt' }, (i) => sign('sha256', i, { key: p384, dsaEncoding: 'ieee-p1363' })),
        'ES384 P-384': rawSigned({ alg: 'ES384', kid, typ: 'at+jwt' }, (i) => sign('sha384', i, { key: p384, dsaEncoding: 'ieee-p1363' })),
      });
    });

    test('a foreign Ed25519 key signing under our known kid (and with its key embedded in the header)', async () => {
      const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
      const jwk = await exportJWK(publicKey);
      await expectRejected({
        'foreign Ed25519, our kid': await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt' }).sign(privateKey),
        'foreign Ed25519, embedded jwk': await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid, typ: 'at+jwt', jwk }).sign(privateKey),
        'foreign Ed25519, unknown kid': await new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', kid: 'key_attacker', typ: 'at+jwt' }).sign(privateKey),
      });
    });
  });
}

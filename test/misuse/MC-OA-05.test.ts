// MC-OA-05 — grant hygiene (ASVS 5.0 10.4.4, 10.4.6; RFC 9700 s2.1.1, s2.4, s4.8). This
// server has no authorization endpoint (no code or implicit flow, hence nothing for PKCE to
// protect): grant_type=password, authorization_code, implicit or anything unknown is
// unsupported_grant_type; /oauth/authorize and friends do not exist (404; 401 for anonymous callers, who are refused
// before routing); the metadata advertises no
// response types; a missing grant_type is invalid_request; a JSON body (what a
// cross-site script could send) is refused with invalid_request.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CLI, form } from '../helpers/oauth.ts';
import { BACKENDS, json, PASSWORD, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`MC-OA-05 grant hygiene (${backend})`, () => {
    let w: World;
    before(async () => {
      w = await world(backend);
    });
    after(() => w.server.close());

    const oauthError = async (r: Response, status: number, error: string, what: string) => {
      assert.equal(r.status, status, what);
      assert.equal((await json<{ error: string }>(r)).error, error, what);
      assert.equal(r.headers.get('cache-control'), 'no-store', what);
    };

    test('password, authorization_code, implicit, token and unknown grants are unsupported_grant_type (and audited)', async () => {
      const db = w.server.services.db.kysely;
      const count = async () => (await db.selectFrom('audit_events').select('seq').where('action', '=', 'auth.token').where('outcome', '=', 'failure').execute()).length;
      const before0 = await count();
      const grants: Record<string, string>[] = [
        { grant_type: 'password', username: 'viewer', password: PASSWORD, client_id: CLI },
        { grant_type: 'authorization_code', code: 'x', redirect_uri: 'http://127.0.0.1:1/cb', client_id: CLI, code_verifier: 'a'.repeat(43) },
        { grant_type: 'implicit', client_id: CLI },
        { grant_type: 'token', client_id: CLI },
        { grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: 'x.y.z' },
        { grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: 'x' },
        { grant_type: 'DEVICE_CODE', device_code: 'x', client_id: CLI },
        { grant_type: 'Refresh_Token', refresh_token: 'mkr_x', client_id: CLI },
      ];
      for (const g of grants) await oauthError(await form(w.server.url, '/oauth/token', g), 400, 'unsupported_grant_type', g.grant_type ?? '');
      assert.equal(await count(), before0 + grants.length, 'each refusal is audited');
    });

    test('no authorization endpoint: response_type requests find nothing (404 signed in, 401 anonymous; GET and POST, no redirect), and metadata offers no response type', async () => {
      for (const path of ['/oauth/authorize', '/authorize', '/oauth/authorize?response_type=token&client_id=modelkeep-cli', '/oauth/authorize?response_type=code&client_id=modelkeep-cli&code_challenge_method=plain&code_challenge=x']) {
        // Anonymous callers learn nothing about unknown routes (401 before routing); a signed-in one gets 404.
        const g = await fetch(`${w.server.url}${path}`, { redirect: 'manual' });
        assert.ok(g.status === 401 || g.status === 404, `anonymous GET ${path}: ${g.status}`);
        assert.equal(g.headers.get('location'), null, `GET ${path} redirects nowhere`);
        const p = await form(w.server.url, path, { response_type: 'token', client_id: CLI });
        assert.ok(p.status === 401 || p.status === 404, `anonymous POST ${path}: ${p.status}`);
        const signedIn = await w.as.viewer.get(path);
        assert.equal(signedIn.status, 404, `signed-in GET ${path}`);
        assert.equal(signedIn.headers.get('location'), null);
        assert.equal((await w.as.viewer.post(path, { response_type: 'token', client_id: CLI })).status, 404, `signed-in POST ${path}`);
      }
      const m = await json<{ response_types_supported: string[]; grant_types_supported: string[] }>(await fetch(`${w.server.url}/.well-known/oauth-authorization-server`));
      assert.deepEqual(m.response_types_supported, []);
      assert.ok(!m.grant_types_supported.includes('password') && !m.grant_types_supported.includes('authorization_code') && !m.grant_types_supported.includes('implicit'));
    });

    test('missing or empty grant_type is invalid_request', async () => {
      await oauthError(await form(w.server.url, '/oauth/token', { client_id: CLI }), 400, 'invalid_request', 'missing');
      await oauthError(await form(w.server.url, '/oauth/token', {}), 400, 'invalid_request', 'empty body');
      const empty = await form(w.server.url, '/oauth/token', { grant_type: '' });
      assert.equal(empty.status, 400);
      assert.ok(['invalid_request', 'unsupported_grant_type'].includes((await json<{ error: string }>(empty)).error));
    });

    test('a JSON body, text/plain and multipart are refused on every OAuth endpoint (415 or invalid_request)', async () => {
      const bodies: [string, string][] = [
        ['application/json', JSON.stringify({ grant_type: 'refresh_token', refresh_token: 'mkr_x', client_id: CLI })],
        ['text/plain', 'grant_type=refresh_token&refresh_token=mkr_x&client_id=modelkeep-cli'],
        ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nrefresh_token\r\n--x--\r\n'],
      ];
      for (const path of ['/oauth/token', '/oauth/device_authorization', '/oauth/revoke']) {
        for (const [type, body] of bodies) {
          const r = await fetch(`${w.server.url}${path}`, { method: 'POST', headers: { 'content-type': type }, body });
          assert.ok(r.status === 415 || r.status === 400, `${path} ${type}: ${r.status}`);
          if (r.status === 400) assert.equal((await json<{ error: string }>(r)).error, 'invalid_request', `${path} ${type}`);
        }
      }
    });
  });
}

// The route walk: every route Fastify registered (enumerated at run time through an
// onRoute hook, so nothing added later escapes) is either declared authentication-free
// here, declared to act only on the caller's own session, or — called by an authenticated
// user — produces a guard decision in the audit log: an allow or deny event for that
// request carrying the active policy version. Nothing is authorized in the HTTP layer alone.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { registeredRoutes } from '../../src/http/index.ts';
import { BACKENDS, type Client, json, type World, world } from '../helpers/server.ts';

/** Routes that answer without authentication, and why that is safe. */
const AUTH_FREE: Record<string, string> = {
  'GET /healthz': 'liveness, no data',
  'GET /readyz': 'readiness, no data',
  'POST /v1/auth/login': 'authentication itself (audited by the identity layer)',
  'GET /v1/audit/tree-head': 'signed tree heads are public by design (transparency log)',
  'GET /v1/audit/tree-heads': 'signed tree heads are public by design (transparency log)',
  'GET /v1/audit/public-key': 'the key that verifies tree heads',
  'GET /metrics': 'guarded by its own bearer token (404 when unconfigured)',
  'GET /': 'the console page (static, no data; every API call it makes is authorized)',
  'GET /device': 'the console page for device approval (static, no data)',
  'GET /assets/*': "the console's static files (no data)",
  'GET /.well-known/jwks.json': 'public keys that verify access tokens',
  'GET /.well-known/oauth-authorization-server': 'public OAuth metadata (RFC 8414)',
  'POST /oauth/token': 'the OAuth token endpoint: authenticates its own grants (device code, refresh token, client secret)',
  'POST /oauth/device_authorization': 'starts a device login; grants nothing until a signed-in user approves',
  'POST /oauth/revoke': 'token revocation (RFC 7009): only ends the presented token',
  'POST /v1/auth/mfa/totp': 'second step of a login: authenticated by the pending-login mfaToken',
  'POST /v1/auth/mfa/recovery': 'second step of a login: authenticated by the pending-login mfaToken',
  'POST /v1/auth/mfa/passkey': 'second step of a login: authenticated by the pending-login mfaToken',
  'POST /v1/auth/mfa/passkey/options': 'a challenge for the pending login of the mfaToken',
  'POST /v1/auth/passkey': 'passwordless login: the passkey assertion is the authentication',
  'POST /v1/auth/passkey/options': 'a challenge for a passwordless login (no account data revealed)',
};

/** Authenticated routes that act only on the caller's own session and name no resource. */
const SESSION_SELF: Record<string, string> = {
  'GET /v1/me': "the caller's own account, session and roles",
  'POST /v1/auth/logout': "ends the caller's own session (audited as auth.logout)",
  'POST /v1/auth/logout-all': "ends the caller's own sessions and tokens (audited as auth.logout_all)",
  'GET /v1/auth/csrf': "the CSRF token of the caller's own console session",
  'POST /v1/auth/step-up/totp': "a fresh second factor for the caller's own session (audited as auth.step_up)",
  'POST /v1/auth/step-up/passkey/options': "a challenge bound to the caller's own session",
  'POST /v1/auth/step-up/passkey': "a fresh second factor for the caller's own session (audited as auth.step_up)",
  'GET /v1/me/sessions': "the caller's own sessions",
  'DELETE /v1/me/sessions/:id': "ends one of the caller's own sessions (another user's id is not found)",
  'GET /v1/me/mfa': "the caller's own second factors",
  'POST /v1/me/mfa/totp': "starts the caller's own TOTP enrollment (audited)",
  'POST /v1/me/mfa/totp/confirm': "confirms the caller's own TOTP enrollment (audited)",
  'DELETE /v1/me/mfa/totp': "removes the caller's own authenticator app (fresh MFA, audited)",
  'POST /v1/me/mfa/recovery-codes': "replaces the caller's own recovery codes (fresh MFA, audited)",
  'POST /v1/me/passkeys/options': "a registration challenge for the caller's own account",
  'POST /v1/me/passkeys': "registers a passkey on the caller's own account (audited)",
  'GET /v1/me/passkeys': "the caller's own passkeys",
  'DELETE /v1/me/passkeys/:id': "removes one of the caller's own passkeys (fresh MFA, audited)",
  'POST /v1/me/api-keys': "a key for the caller's own account; every use of it is authorized per request (audited as api_key.create)",
  'GET /v1/me/api-keys': "the caller's own API keys",
  'DELETE /v1/me/api-keys/:id': "revokes one of the caller's own API keys (audited)",
  'GET /v1/me/notifications': "the caller's own recent sensitive events (only their own: src/registry/notifications.ts)",
  'GET /v1/auth/device': 'a pending device login the caller may approve for their own account (guesses limited, audited)',
  'POST /v1/auth/device/approve': "grants a device the caller's own access (fresh MFA where needed, audited)",
  'POST /v1/auth/device/deny': 'refuses a pending device login (audited)',
};

let n = 0;
const uniq = (p: string) => `${p}-${++n}`;

interface Call {
  path: string;
  body?: unknown;
  upload?: string;
}

for (const backend of BACKENDS) {
  describe(`route walk (${backend})`, () => {
    let w: World;
    const mle = () => w.as['ml-engineer'];
    before(async () => {
      w = await world(backend);
      assert.equal((await mle().post('/v1/projects/fraud/models', { name: 'm-int' })).status, 201);
      assert.equal((await mle().post('/v1/projects/fraud/models/m-int/versions', {})).status, 201);
      assert.equal((await mle().upload('/v1/projects/fraud/models/m-int/versions/1/artifacts/model.bin', 'weights')).status, 201);
      assert.equal((await mle().post('/v1/projects/fraud/models/m-int/versions/1/finalize')).status, 200);
      assert.equal((await mle().put('/v1/projects/fraud/deployments/dep', { environment: 'dev', model: 'm-int', version: 1, config: {} })).status, 200);
    });
    after(() => w.server.close());

    const throwaway = async () => json<{ id: string; username: string }>(await w.admin.post('/v1/admin/users', { username: uniq('walk-user') }));

    /** A request that reaches the service behind each route (params filled with existing things). */
    async function callFor(route: string): Promise<Call> {
      const [, url = ''] = route.split(' ');
      const path = url
        .replace(':p', 'fraud')
        .replace(':m', 'm-int')
        .replace(':v', '1')
        .replace(':d', 'dep')
        .replace(':name', 'pipe')
        .replace('*', 'model.bin');
      switch (route) {
        case 'POST /v1/admin/users':
          return { path, body: { username: uniq('walk-new') } };
        case 'POST /v1/admin/service-accounts':
          return { path, body: { name: uniq('walk-sa'), project: 'fraud', roles: ['viewer'] } };
        case 'POST /v1/admin/users/:id/deactivate':
          return { path: path.replace(':id', (await throwaway()).id) };
        case 'POST /v1/projects':
          return { path, body: { name: uniq('walk-proj') } };
        case 'POST /v1/projects/:p/bindings':
          return { path, body: { principal: `user:${(await throwaway()).username}`, role: 'viewer' } };
        case 'DELETE /v1/projects/:p/bindings/:id': {
          const b = await json<{ id: string }>(await w.admin.post('/v1/projects/fraud/bindings', { principal: `user:${(await throwaway()).username}`, role: 'viewer' }));
          return { path: path.replace(':id', b.id) };
        }
        case 'POST /v1/projects/:p/models':
          return { path, body: { name: uniq('walk-model') } };
        case 'POST /v1/projects/:p/models/:m/versions/:v/promote':
          return { path, body: { stage: 'staging' } };
        case 'PUT /v1/projects/:p/models/:m/versions/:v/artifacts/*':
          return { path, upload: 'bytes' };
        case 'PUT /v1/projects/:p/deployments/:d':
          return { path, body: { environment: 'dev', model: 'm-int', version: 1, config: {} } };
        case 'POST /v1/alerts/:id/acknowledge':
          return { path: path.replace(':id', 'alr_missing') };
        case 'GET /v1/me/permissions':
          return { path: `${path}?resource=version:fraud/m-int/1` };
        case 'GET /v1/audit/proofs/inclusion':
          return { path: `${path}?seq=1&treeSize=2` };
        case 'GET /v1/audit/proofs/consistency':
          return { path: `${path}?first=1&second=2` };
        default:
          return { path, ...(route.startsWith('POST') || route.startsWith('PUT') ? { body: {} } : {}) };
      }
    }

    async function send(c: Client, method: string, call: Call): Promise<Response> {
      if (call.upload !== undefined) return c.upload(call.path, call.upload);
      return c.req(method, call.path, call.body);
    }

    test('every registered route is declared auth-free, session-only, or produces a guard decision in the audit log', async () => {
      const routes = registeredRoutes(w.server.app);
      const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url));
      // HEAD is added by Fastify for every GET and runs the same handler.
      const walk = routes.filter((r) => !(r.method === 'HEAD' && gets.has(r.url))).map((r) => ({ ...r, key: `${r.method} ${r.url}` }));
      assert.ok(walk.length >= 35, `only ${walk.length} routes enumerated`);
      const authFree = walk.filter((r) => !r.auth).map((r) => r.key).sort();
      assert.deepEqual(authFree, Object.keys(AUTH_FREE).sort(), 'a route without authentication must be declared (and justified) in AUTH_FREE');

      const version = w.server.services.policyHolder.info().version;
      const k = w.server.services.db.kysely;
      const missing: string[] = [];
      let walked = 0;
      for (const r of walk) {
        if (!r.auth || SESSION_SELF[r.key]) continue;
        // Two callers: one the policies allow widely (platform-admin) and one they mostly deny (viewer).
        for (const caller of [w.admin, w.as.viewer]) {
          const call = await callFor(r.key);
          const res = await send(caller, r.method, call);
          await res.arrayBuffer();
          const requestId = res.headers.get('x-request-id');
          assert.ok(requestId, `${r.key}: no x-request-id`);
          assert.notEqual(res.status, 401, `${r.key}: the caller is signed in`);
          assert.ok(res.status < 500, `${r.key}: ${res.status}`);
          const decisions = await k
            .selectFrom('audit_events')
            .select(['action', 'outcome', 'policy_version'])
            .where('request_id', '=', requestId)
            .where('outcome', 'in', ['allow', 'deny'])
            .where('policy_version', '=', version)
            .execute();
          if (decisions.length === 0) missing.push(`${r.key} (${caller === w.admin ? 'admin' : 'viewer'} → ${res.status})`);
          walked++;
        }
      }
      assert.deepEqual(missing, [], 'these routes answered without a guard decision in the audit log');
      assert.ok(walked >= 50);
    });

    test('the declared session-only routes exist (a stale declaration fails)', () => {
      const keys = new Set(registeredRoutes(w.server.app).map((r) => `${r.method} ${r.url}`));
      for (const k of [...Object.keys(SESSION_SELF), ...Object.keys(AUTH_FREE)]) assert.ok(keys.has(k), k);
    });
  });
}

// MC-AZ-02 — function-level escalation. Every route of src/http/routes/*.ts (and app.ts)
// is called by every principal — each project role of `fraud`, a user with no role, the
// platform-admin and an anonymous caller — and the status must be the default role
// matrix's answer. A route added without a row here fails the coverage test (deny by
// default is only as good as its enumeration). Every denial is audited and changes nothing;
// a method swap on a path is a 404, never a state change.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BACKENDS, Client, json, markMfa, ROLES, type World, world } from '../helpers/server.ts';

type Role = (typeof ROLES)[number];
type Who = Role | 'outsider' | 'admin' | 'anonymous';
const WHO: readonly Who[] = [...ROLES, 'outsider', 'admin', 'anonymous'];
const EVERYONE_SIGNED_IN: readonly Who[] = [...ROLES, 'outsider', 'admin'];
const READERS: readonly Who[] = [...ROLES, 'admin'];
const WRITERS: readonly Who[] = ['data-scientist', 'ml-engineer'];

interface Req {
  path: string;
  body?: unknown;
  /** Raw bytes for an artifact upload. */
  upload?: string;
}

interface Case {
  /** `METHOD /route/pattern` exactly as registered. */
  route: string;
  what: string;
  /** Who succeeds; everyone else is denied. */
  allow: readonly Who[];
  ok: number;
  /** How a signed-in user with no role is denied: 404 under a project they cannot see, 403 for platform actions. */
  scope: 'project' | 'platform';
  /** Builds a fresh target for one attempt (so an allowed attempt never spoils the next one). */
  prepare: () => Promise<Req>;
  /** Each principal calls this route from a fresh session of its own (logout). */
  freshSession?: true;
  /** How a signed-in principal outside `allow` is refused, when not by the default rule (someone else's API key: 404). */
  denied?: number;
  /** The route ends every session of the caller (logout-all): the fixture's clients sign in again after it. */
  signInAgain?: true;
}

const M_INT = '/v1/projects/fraud/models/m-int';

/** A built console script (npm test builds the console before the tests run). */
function consoleAsset(): string {
  const dir = join(import.meta.dirname, '..', '..', 'dist', 'web', 'assets');
  const name = readdirSync(dir).find((f) => f.endsWith('.js'));
  assert.ok(name, 'the console is not built: run npm run build:web');
  return name;
}
const M_RES = '/v1/projects/fraud/models/m-res';

/** Routes as registered in the source: `METHOD /path`. */
function routesInSource(): string[] {
  const dir = join(import.meta.dirname, '..', '..', 'src', 'http');
  const files = [join(dir, 'app.ts'), ...readdirSync(join(dir, 'routes')).map((f) => join(dir, 'routes', f))];
  const out = new Set<string>();
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    for (const m of src.matchAll(/\b(?:app|scope|instance|fastify)\.(get|post|put|delete|patch|head|options|all)\b[^(]*\(\s*['"`]([^'"`]+)['"`]/g)) {
      out.add(`${(m[1] ?? '').toUpperCase()} ${m[2]}`);
    }
    assert.ok(!/\.route\(\s*\{/.test(src), `${f} registers a route with .route(): add it to this test's parser`);
  }
  return [...out].sort();
}

for (const backend of BACKENDS) {
  describe(`MC-AZ-02 function-level escalation (${backend})`, () => {
    let w: World;
    let anonymous: Client;
    let n = 0;
    const uniq = (prefix: string) => `${prefix}-${++n}`;
    const clientOf = (who: Who): Client => (who === 'admin' ? w.admin : who === 'anonymous' ? anonymous : w.as[who]);

    const must = async (r: Promise<Response>, status: number) => {
      const res = await r;
      assert.equal(res.status, status, `fixture: ${res.status} ${await res.clone().text()}`);
      return res;
    };
    const mle = () => w.as['ml-engineer'];
    const rm = () => w.as['release-manager'];

    /** A new draft version of `model` (optionally with an artifact); returns its path. */
    const draft = async (model = M_INT, withArtifact = true): Promise<string> => {
      const v = await json<{ version: number }>(await must(mle().post(`${model}/versions`, {}), 201));
      const path = `${model}/versions/${v.version}`;
      if (withArtifact) await must(mle().upload(`${path}/artifacts/model.bin`, `weights ${path}`), 201);
      return path;
    };
    const ready = async (model = M_INT): Promise<string> => {
      const path = await draft(model);
      await must(mle().post(`${path}/finalize`), 200);
      return path;
    };
    const inStage = async (stage: 'staging' | 'production'): Promise<string> => {
      const path = await ready();
      await must((stage === 'production' ? rm() : mle()).post(`${path}/promote`, { stage }), 200);
      return path;
    };
    /** A fresh pending device login (as the CLI would start it); its user code. */
    const userCode = async (): Promise<string> => {
      const r = await fetch(`${w.server.url}/oauth/device_authorization`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'client_id=modelkeep-cli' });
      return (await json<{ user_code: string }>(await must(Promise.resolve(r), 200))).user_code;
    };
    const throwawayUser = async (): Promise<{ id: string; username: string }> =>
      json<{ id: string; username: string }>(await must(w.admin.post('/v1/admin/users', { username: uniq('tmp-user') }), 201));

    const CASES: readonly Case[] = [
      // ---- app.ts
      { route: 'GET /healthz', what: 'health', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/healthz' }) },
      { route: 'GET /readyz', what: 'readiness', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/readyz' }) },
      // ---- auth.ts
      {
        route: 'POST /v1/auth/login',
        what: 'login',
        allow: WHO,
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/auth/login', body: { username: 'viewer', password: 'a long test password 1' } }),
      },
      { route: 'POST /v1/auth/logout', what: 'logout', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', freshSession: true, prepare: async () => ({ path: '/v1/auth/logout' }) },
      { route: 'GET /v1/auth/csrf', what: 'CSRF token of this console session', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/auth/csrf' }) },
      { route: 'GET /v1/me', what: 'me', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me' }) },
      // ---- webauthn.ts (each user acts on their own passkeys and session; the ceremonies
      // themselves are tested in test/http/passkeys.test.ts and MC-AUTHN-05/06)
      {
        route: 'POST /v1/me/passkeys/options',
        what: 'passkey registration options (fresh sign-in)',
        allow: EVERYONE_SIGNED_IN,
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/me/passkeys/options', body: {} }),
      },
      {
        route: 'POST /v1/me/passkeys',
        what: 'register a passkey (a response that does not verify: 422)',
        allow: EVERYONE_SIGNED_IN,
        ok: 422,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/me/passkeys', body: { name: 'key', response: { id: 'x' } } }),
      },
      { route: 'GET /v1/me/passkeys', what: 'list own passkeys', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/passkeys' }) },
      {
        route: 'DELETE /v1/me/passkeys/:id',
        what: 'remove a passkey (fresh MFA; an id that is not the caller’s: 404)',
        allow: EVERYONE_SIGNED_IN,
        ok: 404,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/me/passkeys/pk_none' }),
      },
      { route: 'POST /v1/auth/passkey/options', what: 'passkey login options', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/auth/passkey/options', body: {} }) },
      {
        route: 'POST /v1/auth/passkey',
        what: 'passkey login (an assertion that does not verify: 401)',
        allow: WHO,
        ok: 401,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/auth/passkey', body: { response: { id: 'x' } } }),
      },
      {
        route: 'POST /v1/auth/step-up/passkey/options',
        what: 'passkey step-up options',
        allow: EVERYONE_SIGNED_IN,
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/auth/step-up/passkey/options', body: {} }),
      },
      {
        route: 'POST /v1/auth/step-up/passkey',
        what: 'passkey step-up (an assertion that does not verify: 401)',
        allow: EVERYONE_SIGNED_IN,
        ok: 401,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/auth/step-up/passkey', body: { response: { id: 'x' } } }),
      },
      {
        route: 'POST /v1/auth/mfa/passkey/options',
        what: 'passkey as second factor: options (a pending login that does not exist: 401)',
        allow: WHO,
        ok: 401,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/auth/mfa/passkey/options', body: { mfaToken: 'not-a-pending-login' } }),
      },
      {
        route: 'POST /v1/auth/mfa/passkey',
        what: 'passkey as second factor (a pending login that does not exist: 401)',
        allow: WHO,
        ok: 401,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/auth/mfa/passkey', body: { mfaToken: 'not-a-pending-login', response: { id: 'x' } } }),
      },
      {
        route: 'POST /v1/auth/logout-all',
        what: 'logout everywhere',
        allow: EVERYONE_SIGNED_IN,
        ok: 200,
        scope: 'platform',
        freshSession: true,
        signInAgain: true,
        prepare: async () => ({ path: '/v1/auth/logout-all' }),
      },
      // The second-factor endpoints take no session: everyone reaches them, and a made-up mfaToken is refused (401).
      { route: 'POST /v1/auth/mfa/totp', what: 'second factor (TOTP)', allow: WHO, ok: 401, scope: 'platform', prepare: async () => ({ path: '/v1/auth/mfa/totp', body: { mfaToken: 'x'.repeat(43), code: '123456' } }) },
      { route: 'POST /v1/auth/mfa/recovery', what: 'second factor (recovery code)', allow: WHO, ok: 401, scope: 'platform', prepare: async () => ({ path: '/v1/auth/mfa/recovery', body: { mfaToken: 'x'.repeat(43), code: 'aaaa-bbbb-cccc-dddd' } }) },
      { route: 'POST /v1/auth/mfa/passkey/options', what: 'second factor (passkey options)', allow: WHO, ok: 401, scope: 'platform', prepare: async () => ({ path: '/v1/auth/mfa/passkey/options', body: { mfaToken: 'x'.repeat(43) } }) },
      { route: 'POST /v1/auth/mfa/passkey', what: 'second factor (passkey)', allow: WHO, ok: 401, scope: 'platform', prepare: async () => ({ path: '/v1/auth/mfa/passkey', body: { mfaToken: 'x'.repeat(43), response: {} } }) },
      // Step-up by a user without an authenticator: a signed-in caller reaches it and the code is refused (401 invalid_credentials).
      { route: 'POST /v1/auth/step-up/totp', what: 'step-up (TOTP)', allow: WHO, ok: 401, scope: 'platform', prepare: async () => ({ path: '/v1/auth/step-up/totp', body: { code: '123456' } }) },
      // Only the caller's own events are read (src/registry/notifications.ts).
      { route: 'GET /v1/me/notifications', what: 'my notifications', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/notifications' }) },
      { route: 'GET /v1/me/sessions', what: 'my sessions', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/sessions' }) },
      // Only one's own sessions can be ended: any other id is not found.
      { route: 'DELETE /v1/me/sessions/:id', what: 'end a session', allow: EVERYONE_SIGNED_IN, ok: 404, scope: 'platform', prepare: async () => ({ path: '/v1/me/sessions/ses_not_mine' }) },
      { route: 'GET /v1/me/mfa', what: 'my second factors', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/mfa' }) },
      { route: 'POST /v1/me/mfa/totp', what: 'start TOTP enrollment', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/mfa/totp' }) },
      { route: 'POST /v1/me/mfa/totp/confirm', what: 'confirm TOTP (wrong code)', allow: EVERYONE_SIGNED_IN, ok: 422, scope: 'platform', prepare: async () => ({ path: '/v1/me/mfa/totp/confirm', body: { code: '000000' } }) },
      { route: 'DELETE /v1/me/mfa/totp', what: 'remove TOTP (none confirmed)', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/mfa/totp' }) },
      { route: 'POST /v1/me/mfa/recovery-codes', what: 'new recovery codes (no authenticator)', allow: EVERYONE_SIGNED_IN, ok: 404, scope: 'platform', prepare: async () => ({ path: '/v1/me/mfa/recovery-codes' }) },
      {
        route: 'GET /v1/me/permissions',
        what: 'my permissions on a project',
        allow: READERS,
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: '/v1/me/permissions?resource=project:fraud' }),
      },
      // ---- admin.ts
      { route: 'POST /v1/admin/users', what: 'create user', allow: ['admin'], ok: 201, scope: 'platform', prepare: async () => ({ path: '/v1/admin/users', body: { username: uniq('new-user') } }) },
      { route: 'GET /v1/admin/users', what: 'list users', allow: ['admin'], ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/admin/users' }) },
      { route: 'GET /v1/admin/policies', what: 'active policy set', allow: ['admin'], ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/admin/policies' }) },
      {
        route: 'POST /v1/admin/policies/reload',
        what: 'hot-reload the policy set',
        allow: ['admin'],
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/admin/policies/reload' }),
      },
      {
        route: 'POST /v1/admin/users/:id/deactivate',
        what: 'deactivate user',
        allow: ['admin'],
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: `/v1/admin/users/${(await throwawayUser()).id}/deactivate` }),
      },
      // ---- registry.ts
      { route: 'POST /v1/projects', what: 'create project', allow: ['admin'], ok: 201, scope: 'platform', prepare: async () => ({ path: '/v1/projects', body: { name: uniq('proj') } }) },
      { route: 'GET /v1/projects', what: 'list projects', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/projects' }) },
      { route: 'GET /v1/projects/:p', what: 'read project', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: '/v1/projects/fraud' }) },
      {
        route: 'GET /v1/projects/:p/bindings',
        what: 'read bindings',
        allow: ['auditor', 'project-admin', 'admin'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: '/v1/projects/fraud/bindings' }),
      },
      {
        route: 'POST /v1/projects/:p/bindings',
        what: 'create binding',
        allow: ['project-admin', 'admin'],
        ok: 201,
        scope: 'project',
        prepare: async () => ({ path: '/v1/projects/fraud/bindings', body: { principal: `user:${(await throwawayUser()).username}`, role: 'viewer' } }),
      },
      {
        route: 'POST /v1/projects/:p/bindings',
        what: 'create time-boxed binding',
        allow: ['project-admin', 'admin'],
        ok: 201,
        scope: 'project',
        prepare: async () => ({
          path: '/v1/projects/fraud/bindings',
          body: { principal: `user:${(await throwawayUser()).username}`, role: 'auditor', expiresAt: new Date(Date.now() + 24 * 3600_000).toISOString() },
        }),
      },
      {
        route: 'DELETE /v1/projects/:p/bindings/:id',
        what: 'delete binding',
        allow: ['project-admin', 'admin'],
        ok: 204,
        scope: 'project',
        prepare: async () => {
          const u = await throwawayUser();
          const b = await json<{ id: string }>(await must(w.admin.post('/v1/projects/fraud/bindings', { principal: `user:${u.username}`, role: 'viewer' }), 201));
          return { path: `/v1/projects/fraud/bindings/${b.id}` };
        },
      },
      { route: 'POST /v1/projects/:p/models', what: 'create model', allow: WRITERS, ok: 201, scope: 'project', prepare: async () => ({ path: '/v1/projects/fraud/models', body: { name: uniq('model') } }) },
      { route: 'GET /v1/projects/:p/models', what: 'list models', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: '/v1/projects/fraud/models' }) },
      { route: 'GET /v1/projects/:p/models/:m', what: 'read internal model', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: M_INT }) },
      { route: 'GET /v1/projects/:p/models/:m', what: 'read restricted model', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: M_RES }) },
      { route: 'POST /v1/projects/:p/models/:m/versions', what: 'create version', allow: WRITERS, ok: 201, scope: 'project', prepare: async () => ({ path: `${M_INT}/versions`, body: {} }) },
      { route: 'GET /v1/projects/:p/models/:m/versions', what: 'list versions', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: `${M_RES}/versions` }) },
      { route: 'GET /v1/projects/:p/models/:m/versions/:v', what: 'read version', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: `${M_RES}/versions/1` }) },
      {
        route: 'POST /v1/projects/:p/models/:m/versions/:v/finalize',
        what: 'finalize',
        allow: WRITERS,
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${await draft()}/finalize` }),
      },
      {
        route: 'POST /v1/projects/:p/models/:m/versions/:v/promote',
        what: 'promote to staging',
        allow: ['ml-engineer', 'release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${await ready()}/promote`, body: { stage: 'staging' } }),
      },
      {
        route: 'POST /v1/projects/:p/models/:m/versions/:v/promote',
        what: 'promote to production',
        allow: ['release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${await inStage('staging')}/promote`, body: { stage: 'production' } }),
      },
      {
        route: 'POST /v1/projects/:p/models/:m/versions/:v/promote',
        what: 'archive a production version',
        allow: ['release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${await inStage('production')}/promote`, body: { stage: 'archived' } }),
      },
      {
        route: 'POST /v1/projects/:p/models/:m/versions/:v/promote',
        what: 'demote a production version to staging',
        allow: ['release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${await inStage('production')}/promote`, body: { stage: 'staging' } }),
      },
      {
        route: 'POST /v1/projects/:p/models/:m/versions/:v/promote',
        what: 'archive a staging version',
        allow: ['ml-engineer', 'release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${await inStage('staging')}/promote`, body: { stage: 'archived' } }),
      },
      // ---- artifacts.ts
      {
        route: 'PUT /v1/projects/:p/models/:m/versions/:v/artifacts/*',
        what: 'upload artifact',
        allow: WRITERS,
        ok: 201,
        scope: 'project',
        prepare: async () => ({ path: `${await draft(M_INT, false)}/artifacts/weights.bin`, upload: 'uploaded weights' }),
      },
      {
        route: 'GET /v1/projects/:p/models/:m/versions/:v/artifacts/*',
        what: 'download internal artifact',
        allow: ['data-scientist', 'ml-engineer', 'release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${M_INT}/versions/1/artifacts/model.bin` }),
      },
      {
        route: 'GET /v1/projects/:p/models/:m/versions/:v/artifacts/*',
        what: 'download restricted artifact',
        allow: ['ml-engineer', 'release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `${M_RES}/versions/1/artifacts/model.bin` }),
      },
      // ---- operations.ts
      {
        route: 'PUT /v1/projects/:p/deployments/:d',
        what: 'deploy to dev',
        allow: ['ml-engineer', 'release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `/v1/projects/fraud/deployments/${uniq('dep')}`, body: { environment: 'dev', model: 'm-int', version: 1, config: {} } }),
      },
      {
        route: 'PUT /v1/projects/:p/deployments/:d',
        what: 'deploy to staging',
        allow: ['ml-engineer', 'release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `/v1/projects/fraud/deployments/${uniq('dep')}`, body: { environment: 'staging', model: 'm-int', version: 1, config: {} } }),
      },
      {
        route: 'PUT /v1/projects/:p/deployments/:d',
        what: 'deploy to production',
        allow: ['release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: `/v1/projects/fraud/deployments/${uniq('dep')}`, body: { environment: 'production', model: 'm-int', version: 1, config: {} } }),
      },
      {
        route: 'PUT /v1/projects/:p/deployments/:d',
        what: 'move a production deployment to dev',
        allow: ['release-manager'],
        ok: 200,
        scope: 'project',
        prepare: async () => {
          const path = `/v1/projects/fraud/deployments/${uniq('dep')}`;
          await must(rm().put(path, { environment: 'production', model: 'm-int', version: 1, config: {} }), 200);
          return { path, body: { environment: 'dev', model: 'm-int', version: 1, config: {} } };
        },
      },
      { route: 'GET /v1/projects/:p/deployments', what: 'list deployments', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: '/v1/projects/fraud/deployments' }) },
      { route: 'GET /v1/projects/:p/deployments/:d', what: 'read deployment', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: '/v1/projects/fraud/deployments/dep' }) },
      {
        route: 'POST /v1/projects/:p/pipelines/:name/runs',
        what: 'trigger retraining',
        allow: WRITERS,
        ok: 202,
        scope: 'project',
        prepare: async () => ({ path: '/v1/projects/fraud/pipelines/pipe/runs', body: { parameters: { epochs: 1 } } }),
      },
      { route: 'GET /v1/projects/:p/pipelines/:name/runs', what: 'list runs', allow: READERS, ok: 200, scope: 'project', prepare: async () => ({ path: '/v1/projects/fraud/pipelines/pipe/runs' }) },
      {
        route: 'GET /v1/audit/events',
        what: 'read audit events',
        allow: ['auditor', 'project-admin', 'admin'],
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/audit/events' }),
      },
      {
        route: 'GET /v1/audit/events',
        what: 'read project audit events',
        allow: ['auditor', 'project-admin', 'admin'],
        ok: 200,
        scope: 'project',
        prepare: async () => ({ path: '/v1/audit/events?project=fraud' }),
      },
      // Signed tree heads and the public key are public, like a transparency log's.
      { route: 'GET /v1/audit/tree-head', what: 'latest signed tree head', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/audit/tree-head' }) },
      { route: 'GET /v1/audit/tree-heads', what: 'all signed tree heads', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/audit/tree-heads' }) },
      { route: 'GET /v1/audit/public-key', what: 'tree-head public key', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/audit/public-key' }) },
      {
        route: 'GET /v1/audit/proofs/inclusion',
        what: 'inclusion proof',
        allow: ['auditor', 'project-admin', 'admin'],
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/audit/proofs/inclusion?seq=1&treeSize=2' }),
      },
      {
        route: 'GET /v1/audit/proofs/consistency',
        what: 'consistency proof',
        allow: ['auditor', 'project-admin', 'admin'],
        ok: 200,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/audit/proofs/consistency?first=1&second=2' }),
      },
      // Alerts of project fraud: its auditor and project-admin, and the platform-admin.
      { route: 'GET /v1/alerts', what: 'list alerts', allow: ['auditor', 'project-admin', 'admin'], ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/alerts' }) },
      {
        route: 'POST /v1/alerts/:id/acknowledge',
        what: 'acknowledge an alert',
        allow: ['auditor', 'project-admin', 'admin'],
        ok: 200,
        scope: 'platform',
        prepare: async () => {
          const s = w.server.services;
          const fraud = await s.db.kysely.selectFrom('projects').select('id').where('name', '=', 'fraud').executeTakeFirstOrThrow();
          const now = new Date().toISOString();
          const a = await s.alerts.raise({ rule: 'test', severity: 'low', eventTime: now, projectId: fraud.id, summary: 'MC-AZ-02 fixture' }, new Date());
          return { path: `/v1/alerts/${a.id}/acknowledge` };
        },
      },
      // ---- oauth.ts: public metadata; the OAuth endpoints take forms only, so the JSON client gets invalid_request (400) whoever it is
      { route: 'GET /.well-known/oauth-authorization-server', what: 'RFC 8414 metadata', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/.well-known/oauth-authorization-server' }) },
      { route: 'GET /.well-known/jwks.json', what: 'token signing keys', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/.well-known/jwks.json' }) },
      { route: 'POST /oauth/token', what: 'token endpoint (JSON refused)', allow: WHO, ok: 400, scope: 'platform', prepare: async () => ({ path: '/oauth/token', body: { grant_type: 'refresh_token' } }) },
      { route: 'POST /oauth/device_authorization', what: 'device authorization (JSON refused)', allow: WHO, ok: 400, scope: 'platform', prepare: async () => ({ path: '/oauth/device_authorization', body: { client_id: 'modelkeep-cli' } }) },
      { route: 'POST /oauth/revoke', what: 'revocation (JSON refused)', allow: WHO, ok: 400, scope: 'platform', prepare: async () => ({ path: '/oauth/revoke', body: { token: 'x' } }) },
      // ---- api-keys.ts
      {
        route: 'POST /v1/me/api-keys',
        what: 'create own API key',
        allow: EVERYONE_SIGNED_IN,
        ok: 201,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/me/api-keys', body: { name: uniq('key'), scopes: ['read'], expiresInDays: 1 } }),
      },
      { route: 'GET /v1/me/api-keys', what: 'list own API keys', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/me/api-keys' }) },
      {
        route: 'DELETE /v1/me/api-keys/:id',
        what: "delete an API key (the viewer's)",
        allow: ['viewer'],
        ok: 204,
        denied: 404,
        scope: 'platform',
        prepare: async () => {
          const k = await json<{ id: string }>(await must(w.as.viewer.post('/v1/me/api-keys', { name: uniq('key'), scopes: ['read'], expiresInDays: 1 }), 201));
          return { path: `/v1/me/api-keys/${k.id}` };
        },
      },
      { route: 'GET /v1/auth/device', what: 'pending device login details', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: `/v1/auth/device?userCode=${await userCode()}` }) },
      { route: 'POST /v1/auth/device/approve', what: 'approve a device login', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/auth/device/approve', body: { userCode: await userCode() } }) },
      { route: 'POST /v1/auth/device/deny', what: 'deny a device login', allow: EVERYONE_SIGNED_IN, ok: 200, scope: 'platform', prepare: async () => ({ path: '/v1/auth/device/deny', body: { userCode: await userCode() } }) },
      {
        route: 'POST /v1/admin/service-accounts',
        what: 'create service account',
        allow: ['admin'],
        ok: 201,
        scope: 'platform',
        prepare: async () => ({ path: '/v1/admin/service-accounts', body: { name: uniq('svc'), project: 'fraud', roles: ['viewer'] } }),
      },
      // Not a guard route: a scraper's bearer token (metrics.token) opens it, and without one
      // configured it does not exist for anyone (test/audit/detectors.test.ts covers the token).
      // ---- console.ts: the console's static files are public (they hold no data; the API checks every call).
      { route: 'GET /', what: 'console page', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/' }) },
      { route: 'GET /device', what: 'console device-approval page', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: '/device' }) },
      { route: 'GET /assets/*', what: 'console asset', allow: WHO, ok: 200, scope: 'platform', prepare: async () => ({ path: `/assets/${consoleAsset()}` }) },
      { route: 'GET /metrics', what: 'Prometheus metrics, unconfigured', allow: WHO, ok: 404, scope: 'platform', prepare: async () => ({ path: '/metrics' }) },
    ];

    const methodOf = (c: Case) => c.route.slice(0, c.route.indexOf(' '));

    const send = (client: Client, method: string, r: Req): Promise<Response> => {
      if (r.upload !== undefined) return client.upload(r.path, r.upload);
      return client.req(method, r.path, r.body);
    };

    const auditOf = (requestId: string) =>
      w.server.services.db.kysely.selectFrom('audit_events').select(['action', 'outcome']).where('request_id', '=', requestId).execute();

    before(async () => {
      w = await world(backend);
      anonymous = new Client(w.server.url);
      await must(mle().post('/v1/projects/fraud/models', { name: 'm-int' }), 201);
      await must(mle().post('/v1/projects/fraud/models', { name: 'm-res', sensitivity: 'restricted' }), 201);
      await ready(M_INT); // m-int@1
      await ready(M_RES); // m-res@1
      await must(rm().post(`${M_INT}/versions/1/promote`, { stage: 'production' }), 200);
      await must(mle().put('/v1/projects/fraud/deployments/dep', { environment: 'dev', model: 'm-int', version: 1, config: {} }), 200);
      await must(w.as['data-scientist'].post('/v1/projects/fraud/pipelines/pipe/runs', {}), 202);
    });
    after(() => w.server.close());

    test('the table covers every route the server registers (a new route needs a row)', () => {
      const inTable = new Set(CASES.map((c) => c.route));
      const missing = routesInSource().filter((r) => !inTable.has(r));
      assert.deepEqual(missing, [], 'routes without a row in this table');
      for (const route of inTable) {
        const [method = '', url = ''] = route.split(' ');
        assert.ok(w.server.app.hasRoute({ method: method as 'GET', url }), `${route} is not a route of the server`);
      }
    });

    for (const c of CASES) {
      test(`${c.route} (${c.what}) answers each principal as the role matrix says`, async () => {
        const method = methodOf(c);
        const problems: string[] = [];
        for (const who of WHO) {
          const r = await c.prepare();
          const client = c.freshSession && who !== 'anonymous' ? await w.client(who) : clientOf(who);
          const res = await send(client, method, r);
          const allowed = c.allow.includes(who);
          const expected = allowed ? c.ok : who === 'anonymous' ? 401 : (c.denied ?? (who === 'outsider' && c.scope === 'project' ? 404 : 403));
          const text = await res.text();
          if (res.status !== expected) {
            problems.push(`${who}: expected ${expected}, got ${res.status} ${text.slice(0, 160)}`);
            continue;
          }
          if (!allowed) {
            const code = (JSON.parse(text) as { error: { code: string } }).error.code;
            const want = expected === 401 ? 'unauthenticated' : expected === 404 ? 'not_found' : 'forbidden';
            if (code !== want) problems.push(`${who}: expected code ${want}, got ${code}`);
            if (who !== 'anonymous') {
              // A denial is recorded, and nothing succeeded under its request id.
              const events = await auditOf(res.headers.get('x-request-id') ?? '');
              if (!events.some((e) => e.outcome === 'deny')) problems.push(`${who}: the denial is not in the audit log`);
              const done = events.filter((e) => e.outcome === 'success');
              if (done.length > 0) problems.push(`${who}: denied yet recorded ${done.map((e) => e.action).join(', ')} as done`);
            }
          }
        }
        if (c.signInAgain) {
          // Signed in again like the fixture: password, then a second factor in the session.
          for (const role of [...ROLES, 'outsider'] as const) {
            await w.as[role].login(role);
            await markMfa(w.server, role);
          }
          await w.admin.login('admin');
          await markMfa(w.server, 'admin');
        }
        assert.deepEqual(problems, []);
      });
    }

    test('the named escalations are refused and leave the state as it was', async () => {
      // viewer → production; data-scientist → staging; ml-engineer → production; platform-admin → any stage.
      for (const [who, stage] of [
        ['viewer', 'production'],
        ['data-scientist', 'staging'],
        ['ml-engineer', 'production'],
        ['admin', 'staging'],
        ['admin', 'production'],
      ] as const) {
        const v = await inStage('staging');
        const before0 = (await json<{ stage: string }>(await mle().get(v))).stage;
        const r = await clientOf(who).post(`${v}/promote`, { stage });
        assert.equal(r.status, 403, `${who} → ${stage}`);
        assert.equal((await json<{ stage: string }>(await mle().get(v))).stage, before0, `${who} changed the stage`);
      }
      // ml-engineer deploys to production (with a version that is in production).
      const dep = await mle().put('/v1/projects/fraud/deployments/mle-prod', { environment: 'production', model: 'm-int', version: 1, config: {} });
      assert.equal(dep.status, 403);
      assert.equal((await mle().get('/v1/projects/fraud/deployments/mle-prod')).status, 404);
      // auditor and platform-admin download.
      for (const who of ['auditor', 'admin'] as const) {
        const r = await clientOf(who).get(`${M_INT}/versions/1/artifacts/model.bin`);
        assert.equal(r.status, 403, who);
        assert.ok(!(await r.text()).includes('weights'), `${who} received artifact bytes`);
      }
      // non-admins create users or projects.
      for (const who of [...ROLES, 'outsider'] as const) {
        const u = await clientOf(who).post('/v1/admin/users', { username: `by-${who}` });
        assert.equal(u.status, 403, `${who} created a user`);
        const p = await clientOf(who).post('/v1/projects', { name: `by-${who}` });
        assert.equal(p.status, 403, `${who} created a project`);
      }
      const users = (await json<{ users: { username: string }[] }>(await w.admin.get('/v1/admin/users'))).users.map((u) => u.username);
      const projects = (await json<{ projects: { name: string }[] }>(await w.admin.get('/v1/projects'))).projects.map((p) => p.name);
      assert.deepEqual(
        users.filter((u) => u.startsWith('by-')),
        [],
      );
      assert.deepEqual(
        projects.filter((p) => p.startsWith('by-')),
        [],
      );
    });

    test('a method swap on a path is a 404 and never a state change', async () => {
      const d = await draft();
      const swaps: [string, string, unknown?][] = [
        ['DELETE', '/v1/projects/fraud'],
        ['PUT', '/v1/projects/fraud', { description: 'renamed' }],
        ['PATCH', '/v1/projects/fraud', { description: 'renamed' }],
        ['DELETE', M_INT],
        ['PATCH', M_RES, { sensitivity: 'internal' }],
        ['PUT', M_RES, { sensitivity: 'internal' }],
        ['DELETE', `${M_INT}/versions/1`],
        ['PUT', `${M_INT}/versions/1`, { stage: 'archived' }],
        ['PATCH', `${M_INT}/versions/1`, { stage: 'archived' }],
        ['DELETE', `${M_INT}/versions/1/artifacts/model.bin`],
        ['POST', `${M_INT}/versions/1/artifacts/model.bin`, { replace: true }],
        ['GET', `${d}/finalize`],
        ['GET', `${M_INT}/versions/1/promote?stage=archived`],
        ['PUT', `${M_INT}/versions/1/promote`, { stage: 'archived' }],
        ['DELETE', '/v1/projects/fraud/deployments/dep'],
        ['POST', '/v1/projects/fraud/deployments/dep', { environment: 'production', model: 'm-int', version: 1, config: {} }],
        ['DELETE', '/v1/projects/fraud/pipelines/pipe/runs'],
        ['DELETE', '/v1/projects/fraud/bindings'],
        ['DELETE', '/v1/admin/users'],
        ['DELETE', '/v1/audit/events'],
        ['DELETE', '/v1/projects'],
      ];
      const snapshot = async () => ({
        project: await json(await w.admin.get('/v1/projects/fraud')),
        projects: await json(await w.admin.get('/v1/projects')),
        models: await json(await mle().get('/v1/projects/fraud/models')),
        versions: await json(await mle().get(`${M_INT}/versions`)),
        restricted: await json(await mle().get(`${M_RES}/versions`)),
        deployments: await json(await mle().get('/v1/projects/fraud/deployments')),
        runs: await json(await mle().get('/v1/projects/fraud/pipelines/pipe/runs')),
        bindings: await json(await w.admin.get('/v1/projects/fraud/bindings')),
        users: await json(await w.admin.get('/v1/admin/users')),
      });
      const before0 = await snapshot();
      for (const who of ['ml-engineer', 'release-manager', 'project-admin', 'admin'] as const) {
        for (const [method, path, body] of swaps) {
          const r = await clientOf(who).req(method, path, body);
          assert.equal(r.status, 404, `${who} ${method} ${path}`);
          assert.equal((await json<{ error: { code: string } }>(r)).error.code, 'not_found');
        }
        // The method-override headers some frameworks honour change nothing here.
        for (const header of ['x-http-method-override', 'x-http-method', 'x-method-override']) {
          const r = await clientOf(who).req('POST', M_INT, {}, { [header]: 'DELETE' });
          assert.equal(r.status, 404, `${who} POST ${M_INT} with ${header}: DELETE`);
        }
      }
      assert.deepEqual(await snapshot(), before0);
    });
  });
}

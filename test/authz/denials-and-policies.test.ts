// Explainable, non-leaking denials and the policy set as code, over real HTTP:
// - a 403 names the requirement that failed (role, scope, guardrail) with a hint; a
//   resource the caller cannot read is a 404 without any hint;
// - production changes and restricted downloads without a fresh second factor answer
//   428 mfa_required with the step-up hint, and succeed once the second factor is fresh;
// - GET /v1/me/permissions mirrors the server's answers;
// - GET /v1/admin/policies, POST /v1/admin/policies/reload and SIGHUP: a typo'd set is
//   refused (file and line named) while the old set keeps deciding; a good set takes
//   effect at once (the decision cache is flushed) and decisions carry its version;
//   both outcomes are audited as policy.reload;
// - the real `modelkeep serve --policies DIR` refuses to start on a typo'd set.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ManualClock } from '../../src/core/index.ts';
import { DEFAULT_POLICIES_DIR, reloadPoliciesOnSighup } from '../../src/main.ts';
import { BACKENDS, json, markMfa, startTestServer, type World, world } from '../helpers/server.ts';

const BIN = fileURLToPath(new URL('../../bin/modelkeep', import.meta.url));
const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

function policyCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'mk-policies-'));
  temps.push(dir);
  for (const f of readdirSync(DEFAULT_POLICIES_DIR)) if (f.endsWith('.cedar') || f.endsWith('.cedarschema')) cpSync(join(DEFAULT_POLICIES_DIR, f), join(dir, f));
  return dir;
}

/** read.cedar with `permit` misspelt on its 3rd line. */
function typo(dir: string): void {
  const text = readFileSync(join(dir, 'read.cedar'), 'utf8');
  assert.ok(text.split('\n')[2]?.startsWith('permit ('), 'fixture: read.cedar line 3 starts the policy');
  writeFileSync(join(dir, 'read.cedar'), text.replace('permit (', 'permitt ('));
}

interface ErrorBody {
  error: { code: string; message: string; hint?: string };
}
interface AuditEvent {
  action: string;
  outcome: string;
  resource: string;
  reason: string | null;
  policyVersion: string | null;
  details: Record<string, unknown>;
}
const M_INT = '/v1/projects/fraud/models/m-int';
const M_RES = '/v1/projects/fraud/models/m-res';

for (const backend of BACKENDS) {
  describe(`denials, step-up and policy reload (${backend})`, () => {
    let w: World;
    let dir: string;
    const clock = new ManualClock(Date.now());
    const events = async (q: string) => (await json<{ events: AuditEvent[] }>(await w.admin.get(`/v1/audit/events?${q}&limit=1000`))).events;

    before(async () => {
      dir = policyCopy();
      w = await world(backend, { config: { policiesDir: dir }, clock });
      const mle = w.as['ml-engineer'];
      for (const [name, sensitivity] of [
        ['m-int', 'internal'],
        ['m-res', 'restricted'],
      ] as const) {
        assert.equal((await mle.post('/v1/projects/fraud/models', { name, sensitivity })).status, 201);
        const base = `/v1/projects/fraud/models/${name}/versions`;
        for (let v = 1; v <= 3; v++) {
          assert.equal((await mle.post(base, {})).status, 201);
          assert.equal((await mle.upload(`${base}/${v}/artifacts/model.bin`, `weights ${name} ${v}`)).status, 201);
          assert.equal((await mle.post(`${base}/${v}/finalize`)).status, 200);
        }
      }
    });
    after(() => w.server.close());

    test('403 names the role needed and how to ask for it; the audit log has the same reason', async () => {
      const r = await w.as.viewer.post(`${M_INT}/versions/1/promote`, { stage: 'staging' });
      assert.equal(r.status, 403);
      const body = await json<ErrorBody>(r);
      assert.equal(body.error.code, 'forbidden');
      assert.match(body.error.message, /ml-engineer, release-manager in project fraud/);
      assert.equal(body.error.hint, 'ask a project-admin of fraud for ml-engineer or release-manager, or request just-in-time access');
      const denied = (await events('action=version:promote&outcome=deny')).filter((e) => e.resource === 'version:fraud/m-int@1');
      assert.ok(denied.some((e) => e.reason?.includes('ml-engineer, release-manager') && e.policyVersion === w.server.services.policyHolder.info().version));
    });

    test('guardrails name themselves: no self-binding, no platform-admin through the API', async () => {
      const me = await w.as['project-admin'].post('/v1/projects/fraud/bindings', { principal: 'user:project-admin', role: 'viewer' });
      assert.equal(me.status, 403);
      assert.match((await json<ErrorBody>(me)).error.message, /nobody may change their own role bindings/);
    });

    test('a resource the caller cannot read is 404 with no hint, exactly like a missing one', async () => {
      const hidden = await w.as.outsider.post(`${M_INT}/versions/1/promote`, { stage: 'staging' });
      const missing = await w.as.outsider.post('/v1/projects/nope/models/m-int/versions/1/promote', { stage: 'staging' });
      assert.equal(hidden.status, 404);
      assert.equal(missing.status, 404);
      const a = await json<ErrorBody>(hidden);
      const b = await json<ErrorBody>(missing);
      assert.equal(a.error.hint, undefined);
      assert.deepEqual({ code: a.error.code, message: a.error.message }, { code: b.error.code, message: b.error.message });
    });

    test('production promotion without a second factor: 428 with the step-up hint; with a fresh one: allowed; 16 minutes later: 428 again', async () => {
      const rm = await w.passwordOnly('release-manager');
      const r = await rm.post(`${M_INT}/versions/1/promote`, { stage: 'production' });
      assert.equal(r.status, 428);
      const body = await json<ErrorBody>(r);
      assert.equal(body.error.code, 'mfa_required');
      assert.match(body.error.message, /no second factor/);
      assert.match(body.error.hint ?? '', /POST \/v1\/auth\/step-up\/totp/);
      await markMfa(w.server, 'release-manager');
      assert.equal((await rm.post(`${M_INT}/versions/1/promote`, { stage: 'production' })).status, 200);
      clock.advance(16 * 60_000);
      const stale = await rm.post(`${M_INT}/versions/2/promote`, { stage: 'production' });
      assert.equal(stale.status, 428);
      assert.match((await json<ErrorBody>(stale)).error.message, /older than 15 minutes/);
      // A role the caller lacks is not hidden behind the step-up: ml-engineer gets 403, not 428.
      const mle = await w.passwordOnly('ml-engineer');
      const wrongRole = await mle.post(`${M_INT}/versions/2/promote`, { stage: 'production' });
      assert.equal(wrongRole.status, 403);
      assert.match((await json<ErrorBody>(wrongRole)).error.message, /the release-manager role/);
      await markMfa(w.server, 'release-manager');
      await markMfa(w.server, 'ml-engineer');
    });

    test('restricted artifacts: a password-only session gets 428, an MFA session downloads', async () => {
      const ds = await w.passwordOnly('ml-engineer');
      const path = `${M_RES}/versions/1/artifacts/model.bin`;
      const r = await ds.get(path);
      assert.equal(r.status, 428);
      assert.equal((await json<ErrorBody>(r)).error.code, 'mfa_required');
      const internal = await ds.get(`${M_INT}/versions/1/artifacts/model.bin`);
      assert.equal(internal.status, 200, 'internal artifacts need no second factor');
      await internal.arrayBuffer();
      await markMfa(w.server, 'ml-engineer');
      const ok = await ds.get(path);
      assert.equal(ok.status, 200);
      await ok.arrayBuffer();
    });

    test('GET /v1/me/permissions mirrors the server: allowed, denied with reason and hint, 428-able; 404 when unreadable', async () => {
      type Perms = { resource: string; actions: Record<string, { allowed: boolean; reason?: string; hint?: string; mfaRequired?: boolean }> };
      const v = await json<Perms>(await w.as.viewer.get('/v1/me/permissions?resource=version:fraud/m-int/3'));
      assert.equal(v.resource, 'version:fraud/m-int/3');
      assert.deepEqual(v.actions['version:read'], { allowed: true });
      assert.equal(v.actions['artifact:download']?.allowed, false);
      assert.match(v.actions['artifact:download']?.reason ?? '', /data-scientist, ml-engineer, release-manager/);
      assert.match(v.actions['artifact:download']?.hint ?? '', /ask a project-admin of fraud/);
      const rm = await w.passwordOnly('release-manager');
      const r = await json<Perms>(await rm.get('/v1/me/permissions?resource=version:fraud/m-int/3'));
      assert.equal(r.actions['version:promote']?.allowed, false);
      assert.equal(r.actions['version:promote']?.mfaRequired, true);
      assert.deepEqual(r.actions['version:promote:staging'], { allowed: true });
      // What the page says is what the action answers.
      assert.equal((await rm.post(`${M_INT}/versions/3/promote`, { stage: 'production' })).status, 428);
      await markMfa(w.server, 'release-manager');
      for (const q of ['project:fraud', 'model:fraud/m-int', 'deployment:fraud/none', 'pipeline:fraud/train']) {
        const hidden = await w.as.outsider.get(`/v1/me/permissions?resource=${q}`);
        assert.equal(hidden.status, 404, q);
        assert.equal((await json<ErrorBody>(hidden)).error.hint, undefined);
      }
      assert.equal((await w.as.viewer.get('/v1/me/permissions?resource=model:fraud/nope')).status, 404);
      assert.equal((await w.as.viewer.get('/v1/me/permissions?resource=deployment:fraud/nope')).status, 404);
      assert.equal((await w.as.viewer.get('/v1/me/permissions?resource=artifact:fraud/m-int/1')).status, 422);
      // Binding management needs a fresh second factor too: stale first, then after a step-up.
      const stale = await json<Perms>(await w.passwordOnly('project-admin').then((c) => c.get('/v1/me/permissions?resource=project:fraud')));
      assert.equal(stale.actions['binding:manage']?.mfaRequired, true);
      await markMfa(w.server, 'project-admin');
      const p = await json<Perms>(await w.as['project-admin'].get('/v1/me/permissions?resource=project:fraud'));
      assert.deepEqual(p.actions['binding:manage'], { allowed: true });
      assert.equal(p.actions['model:create']?.allowed, false);
    });

    test('GET /v1/admin/policies: files, version and load time for platform-admins only', async () => {
      const info = await json<{ engine: string; version: string; files: string[]; loadedAt: string }>(await w.admin.get('/v1/admin/policies'));
      assert.equal(info.engine, 'cedar');
      assert.match(info.version, /^[0-9a-f]{64}$/);
      assert.ok(info.files.includes('guardrails.cedar') && info.files.includes('schema.cedarschema'));
      assert.ok(!Number.isNaN(Date.parse(info.loadedAt)));
      assert.equal((await w.as['project-admin'].get('/v1/admin/policies')).status, 403);
      assert.equal((await w.as['project-admin'].post('/v1/admin/policies/reload')).status, 403);
    });

    test('reload: a typo is refused naming file and line, the old set keeps deciding; a good set takes effect at once', async () => {
      const before = w.server.services.policyHolder.info().version;
      const dl = `${M_INT}/versions/1/artifacts/model.bin`;
      assert.equal((await w.as.viewer.get(dl)).status, 403, 'viewers may not download under the default set');
      typo(dir);
      const refused = await w.admin.post('/v1/admin/policies/reload');
      assert.equal(refused.status, 422);
      const msg = (await json<ErrorBody>(refused)).error.message;
      assert.match(msg, /read\.cedar:3:\d+:/);
      assert.equal(w.server.services.policyHolder.info().version, before);
      assert.equal((await w.as.viewer.get('/v1/projects/fraud/models/m-int')).status, 200, 'the old set still decides');
      // Fix the typo and add a rule: viewers may download internal artifacts.
      writeFileSync(join(dir, 'read.cedar'), readFileSync(join(DEFAULT_POLICIES_DIR, 'read.cedar'), 'utf8'));
      writeFileSync(
        join(dir, 'viewer-download.cedar'),
        '@id("viewer-download")\npermit (principal, action == Modelkeep::Action::"artifact:download", resource)\nwhen { resource.sensitivity != "restricted" && principal in resource.project.roles["viewer"] };\n',
      );
      const ok = await w.admin.post('/v1/admin/policies/reload');
      assert.equal(ok.status, 200);
      const info = await json<{ version: string; changed: boolean; files: string[] }>(ok);
      assert.equal(info.changed, true);
      assert.notEqual(info.version, before);
      assert.ok(info.files.includes('viewer-download.cedar'));
      const now = await w.as.viewer.get(dl);
      assert.equal(now.status, 200, 'the cached denial was flushed by the reload');
      await now.arrayBuffer();
      const allowed = (await events('action=artifact:download&outcome=allow')).filter((e) => e.resource === 'artifact:fraud/m-int@1/model.bin');
      assert.equal(allowed.at(-1)?.policyVersion, info.version, 'decisions carry the new version');
      const reloads = await events('action=policy.reload');
      assert.deepEqual(
        reloads.slice(-2).map((e) => e.outcome),
        ['failure', 'success'],
      );
      assert.ok(JSON.stringify(reloads.at(-2)?.details).includes('read.cedar:3'));
      rmSync(join(dir, 'viewer-download.cedar'));
    });

    test('SIGHUP reloads the folder and is audited', async () => {
      const lines: string[] = [];
      const done = new Promise<void>((resolve) => {
        const stop = reloadPoliciesOnSighup(w.server, (line) => {
          lines.push(line);
          stop();
          resolve();
        });
      });
      process.emit('SIGHUP', 'SIGHUP');
      await done;
      assert.match(lines[0] ?? '', /policies reloaded from/);
      assert.equal(w.server.services.policyHolder.info().files.includes('viewer-download.cedar'), false);
      assert.equal((await w.as.viewer.get(`${M_INT}/versions/1/artifacts/model.bin`)).status, 403);
      const last = (await events('action=policy.reload')).at(-1);
      assert.equal(last?.outcome, 'success');
    });
  });
}

describe('a typo in the policy set stops the start', () => {
  test('startServer refuses with the file and line named', async () => {
    const dir = policyCopy();
    typo(dir);
    await assert.rejects(startTestServer('sqlite', { config: { policiesDir: dir } }), (err: Error) => /read\.cedar:3:\d+:/.test(err.message));
  });

  test('modelkeep serve --policies DIR exits non-zero and says why', async () => {
    const dir = policyCopy();
    typo(dir);
    const data = mkdtempSync(join(tmpdir(), 'mk-serve-'));
    temps.push(data);
    const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', data, '--policies', dir, '--port', '0', '--log-level', 'silent'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, MODELKEEP_CONFIG_DIR: data },
    });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.notEqual(code, 0);
    assert.match(stderr, /read\.cedar:3:\d+:/);
  });
});

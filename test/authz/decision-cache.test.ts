// The exact decision cache (DESIGN.md, "Speed without staleness"): random sequences of
// changes — bind, unbind, bindings expiring as the clock moves, MFA going stale,
// promotions, policy reloads that change the rules — interleaved with requests give the
// same decisions (outcome, reason, hint, visibility, policy version) from the caching
// guard as from a guard that asks Cedar every time. Real services, real Cedar, SQLite and
// PostgreSQL; the changes go through the services that publish the epoch bumps.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Guard } from '../../src/authz/index.ts';
import type { Action, Decision, Principal, RequestContext, ResourceRef } from '../../src/core/index.ts';
import { ManualClock, newId, PROJECT_ROLES, parseConfig } from '../../src/core/index.ts';
import { buildServices, DEFAULT_POLICIES_DIR, type Services } from '../../src/main.ts';
import { modelRef, projectRef, versionRef } from '../../src/registry/refs.ts';
import { BACKENDS, createPgDatabase } from '../helpers/server.ts';

const PASSWORD = 'a long test password 1';
const USERS = ['u0', 'u1', 'u2'] as const;
const PROJECTS = ['fraud', 'other'] as const;
const MINUTE = 60_000;

/** A rule the "B" policy set adds: viewers may download internal artifacts. */
const EXTRA_POLICY = `@id("extra.viewer-download")
permit (principal, action == Modelkeep::Action::"artifact:download", resource)
when { resource.sensitivity != "restricted" && principal in resource.project.roles["viewer"] };
`;

type Op =
  | { kind: 'bind'; user: number; project: number; role: number; expiresInMin: number | null }
  | { kind: 'unbind'; user: number; project: number; pick: number }
  | { kind: 'clock'; minutes: number }
  | { kind: 'promote'; version: number; stage: 'staging' | 'production' | 'archived' }
  | { kind: 'reload'; variant: 'A' | 'B' }
  | { kind: 'mfa'; user: number }
  | { kind: 'request'; user: number; target: number; scoped: boolean };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('bind' as const), user: fc.nat(2), project: fc.nat(1), role: fc.nat(5), expiresInMin: fc.option(fc.integer({ min: 1, max: 90 }), { nil: null }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('unbind' as const), user: fc.nat(2), project: fc.nat(1), pick: fc.nat(5) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('clock' as const), minutes: fc.integer({ min: 1, max: 40 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('promote' as const), version: fc.nat(2), stage: fc.constantFrom('staging' as const, 'production' as const, 'archived' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reload' as const), variant: fc.constantFrom('A' as const, 'B' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mfa' as const), user: fc.nat(2) }) },
  { weight: 10, arbitrary: fc.record({ kind: fc.constant('request' as const), user: fc.nat(2), target: fc.nat(40), scoped: fc.boolean() }) },
);

for (const backend of BACKENDS) {
  describe(`exact decision cache (${backend})`, () => {
    const clock = new ManualClock(Date.UTC(2026, 2, 2, 9, 0));
    let s: Services;
    let uncached: Guard;
    let dataDir: string;
    let policyDir: string;
    let drop: (() => Promise<void>) | undefined;
    const ids: Record<string, string> = {};
    const mfaAt: Record<string, Date | null> = {};
    const projectIds: Record<string, string> = {};

    const principal = (username: string, scopes: readonly string[] | null = null): Principal => ({
      kind: 'user',
      id: ids[username] ?? '',
      username,
      sessionId: `ses_${username}`,
      amr: mfaAt[username] ? ['mfa', 'otp', 'pwd'] : ['pwd'],
      authTime: clock.now(),
      mfaAt: mfaAt[username] ?? null,
      authMethod: scopes === null ? 'session' : 'access-token',
      scopes,
    });
    const ctxOf = (p: Principal): RequestContext => ({ requestId: newId('req'), principal: p, ip: '127.0.0.1', userAgent: 'test', now: clock.now() });
    // The platform admin steps up before each change (binding management needs a fresh factor).
    const admin = () => {
      mfaAt.admin = clock.now();
      return ctxOf(principal('admin'));
    };
    const builder = () => {
      mfaAt.builder = clock.now();
      return ctxOf(principal('builder'));
    };

    before(async () => {
      dataDir = mkdtempSync(join(tmpdir(), 'mk-cache-'));
      policyDir = mkdtempSync(join(tmpdir(), 'mk-cache-policies-'));
      for (const f of readdirSync(DEFAULT_POLICIES_DIR)) if (f.endsWith('.cedar') || f.endsWith('.cedarschema')) cpSync(join(DEFAULT_POLICIES_DIR, f), join(policyDir, f));
      const pgdb = backend === 'postgres' ? await createPgDatabase() : null;
      drop = pgdb?.drop;
      s = await buildServices(
        parseConfig({ dataDir, policiesDir: policyDir, logLevel: 'silent', detectors: { enabled: false }, ...(pgdb ? { databaseUrl: pgdb.url } : {}) }),
        clock,
      );
      uncached = new Guard({ db: s.db.kysely, audit: s.audit, policies: s.policyHolder, options: { cacheSize: 0 } });
      const op: RequestContext = { requestId: 'op', principal: { kind: 'operator', id: 'operator', username: 'operator' }, ip: null, userAgent: null, now: clock.now() };
      ids.admin = (await s.access.bootstrapUser(op, { username: 'admin', password: PASSWORD, platformAdmin: true })).id;
      mfaAt.admin = clock.now();
      for (const p of PROJECTS) await s.registry.createProject(admin(), { name: p });
      for (const p of await s.db.kysely.selectFrom('projects').select(['id', 'name']).execute()) projectIds[p.name] = p.id;
      for (const u of [...USERS, 'builder']) ids[u] = (await s.identity.createUser(admin(), { username: u, password: PASSWORD })).id;
      for (const role of ['ml-engineer', 'release-manager']) await s.access.add(admin(), 'fraud', { principal: 'user:builder', role });
      await s.registry.createModel(builder(), 'fraud', { name: 'm-int' });
      await s.registry.createModel(builder(), 'fraud', { name: 'm-res', sensitivity: 'restricted' });
      for (const [model, n] of [['m-int', 2], ['m-res', 1]] as const) {
        for (let i = 0; i < n; i++) {
          const v = await s.registry.createVersion(builder(), 'fraud', model, {});
          await s.registry.uploadArtifact(builder(), 'fraud', model, v.version, 'model.bin', (async function* () {
            yield new TextEncoder().encode(`bytes ${model} ${v.version}`);
          })());
          await s.registry.finalizeVersion(builder(), 'fraud', model, v.version);
        }
      }
    });
    after(async () => {
      await s.close();
      await drop?.();
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(policyDir, { recursive: true, force: true });
    });

    /** The versions the ops touch: m-int@1, m-int@2, m-res@1. */
    const VERSIONS = [
      ['m-int', 1],
      ['m-int', 2],
      ['m-res', 1],
    ] as const;

    /** Builds a request's resource from the rows as they are now, like services do. */
    async function target(i: number): Promise<{ action: Action; ref: ResourceRef }> {
      const k = s.db.kysely;
      const p = await k.selectFrom('projects').selectAll().where('name', '=', i % 5 === 4 ? 'other' : 'fraud').executeTakeFirstOrThrow();
      const [model, num] = VERSIONS[i % 3] ?? VERSIONS[0];
      const m = await k.selectFrom('models').selectAll().where('name', '=', model).executeTakeFirstOrThrow();
      const v = await k.selectFrom('model_versions').selectAll().where('model_id', '=', m.id).where('version', '=', num).executeTakeFirstOrThrow();
      const choices: { action: Action; ref: ResourceRef }[] = [
        { action: 'project:read', ref: projectRef(p) },
        { action: 'model:read', ref: { ...modelRef(p, m), projectId: p.id, projectName: p.name } },
        { action: 'version:read', ref: versionRef(p, m, v) },
        { action: 'artifact:download', ref: { ...versionRef(p, m, v), type: 'artifact', path: `${p.name}/${model}@${num}/model.bin` } },
        { action: 'version:promote', ref: { ...versionRef(p, m, v), targetStage: 'production' } },
        { action: 'version:promote', ref: { ...versionRef(p, m, v), targetStage: 'staging' } },
        { action: 'deployment:update', ref: { ...projectRef(p), type: 'deployment', path: `${p.name}/d`, environment: i % 2 === 0 ? 'production' : 'dev' } },
        { action: 'binding:manage', ref: { ...projectRef(p), type: 'binding', path: `${p.name}/x`, targetRole: 'viewer', targetPrincipalId: ids.u1 ?? '' } },
        { action: 'pipeline:trigger', ref: { ...projectRef(p), type: 'pipeline', path: `${p.name}/train` } },
        { action: 'user:read', ref: { type: 'user', path: '*', projectId: null } },
      ];
      return choices[Math.floor(i / 4) % choices.length] ?? (choices[0] as { action: Action; ref: ResourceRef });
    }

    const strip = (d: Decision) => ({ decision: d.decision, reason: d.reason, hint: d.hint, visible: d.visible, mfaRequired: d.mfaRequired ?? false, policyVersion: d.policyVersion });

    async function run(op: Op): Promise<'request' | 'change'> {
      const user = USERS[('user' in op ? op.user : 0) % USERS.length] ?? 'u0';
      switch (op.kind) {
        case 'bind': {
          const expiresAt = op.expiresInMin === null ? undefined : new Date(clock.now().getTime() + op.expiresInMin * MINUTE).toISOString();
          await s.access
            .add(admin(), PROJECTS[op.project % 2], { principal: `user:${user}`, role: PROJECT_ROLES[op.role % 6], ...(expiresAt ? { expiresAt } : {}) })
            .catch((err: { code?: string }) => assert.equal(err.code, 'conflict'));
          return 'change';
        }
        case 'unbind': {
          const project = PROJECTS[op.project % 2] ?? 'fraud';
          const mine = (await s.access.list(admin(), project)).filter((b) => b.principal === `user:${user}`);
          const b = mine[op.pick % Math.max(1, mine.length)];
          if (b) await s.access.remove(admin(), project, b.id);
          return 'change';
        }
        case 'clock':
          clock.advance(op.minutes * MINUTE);
          return 'change';
        case 'mfa':
          mfaAt[user] = clock.now();
          return 'change';
        case 'promote': {
          const [model, num] = VERSIONS[op.version % 3] ?? VERSIONS[0];
          await s.registry.promote(builder(), 'fraud', model, num, op.stage).catch((err: { code?: string }) => assert.equal(err.code, 'conflict'));
          return 'change';
        }
        case 'reload': {
          const extra = join(policyDir, 'extra.cedar');
          if (op.variant === 'B') writeFileSync(extra, EXTRA_POLICY);
          else rmSync(extra, { force: true });
          await s.policies.reloadFromSignal(ctxOf({ kind: 'operator', id: 'operator', username: 'operator' }));
          return 'change';
        }
        case 'request': {
          const { action, ref } = await target(op.target);
          const p = principal(user, op.scoped ? ['read', 'download'] : null);
          const ctx = ctxOf(p);
          const cached = await s.guard.check(ctx, action, ref);
          const truth = await uncached.check(ctx, action, ref);
          assert.deepEqual(strip(cached), strip(truth), `${user} ${action} ${ref.path} (${JSON.stringify(ref)})`);
          return 'request';
        }
      }
    }

    test('random changes and requests: the cache answers exactly what Cedar answers now', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(opArb, { minLength: 10, maxLength: 60 }), async (ops) => {
          for (const op of ops) {
            await run(op);
            // Every change is followed by a repeat of some requests, so stale entries would be hit.
            if (op.kind !== 'request') for (let t = 0; t < 40; t += 7) await run({ kind: 'request', user: t % 3, target: t, scoped: false });
          }
        }),
        { numRuns: backend === 'sqlite' ? 25 : 10 },
      );
      const stats = s.guard.cacheStats;
      assert.ok(stats.hits > 0, 'the workload must hit the cache, else the property proves nothing');
      assert.ok(stats.misses > 0);
    });

    test('an entry never outlives the binding it depended on (expiry by the clock, no event)', async () => {
      const p = 'fraud';
      const u = 'u2';
      for (const b of (await s.access.list(admin(), p)).filter((b) => b.principal === `user:${u}`)) await s.access.remove(admin(), p, b.id);
      await s.access.add(admin(), p, { principal: `user:${u}`, role: 'viewer', expiresAt: new Date(clock.now().getTime() + 5 * MINUTE).toISOString() });
      const { action, ref } = await target(0); // project:read on fraud
      assert.equal(action, 'project:read');
      const ask = () => s.guard.check(ctxOf(principal(u)), action, ref);
      assert.equal((await ask()).decision, 'allow');
      assert.equal((await ask()).decision, 'allow');
      clock.advance(5 * MINUTE);
      const after = await ask();
      assert.equal(after.decision, 'deny');
      assert.equal(after.visible, false, 'once the binding expired the project is invisible again');
      assert.ok(projectIds.fraud);
    });
  });
}

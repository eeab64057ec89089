// Unit tests of the enforcement point over a real SQLite store and the real Cedar policies:
// the discrete context it computes, scope caps, 428 for a missing second factor, the
// operator bootstrap rule, and the PDP seam (a test double engine, here only).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { AuditLog } from '../audit/index.ts';
import type { Action, Principal, RequestContext, ResourceRef } from '../core/index.ts';
import { ManualClock, SCOPES } from '../core/index.ts';
import { type Db, openDatabase } from '../storage/index.ts';
import { BindingStore } from './binding-store.ts';
import { Guard } from './guard.ts';
import type { PdpDecision, PdpRequest, PolicyDecisionPoint } from './pdp.ts';
import { PolicyHolder } from './policy-holder.ts';

const POLICIES = join(import.meta.dirname, '..', '..', 'policies');
const clock = new ManualClock(Date.UTC(2026, 4, 5, 13, 30));
let dir: string;
let db: Db;
let audit: AuditLog;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mk-guard-'));
  db = await openDatabase({ dataDir: dir });
  audit = new AuditLog(db.kysely);
  const store = new BindingStore(db.kysely);
  const bind = (principalId: string, scope: string, role: string) =>
    store.insert(db.kysely, { scope, principalKind: 'user', principalId, role, expiresAt: null, createdBy: 'test', now: clock.now() });
  await bind('usr_rm', 'prj_fraud', 'release-manager');
  await bind('usr_v', 'prj_fraud', 'viewer');
  await bind('usr_pa', 'platform', 'platform-admin');
});
after(async () => {
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

const user = (id: string, over: Partial<Extract<Principal, { kind: 'user' }>> = {}): Principal => ({
  kind: 'user',
  id,
  username: id,
  sessionId: `ses_${id}`,
  amr: ['pwd'],
  authTime: clock.now(),
  mfaAt: null,
  authMethod: 'session',
  scopes: null,
  ...over,
});
const ctx = (principal: Principal, ip = '10.1.2.3'): RequestContext => ({ requestId: 'req_1', principal, ip, userAgent: null, now: clock.now() });
const P = { projectId: 'prj_fraud', projectName: 'fraud' };
const version = (stage: 'none' | 'production' = 'none'): ResourceRef => ({ ...P, type: 'version', path: 'fraud/churn@1', sensitivity: 'internal', stage });

describe('guard over Cedar', () => {
  const holder = new PolicyHolder('cedar', POLICIES, clock);
  // db and audit are opened in before(): build guards inside the tests.
  const g = () => new Guard({ db: db.kysely, audit, policies: holder, options: { zoneOf: (ip) => (ip?.startsWith('10.') ? 'office' : 'unknown') } });

  test('context: MFA freshness against the window, scopes, hour, zone, no device trust', () => {
    const mfaAt = new Date(clock.now().getTime() - 14 * 60_000);
    const c = g().context(ctx(user('usr_rm', { mfaAt, amr: ['pwd', 'otp', 'mfa', 'pwd'] })), user('usr_rm', { mfaAt }) as never, version());
    assert.equal(c.mfa, 'fresh');
    assert.deepEqual(c.tokenScopes, SCOPES, 'an unscoped console session carries every scope');
    assert.equal(c.hourOfDay, 13);
    assert.equal(c.networkZone, 'office');
    assert.equal(c.deviceTrusted, false);
    assert.equal(c.riskLevel, 'low');
    const stale = g().context(ctx(user('usr_rm')), user('usr_rm', { mfaAt: new Date(clock.now().getTime() - 16 * 60_000) }) as never, version());
    assert.equal(stale.mfa, 'stale');
    assert.equal(g().context(ctx(user('usr_rm')), user('usr_rm') as never, version()).mfa, 'none');
    const scoped = g().context(ctx(user('usr_rm')), user('usr_rm', { scopes: ['read', 'download', 'read'] }) as never, version());
    assert.deepEqual(scoped.tokenScopes, ['download', 'read']);
  });

  test('the MFA window is configurable', () => {
    const short = new Guard({ db: db.kysely, audit, policies: holder, options: { mfaFreshMinutes: 5 } });
    const p = user('usr_rm', { mfaAt: new Date(clock.now().getTime() - 6 * 60_000) });
    assert.equal(short.context(ctx(p), p as never, version()).mfa, 'stale');
  });

  test('production promotion: stale MFA is a 428-able denial; fresh MFA allows; decisions carry the policy version', async () => {
    const ref: ResourceRef = { ...version(), targetStage: 'production' };
    const d = await g().check(ctx(user('usr_rm')), 'version:promote', ref);
    assert.equal(d.decision, 'deny');
    assert.equal(d.mfaRequired, true);
    assert.match(d.hint ?? '', /step-up\/totp/);
    assert.equal(d.policyVersion, holder.pdp.policyVersion);
    const fresh = await g().check(ctx(user('usr_rm', { mfaAt: clock.now(), amr: ['pwd', 'otp', 'mfa'] })), 'version:promote', ref);
    assert.equal(fresh.decision, 'allow');
    assert.equal(fresh.policyVersion, holder.pdp.policyVersion);
    await assert.rejects(
      g().authorize(ctx(user('usr_rm')), 'version:promote', ref),
      (err: { code?: string }) => err.code === 'mfa_required',
    );
  });

  test('scopes cap every action, whatever the roles', async () => {
    const p = user('usr_rm', { mfaAt: clock.now(), amr: ['mfa'], authMethod: 'access-token', scopes: ['read'] });
    const read = await g().check(ctx(p), 'version:read', version());
    assert.equal(read.decision, 'allow');
    const promote = await g().check(ctx(p), 'version:promote', { ...version(), targetStage: 'staging' });
    assert.equal(promote.decision, 'deny');
    assert.match(promote.reason, /lacks the 'release' scope/);
    const admin = user('usr_pa', { scopes: ['read'], authMethod: 'api-key' });
    assert.equal((await g().check(ctx(admin), 'user:read', { type: 'user', path: '*', projectId: null })).decision, 'deny');
  });

  test('no role in the project: invisible (404); platform actions: 403 naming platform-admin', async () => {
    const d = await g().check(ctx(user('usr_nobody')), 'version:read', version());
    assert.equal(d.visible, false);
    assert.equal(d.hint, undefined);
    const p = await g().check(ctx(user('usr_v')), 'user:create', { type: 'user', path: 'x', projectId: null });
    assert.equal(p.visible, true);
    assert.equal(p.reason, 'this action needs the platform-admin role');
  });

  test('visible() answers exactly what check() says of visibility, for every kind of caller', async () => {
    const op: Principal = { kind: 'operator', id: 'operator', username: 'operator' };
    const anon: Principal = { kind: 'anonymous' };
    const callers: Principal[] = [
      user('usr_v'),
      user('usr_rm', { mfaAt: clock.now(), amr: ['pwd', 'otp', 'mfa'] }),
      user('usr_pa'),
      user('usr_nobody'),
      user('usr_v', { projectId: 'prj_fraud', authMethod: 'api-key' }),
      user('usr_v', { projectId: 'prj_other', authMethod: 'api-key' }),
      user('usr_rm', { scopes: ['read'], authMethod: 'access-token' }),
      op,
      anon,
    ];
    const refs: ResourceRef[] = [
      { ...P, type: 'project', path: 'fraud' },
      version('production'),
      { type: 'project', path: 'other', projectId: 'prj_other', projectName: 'other' },
      { type: 'user', path: '*', projectId: null },
    ];
    const guard = g();
    let compared = 0;
    for (const p of callers) {
      for (const r of refs) {
        for (const action of ['project:read', 'version:promote', 'user:create'] as Action[]) {
          const expected = (await guard.check(ctx(p), action, r)).visible;
          assert.equal(await guard.visible(ctx(p), r), expected, `${p.kind}:${'id' in p ? p.id : ''} ${action} ${r.path}`);
          compared++;
        }
      }
    }
    assert.equal(compared, callers.length * refs.length * 3);
    // Some callers see the project and some do not: the comparison covered both answers.
    assert.equal(await guard.visible(ctx(user('usr_v')), refs[0] as ResourceRef), true);
    assert.equal(await guard.visible(ctx(user('usr_nobody')), refs[0] as ResourceRef), false);
  });

  test('a binding removed by another process stops granting once bindingsCacheSeconds has passed', async () => {
    const store = new BindingStore(db.kysely);
    const b = await store.insert(db.kysely, { scope: 'prj_fraud', principalKind: 'user', principalId: 'usr_elsewhere', role: 'viewer', expiresAt: null, createdBy: 'test', now: clock.now() });
    // This process's guard; the removal below is another process's (no event reaches this bus).
    const guard = new Guard({ db: db.kysely, audit, policies: holder, options: { bindingsCacheSeconds: 30 } });
    const at = (seconds: number) => ({ ...ctx(user('usr_elsewhere')), now: new Date(clock.now().getTime() + seconds * 1000) });
    assert.equal((await guard.check(at(0), 'version:read', version())).decision, 'allow');
    assert.ok(await store.delete(db.kysely, b.id));
    // Within the bound the answer is served from memory (the documented cross-process delay) …
    assert.equal((await guard.check(at(29), 'version:read', version())).decision, 'allow');
    assert.equal(await guard.visible(at(29), version()), true);
    // … and after it the bindings are read again: the project no longer exists for the caller.
    const after = await guard.check(at(31), 'version:read', version());
    assert.equal(after.decision, 'deny');
    assert.equal(after.visible, false);
    assert.equal(await guard.visible(at(31), version()), false);
    // With 0, every decision reads the bindings.
    const strict = new Guard({ db: db.kysely, audit, policies: holder, options: { bindingsCacheSeconds: 0 } });
    const again = await store.insert(db.kysely, { scope: 'prj_fraud', principalKind: 'user', principalId: 'usr_elsewhere', role: 'viewer', expiresAt: null, createdBy: 'test', now: clock.now() });
    assert.equal((await strict.check(at(0), 'version:read', version())).decision, 'allow');
    assert.ok(await store.delete(db.kysely, again.id));
    assert.equal((await strict.check(at(0), 'version:read', version())).visible, false);
  });

  test('an account that must still set up a second factor is refused every action by the guard itself (403 mfa_enrollment_required)', async () => {
    const admin = user('usr_pa', { mfaEnrollmentRequired: true });
    const d = await g().check(ctx(admin), 'user:read', { type: 'user', path: '*', projectId: null });
    assert.equal(d.decision, 'deny');
    assert.equal(d.enrollmentRequired, true);
    assert.equal((await g().check(ctx(user('usr_rm', { mfaEnrollmentRequired: true })), 'version:read', version())).decision, 'deny');
    await assert.rejects(
      g().authorize(ctx(admin), 'user:read', { type: 'user', path: '*', projectId: null }),
      (err: { code?: string }) => err.code === 'mfa_enrollment_required',
    );
    // The same account once enrolled: allowed.
    assert.equal((await g().check(ctx(user('usr_pa')), 'user:read', { type: 'user', path: '*', projectId: null })).decision, 'allow');
  });

  test('the local operator only bootstraps', async () => {
    const op: Principal = { kind: 'operator', id: 'operator', username: 'operator' };
    assert.equal((await g().check(ctx(op), 'user:create', { type: 'user', path: 'x', projectId: null })).decision, 'allow');
    assert.equal((await g().check(ctx(op), 'version:read', version())).decision, 'deny');
  });
});

describe('the PDP seam', () => {
  /** A test double engine: allows reading, denies everything else, and counts its calls. */
  class Double implements PolicyDecisionPoint {
    readonly engine = 'double';
    readonly files = ['double'];
    readonly policyVersion: string;
    calls: PdpRequest[] = [];
    constructor(version: string) {
      this.policyVersion = version;
    }
    decide(req: PdpRequest): PdpDecision {
      this.calls.push(req);
      const read = (req.action as Action).endsWith(':read');
      return { decision: read ? 'allow' : 'deny', reasons: [read ? 'double.read' : 'double.deny'], errors: [], policyVersion: this.policyVersion };
    }
  }

  test('the guard asks whatever engine the source holds, caches its answers, and forgets them on a swap', async () => {
    const one = new Double('v1');
    const source = PolicyHolder.of(one);
    const guard = new Guard({ db: db.kysely, audit, policies: source });
    const c = ctx(user('usr_v'));
    const a = await guard.check(c, 'version:read', version());
    assert.equal(a.decision, 'allow');
    assert.equal(a.policyVersion, 'v1');
    assert.equal(one.calls.length, 1);
    assert.equal(one.calls[0]?.context.mfa, 'none');
    assert.deepEqual(one.calls[0]?.principal.roles, [{ scope: 'prj_fraud', role: 'viewer' }]);
    await guard.check(c, 'version:read', version());
    assert.equal(one.calls.length, 1, 'the second identical request is a cache hit');
    assert.deepEqual(guard.cacheStats, { hits: 1, misses: 1, size: 1 });
    const two = new Double('v2');
    source.swap(two);
    const b = await guard.check(c, 'version:read', version());
    assert.equal(b.policyVersion, 'v2');
    assert.equal(two.calls.length, 1);
    const denied = await guard.check(c, 'version:finalize', version());
    assert.equal(denied.decision, 'deny');
    const calls = two.calls.length;
    assert.equal(await guard.visible(c, version()), true);
    assert.equal(await guard.visible(ctx(user('usr_nobody')), version()), false);
    assert.equal(two.calls.length, calls, 'visibility is answered from the bindings, without the engine');
  });

  test('an engine that throws is a denial (fail closed)', async () => {
    const broken: PolicyDecisionPoint = {
      engine: 'broken',
      files: [],
      policyVersion: 'vx',
      decide: () => {
        throw new Error('engine exploded');
      },
    };
    const guard = new Guard({ db: db.kysely, audit, policies: PolicyHolder.of(broken) });
    const d = await guard.check(ctx(user('usr_v')), 'version:read', version());
    assert.equal(d.decision, 'deny');
    assert.doesNotMatch(d.reason, /exploded/);
  });
});

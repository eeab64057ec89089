import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { Action, ResourceRef } from '../core/index.ts';
import { PROJECT_ROLES } from '../core/index.ts';
import {
  CedarEngine,
  type DecideRequest,
  FIXTURE_CONTEXT,
  type Fixture,
  fixtureRequest,
  PLATFORM_ID,
  PolicyLoadError,
  type RoleGrant,
  readPolicyFolder,
  resourceFromRef,
  sliceEntities,
} from './cedar-engine.ts';
import { POLICY_ACTIONS } from './policy-tools.ts';
import { PLATFORM_ADMIN_ACTIONS, projectRequirement } from './role-matrix-oracle.ts';

const POLICIES = join(import.meta.dirname, '..', '..', 'policies');
const engine = CedarEngine.load(POLICIES);

const temps: string[] = [];
after(() => {
  for (const d of temps) rmSync(d, { recursive: true, force: true });
});

/** A copy of the default policy folder (without fixtures) to break on purpose. */
function policyCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'modelkeep-policies-'));
  temps.push(dir);
  for (const f of readPolicyFolder(POLICIES)) cpSync(join(POLICIES, f.name), join(dir, f.name));
  return dir;
}

function loadError(dir: string): PolicyLoadError {
  try {
    CedarEngine.load(dir);
  } catch (err) {
    if (err instanceof PolicyLoadError) return err;
    throw err;
  }
  assert.fail('the policy set was accepted');
}

describe('policy fixtures (policies/tests/*.json)', () => {
  const dir = join(POLICIES, 'tests');
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  const all: Fixture[] = [];
  for (const file of files) {
    const fixtures = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Fixture[];
    all.push(...fixtures);
    describe(file, () => {
      for (const f of fixtures) {
        test(f.name, () => {
          const d = engine.decide(fixtureRequest(f));
          assert.deepEqual(d.errors, []);
          assert.equal(d.decision, f.expected, `reasons: ${d.reasons.join(', ')}`);
        });
      }
    });
  }

  test('at least 60 fixtures, unique names, both outcomes for every action', () => {
    assert.ok(all.length >= 60, `only ${all.length} fixtures`);
    assert.equal(new Set(all.map((f) => f.name)).size, all.length, 'fixture names must be unique');
    const actions = new Set(all.map((f) => f.action));
    for (const a of PLATFORM_ADMIN_ACTIONS) assert.ok(actions.has(a), a);
    for (const a of actions) {
      const outcomes = new Set(all.filter((f) => f.action === a).map((f) => f.expected));
      assert.equal(outcomes.size, 2, `${a} needs an allowed and a denied fixture`);
    }
  });
});

describe('loading', () => {
  test('policyVersion is the sha256 of the files and changes with any byte', () => {
    assert.match(engine.policyVersion, /^[0-9a-f]{64}$/);
    assert.equal(CedarEngine.load(POLICIES).policyVersion, engine.policyVersion);
    const dir = policyCopy();
    writeFileSync(join(dir, 'read.cedar'), `${readFileSync(join(dir, 'read.cedar'), 'utf8')}\n// changed\n`);
    const changed = CedarEngine.load(dir);
    assert.notEqual(changed.policyVersion, engine.policyVersion);
    const d = changed.decide(fixtureRequest({ name: 'x', principal: { roles: ['viewer'] }, action: 'model:read', resource: { type: 'Model' }, expected: 'allow' }));
    assert.equal(d.policyVersion, changed.policyVersion);
    assert.equal(d.decision, 'allow');
  });

  test('a policy file with a syntax typo is refused with the file named', () => {
    const dir = policyCopy();
    const text = readFileSync(join(dir, 'guardrails.cedar'), 'utf8');
    writeFileSync(join(dir, 'guardrails.cedar'), text.replace('forbid (principal, action == Modelkeep::Action::"binding:manage"', 'forbidd (principal, action == Modelkeep::Action::"binding:manage"'));
    const err = loadError(dir);
    assert.ok(err.errors.length > 0);
    assert.ok(err.errors.every((e) => e.startsWith('guardrails.cedar:')), err.message);
  });

  test('a policy that fails schema validation is refused, listing the errors', () => {
    const dir = policyCopy();
    writeFileSync(
      join(dir, 'extra.cedar'),
      [
        '@id("extra.typo-attribute")',
        'forbid (principal, action == Modelkeep::Action::"artifact:download", resource)',
        'when { resource.sensitivty == "restricted" };',
        '@id("extra.unknown-action")',
        'permit (principal, action == Modelkeep::Action::"artifact:delete", resource);',
        '',
      ].join('\n'),
    );
    const err = loadError(dir);
    assert.ok(
      err.errors.some((e) => e.includes('extra.typo-attribute') && e.includes('sensitivty')),
      err.message,
    );
    assert.ok(err.errors.some((e) => e.includes('extra.unknown-action')), err.message);
    assert.match(err.message, /refused/);
  });

  test('a missing schema, a broken schema and duplicate ids are refused', () => {
    const noSchema = policyCopy();
    rmSync(join(noSchema, 'schema.cedarschema'));
    assert.match(loadError(noSchema).message, /schema\.cedarschema is missing/);
    const badSchema = policyCopy();
    writeFileSync(join(badSchema, 'schema.cedarschema'), 'namespace Modelkeep { entity User in [ }');
    assert.ok(loadError(badSchema).errors[0]?.startsWith('schema.cedarschema:'));
    const dup = policyCopy();
    writeFileSync(join(dup, 'dup.cedar'), '@id("read.any-project-role")\npermit (principal, action == Modelkeep::Action::"project:read", resource);\n');
    assert.match(loadError(dup).message, /duplicate policy id read\.any-project-role/);
  });
});

describe('fail closed', () => {
  test('an evaluation error in a forbid denies although Cedar would allow', () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelkeep-policies-'));
    temps.push(dir);
    cpSync(join(POLICIES, 'schema.cedarschema'), join(dir, 'schema.cedarschema'));
    writeFileSync(
      join(dir, 'p.cedar'),
      [
        '@id("allow-all")',
        'permit (principal, action, resource);',
        '@id("forbid-viewers")',
        'forbid (principal, action == Modelkeep::Action::"model:read", resource)',
        'when { principal in resource.project.roles["viewer"] };',
        '',
      ].join('\n'),
    );
    const e = CedarEngine.load(dir);
    const req = fixtureRequest({ name: 'x', principal: { roles: ['viewer'] }, action: 'model:read', resource: { type: 'Model' }, expected: 'deny' });
    assert.equal(e.decide(req).decision, 'deny', 'the forbid applies');
    // Without the Project entity the forbid cannot be evaluated; Cedar skips it and allows.
    const broken: DecideRequest = { ...req, entities: req.entities.filter((x) => !('type' in x.uid && x.uid.type === 'Modelkeep::Project')) };
    const d = e.decide(broken);
    assert.equal(d.decision, 'deny');
    assert.ok(d.errors.some((m) => m.includes('forbid-viewers')), d.errors.join('; '));
  });

  test('with the default policies, a missing entity denies with errors', () => {
    const req = fixtureRequest({ name: 'x', principal: { roles: ['ml-engineer'] }, action: 'artifact:download', resource: { type: 'Artifact' }, expected: 'allow' });
    assert.equal(engine.decide(req).decision, 'allow');
    const d = engine.decide({ ...req, entities: req.entities.filter((x) => !('type' in x.uid && x.uid.type === 'Modelkeep::Project')) });
    assert.equal(d.decision, 'deny');
    assert.ok(d.errors.length > 0);
  });

  test('a request the schema does not allow denies (action on the wrong resource type)', () => {
    const req = fixtureRequest({ name: 'x', principal: { roles: ['platform-admin'] }, action: 'model:read', resource: { type: 'Platform' }, expected: 'deny' });
    const d = engine.decide(req);
    assert.equal(d.decision, 'deny');
    assert.ok(d.errors.length > 0);
  });
});

describe('entity slicing', () => {
  test('only the principal, its roles in scope, the resource and its ancestors', () => {
    const s = sliceEntities(
      {
        type: 'User',
        id: 'alice',
        roles: [
          { scope: 'fraud', role: 'ml-engineer' },
          { scope: 'churn', role: 'viewer' },
          { scope: PLATFORM_ID, role: 'platform-admin' },
        ],
      },
      { type: 'Artifact', id: 'fraud/m@1/a', project: 'fraud', model: 'fraud/m', version: 'fraud/m@1', sensitivity: 'internal', stage: 'none' },
    );
    const ids = s.entities.map((e) => ('type' in e.uid ? `${e.uid.type}:${e.uid.id}` : '')).sort();
    assert.deepEqual(ids, [
      'Modelkeep::Artifact:fraud/m@1/a',
      'Modelkeep::Model:fraud/m',
      'Modelkeep::ModelVersion:fraud/m@1',
      'Modelkeep::Platform:platform',
      'Modelkeep::Project:fraud',
      'Modelkeep::Role:fraud/ml-engineer',
      'Modelkeep::Role:platform-admin',
      'Modelkeep::User:alice',
    ]);
  });
});

// ---------------------------------------------------------------------------------
// Differential: Cedar equals the skeleton's role matrix wherever ABAC does not apply
// (fresh MFA, an MFA session, every token scope).

interface Persona {
  name: string;
  roles: RoleGrant[];
}

const SELF = 'alice';
const personas: Persona[] = [
  ...PROJECT_ROLES.map((role) => ({ name: role, roles: [{ scope: 'fraud', role }] })),
  { name: 'platform-admin', roles: [{ scope: PLATFORM_ID, role: 'platform-admin' }] },
  { name: 'no role', roles: [] },
  { name: 'ml-engineer elsewhere', roles: [{ scope: 'churn', role: 'ml-engineer' }] },
  { name: 'platform-admin + viewer', roles: [{ scope: PLATFORM_ID, role: 'platform-admin' }, { scope: 'fraud', role: 'viewer' }] },
  { name: 'data-scientist + release-manager', roles: [{ scope: 'fraud', role: 'data-scientist' }, { scope: 'fraud', role: 'release-manager' }] },
];

/** The guard's ordering (guard.ts) over the role matrix, for the non-ABAC cases. */
function matrixDecision(roles: readonly RoleGrant[], action: Action, r: ResourceRef): 'allow' | 'deny' {
  const isPlatformAdmin = roles.some((b) => b.scope === PLATFORM_ID && b.role === 'platform-admin');
  const projectRoles = new Set(roles.filter((b) => b.scope === r.projectId).map((b) => b.role));
  const visible = r.projectId === null || isPlatformAdmin || projectRoles.size > 0;
  if (!visible) return 'deny';
  if (action === 'binding:manage') {
    if (r.targetPrincipalId === SELF) return 'deny';
    if (r.targetRole === 'platform-admin') return 'deny';
  }
  if (isPlatformAdmin && PLATFORM_ADMIN_ACTIONS.has(action)) return 'allow';
  const req = r.projectId === null ? null : projectRequirement(action, r);
  if (req?.roles.some((role) => projectRoles.has(role))) return 'allow';
  return 'deny';
}

const P = { projectId: 'fraud', projectName: 'fraud' };
function representativeResources(action: Action): ResourceRef[] {
  const sens = ['internal', 'restricted'] as const;
  switch (action) {
    case 'project:create':
    case 'user:create':
    case 'user:read':
      return [{ type: action === 'project:create' ? 'project' : 'user', path: 'x', projectId: null }];
    case 'policy:read':
    case 'policy:reload':
      return [{ type: 'policy', path: '*', projectId: null }];
    case 'user:deactivate':
      return [
        { type: 'user', path: 'bob', projectId: null, targetPrincipalId: 'bob' },
        { type: 'user', path: SELF, projectId: null, targetPrincipalId: SELF },
      ];
    case 'project:read':
      return [{ type: 'project', path: 'fraud', ...P }];
    case 'model:create':
    case 'model:read':
    case 'version:create':
      return sens.map((sensitivity) => ({ type: 'model', path: 'fraud/m', ...P, sensitivity }));
    case 'version:read':
    case 'version:finalize':
    case 'artifact:upload':
    case 'artifact:download':
      return sens.flatMap((sensitivity) =>
        (['none', 'staging', 'production', 'archived'] as const).map((stage) => ({
          type: action === 'version:read' || action === 'version:finalize' ? 'version' : 'artifact',
          path: 'fraud/m@1/a',
          ...P,
          sensitivity,
          stage,
        })),
      );
    case 'version:promote': {
      const stages = ['none', 'staging', 'production', 'archived'] as const;
      return sens.flatMap((sensitivity) =>
        stages.flatMap((stage) => stages.filter((t) => t !== stage).map((targetStage) => ({ type: 'version', path: 'fraud/m@1', ...P, sensitivity, stage, targetStage }))),
      );
    }
    case 'deployment:read':
    case 'deployment:update':
      return (['dev', 'staging', 'production'] as const).map((environment) => ({ type: 'deployment', path: 'fraud/d', ...P, environment }));
    case 'pipeline:read':
    case 'pipeline:trigger':
      return [{ type: 'pipeline', path: 'fraud/p', ...P }];
    case 'audit:read':
      return [
        { type: 'audit', path: 'fraud', ...P },
        { type: 'alert', path: 'fraud/*', ...P },
        { type: 'audit', path: '*', projectId: null },
      ];
    case 'binding:read':
      return [
        { type: 'binding', path: 'fraud/*', ...P },
        { type: 'binding', path: '*', projectId: null },
      ];
    case 'binding:manage':
      return [P, { projectId: null }].flatMap((scope) =>
        ['viewer', 'release-manager', 'project-admin', 'platform-admin'].flatMap((targetRole) =>
          ['bob', SELF].map((targetPrincipalId) => ({ type: 'binding', path: 'b', ...scope, targetRole, targetPrincipalId })),
        ),
      );
  }
}

// Every action the skeleton's role matrix (the oracle) knows: all but the policy-admin ones,
// which came with Cedar and are covered by policies/tests/policy-admin.json.
const ACTIONS: Action[] = POLICY_ACTIONS.filter((a) => !a.startsWith('policy:'));

function cedarRequest(persona: Persona, action: Action, r: ResourceRef): DecideRequest {
  const sliced = sliceEntities({ type: 'User', id: SELF, roles: persona.roles }, resourceFromRef(r));
  return {
    ...sliced,
    action,
    context: {
      ...FIXTURE_CONTEXT,
      targetStage: r.targetStage ?? 'none',
      targetRole: r.targetRole ?? '',
      selfBinding: r.targetPrincipalId === SELF,
    },
  };
}

describe('differential: Cedar equals the role matrix', () => {
  test('every role × action × representative resource', (t) => {
    let cases = 0;
    let allows = 0;
    const mismatches: string[] = [];
    for (const action of ACTIONS) {
      for (const r of representativeResources(action)) {
        for (const persona of personas) {
          const want = matrixDecision(persona.roles, action, r);
          const got = engine.decide(cedarRequest(persona, action, r));
          cases++;
          if (want === 'allow') allows++;
          if (got.errors.length > 0 || got.decision !== want) {
            mismatches.push(`${persona.name} ${action} ${JSON.stringify(r)}: matrix ${want}, cedar ${got.decision} ${got.errors.join('; ')}`);
          }
        }
      }
    }
    assert.deepEqual(mismatches, []);
    assert.ok(cases > 500 && allows > 100, `${cases} cases, ${allows} allowed`);
    t.diagnostic(`${cases} cases compared, ${allows} allowed by the role matrix`);
  });
});

test('decide() latency on sliced entities (info only)', (t) => {
  const reqs = ACTIONS.flatMap((action) => representativeResources(action).map((r) => cedarRequest(personas[2] ?? { name: '', roles: [] }, action, r)));
  for (let i = 0; i < 200; i++) engine.decide(reqs[i % reqs.length] as DecideRequest);
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const req = reqs[i % reqs.length] as DecideRequest;
    const t0 = process.hrtime.bigint();
    engine.decide(req);
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  const p = (q: number): string => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? 0).toFixed(0);
  t.diagnostic(`decide() over ${times.length} calls: p50 ${p(0.5)} µs, p99 ${p(0.99)} µs`);
});

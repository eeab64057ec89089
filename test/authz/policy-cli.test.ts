// Policy as code through the real `bin/modelkeep`: validate refuses a broken set naming
// the file and line, `policy test` runs every shipped fixture (and fails on a wrong one),
// and `policy matrix --check` is the CI check that docs/ACCESS-MATRIX.md is what the
// policies decide. Also checks the fixtures cover every role × action and each ABAC rule
// both ways.
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CedarEngine, type Fixture, fixtureRequest, loadFixtures, POLICY_ACTIONS } from '../../src/authz/index.ts';
import { PROJECT_ROLES } from '../../src/core/index.ts';
import { cleanEnv, type Run, runBin } from '../helpers/cli.ts';

const POLICIES = fileURLToPath(new URL('../../policies/', import.meta.url));
const MATRIX = fileURLToPath(new URL('../../docs/ACCESS-MATRIX.md', import.meta.url));

function cli(args: string[]): Promise<Run> {
  // Run from elsewhere: the defaults must not depend on the working directory.
  return runBin(args, { cwd: tmpdir(), env: cleanEnv({ MODELKEEP_CONFIG_DIR: tmpdir() }) });
}

const work = mkdtempSync(join(tmpdir(), 'mk-policy-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));
let copies = 0;
/** A copy of policies/ (with its fixtures) to break on purpose. */
function copyPolicies(): string {
  const dir = join(work, `policies-${++copies}`);
  cpSync(POLICIES, dir, { recursive: true });
  return dir;
}

describe('modelkeep policy validate', () => {
  test('the shipped set is valid and its version is the one the engine computes', async () => {
    const r = await cli(['policy', 'validate']);
    assert.equal(r.code, 0, r.stderr);
    const version = CedarEngine.load(POLICIES).policyVersion;
    assert.match(r.stdout, new RegExp(`^OK: \\d+ policies in \\d+ files; policy version ${version}\\n$`));
    const j = await cli(['policy', 'validate', '--json']);
    assert.equal(JSON.parse(j.stdout).policyVersion, version);
  });

  test('a typo in an attribute is refused with exit 2, naming file and line', async () => {
    const dir = copyPolicies();
    const file = join(dir, 'download.cedar');
    const text = readFileSync(file, 'utf8');
    const broken = text.replace('resource.sensitivity == "restricted"', 'resource.sensitivty == "restricted"');
    assert.notEqual(broken, text);
    writeFileSync(file, broken);
    const line = broken.split('\n').findIndex((l) => l.includes('sensitivty')) + 1;
    const r = await cli(['policy', 'validate', '--policies', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^download\\.cedar:${line}:\\d+: .*\`download\\.restricted\`.*sensitivty`, 'm'));
    assert.match(r.stderr, /policy set in .* refused/);
    assert.equal(r.stdout, '');
  });

  test('a syntax error is refused with exit 2 at its line; so is a broken schema', async () => {
    const dir = copyPolicies();
    const file = join(dir, 'guardrails.cedar');
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.startsWith('forbid (principal, action == Modelkeep::Action::"binding:manage"'));
    assert.ok(at >= 0);
    lines[at] = (lines[at] ?? '').replace('forbid (', 'forbidd (');
    writeFileSync(file, lines.join('\n'));
    const r = await cli(['policy', 'validate', '--policies', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`^guardrails\\.cedar:${at + 1}:\\d+: `, 'm'));

    const dir2 = copyPolicies();
    const schema = join(dir2, 'schema.cedarschema');
    writeFileSync(schema, readFileSync(schema, 'utf8').replace('entity Role;', 'entity Role'));
    const s = await cli(['policy', 'validate', '--policies', dir2]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /^schema\.cedarschema:\d+:\d+: /m);
  });

  test('a folder that does not exist is an input error', async () => {
    const r = await cli(['policy', 'validate', '--policies', join(work, 'nope')]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no policy folder/);
  });
});

describe('modelkeep policy test', () => {
  test('every shipped fixture passes', async () => {
    const r = await cli(['policy', 'test']);
    assert.equal(r.code, 0, r.stdout.split('\n').filter((l) => l.startsWith('FAIL') || l.startsWith('  ')).join('\n') + r.stderr);
    const total = readdirFixtures().length;
    assert.ok(total >= 60);
    assert.match(r.stdout, new RegExp(`^${total} passed, 0 failed, ${total} fixtures; policy version [0-9a-f]{64}$`, 'm'));
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('PASS ')).length, total);
    assert.doesNotMatch(r.stdout, /policies no fixture exercised/);
  });

  test('a wrong fixture fails with exit 1, named, with the policies that decided', async () => {
    const dir = copyPolicies();
    const wrong: Fixture[] = [
      { name: 'viewer may download (wrong on purpose)', principal: { roles: ['viewer'] }, action: 'artifact:download', resource: { type: 'Artifact' }, expected: 'allow' },
      {
        name: 'production promotion with stale MFA (wrong on purpose)',
        principal: { roles: ['release-manager'] },
        action: 'version:promote',
        resource: { type: 'ModelVersion', stage: 'staging' },
        context: { targetStage: 'production', mfa: 'stale' },
        expected: 'allow',
      },
    ];
    writeFileSync(join(dir, 'tests', 'zz-wrong.json'), JSON.stringify(wrong));
    const r = await cli(['policy', 'test', '--policies', dir]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^FAIL zz-wrong\.json: viewer may download \(wrong on purpose\)\n {5}expected allow, got deny \(no policy matched\)$/m);
    assert.match(r.stdout, /^FAIL zz-wrong\.json: production promotion.*\n {5}expected allow, got deny \(policies: guardrails\.production-promotion-mfa\)$/m);
    assert.match(r.stdout, /, 2 failed, /);
    assert.match(r.stderr, /2 of \d+ fixtures failed/);

    const j = await cli(['policy', 'test', '--policies', dir, '--json']);
    assert.equal(j.code, 1);
    const body = JSON.parse(j.stdout) as { failed: number; results: { name: string; pass: boolean }[] };
    assert.equal(body.failed, 2);
    assert.deepEqual(body.results.filter((x) => !x.pass).map((x) => x.name).sort(), wrong.map((f) => f.name).sort());
  });

  test('a malformed fixture is an input error, not a pass', async () => {
    const dir = copyPolicies();
    writeFileSync(join(dir, 'tests', 'zz-bad.json'), JSON.stringify([{ name: 'typo in action', principal: { roles: ['viewer'] }, action: 'model:reed', resource: { type: 'Model' }, expected: 'allow' }]));
    const r = await cli(['policy', 'test', '--policies', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /zz-bad\.json: fixture #1: action/);
  });

  test('a policy set that does not validate is refused before any fixture runs', async () => {
    const dir = copyPolicies();
    const file = join(dir, 'read.cedar');
    writeFileSync(file, readFileSync(file, 'utf8').replace('resource.project.roles["viewer"]', 'resource.project.roles["viewr"]'));
    const r = await cli(['policy', 'test', '--policies', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^read\.cedar:\d+:\d+: /m);
    assert.doesNotMatch(r.stdout, /PASS/);
  });
});

describe('modelkeep policy matrix', () => {
  test('--check passes on the committed docs/ACCESS-MATRIX.md (the CI check)', async () => {
    const r = await cli(['policy', 'matrix', '--check']);
    assert.equal(r.code, 0, `${r.stderr}\nregenerate: modelkeep policy matrix --out docs/ACCESS-MATRIX.md`);
    assert.match(r.stdout, /^OK: .*ACCESS-MATRIX\.md matches policy version [0-9a-f]{64}$/m);
  });

  test('the output is deterministic and the same as the committed file', async () => {
    // The committed file was generated by an earlier process: equal output is determinism.
    const a = await cli(['policy', 'matrix']);
    assert.equal(a.code, 0);
    assert.equal(a.stdout, readFileSync(MATRIX, 'utf8'));
    assert.doesNotMatch(a.stdout, /\d{4}-\d{2}-\d{2}T\d{2}:/, 'no timestamps');
    // Every role and every action is in it.
    for (const role of [...PROJECT_ROLES, 'platform-admin', 'service account']) assert.ok(a.stdout.includes(`| ${role}`), role);
    for (const action of POLICY_ACTIONS) assert.ok(a.stdout.includes(`| \`${action}\` |`), action);
  });

  test('--check fails with exit 1 and a diff on an edited copy; --out writes what --check accepts', async () => {
    const copy = join(work, 'ACCESS-MATRIX.md');
    const original = readFileSync(MATRIX, 'utf8');
    const row = original.split('\n').find((l) => l.startsWith('| `artifact:download` | restricted, password-only session |'));
    assert.ok(row, 'row present');
    // Someone "fixes" the doc by hand to allow a data-scientist restricted downloads.
    const edited = original.replace(row, row.replace(/^(\| [^|]+\| [^|]+\| [^|]+\| )· /, '$1✅ '));
    assert.notEqual(edited, original);
    writeFileSync(copy, edited);
    const r = await cli(['policy', 'matrix', '--check', '--out', copy]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /differs from what the policies decide \(2 lines\)/);
    assert.ok(r.stderr.includes(`- ${row.replace(/^(\| [^|]+\| [^|]+\| [^|]+\| )· /, '$1✅ ')}`));
    assert.ok(r.stderr.includes(`+ ${row}`));
    assert.match(r.stderr, /hint: regenerate it: modelkeep policy matrix --out /);

    const w = await cli(['policy', 'matrix', '--out', copy]);
    assert.equal(w.code, 0);
    assert.equal((await cli(['policy', 'matrix', '--check', '--out', copy])).code, 0);
  });

  test('a policy change that changes a decision makes the committed matrix stale', async () => {
    const dir = copyPolicies();
    const file = join(dir, 'pipelines.cedar');
    writeFileSync(file, readFileSync(file, 'utf8').replace('resource.project.roles["data-scientist"],\n', ''));
    const r = await cli(['policy', 'matrix', '--check', '--policies', dir, '--out', MATRIX]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\| `pipeline:trigger` \| pipeline \|/);
  });
});

function readdirFixtures(): Fixture[] {
  return loadFixtures(join(POLICIES, 'tests')).flatMap((s) => s.fixtures);
}

describe('fixture coverage', () => {
  const fixtures = readdirFixtures();
  const engine = CedarEngine.load(POLICIES);
  const decided = fixtures.map((f) => ({ f, d: engine.decide(fixtureRequest(f)) }));

  test('every role × action has a fixture', () => {
    const missing: string[] = [];
    for (const role of [...PROJECT_ROLES, 'platform-admin']) {
      for (const action of POLICY_ACTIONS) {
        if (!fixtures.some((f) => f.action === action && f.principal.roles.length === 1 && f.principal.roles[0] === role)) missing.push(`${role} ${action}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  // Each guardrail (ABAC rule): a fixture it denies, and an allowed fixture of an action it
  // governs where the rule's condition is what lets the request through.
  const counterparts: Record<string, (f: Fixture) => boolean> = {
    'guardrails.no-self-binding': (f) => f.action === 'binding:manage' && f.context?.selfBinding === false,
    'guardrails.no-platform-admin-grant': (f) => f.action === 'binding:manage' && typeof f.context?.targetRole === 'string' && f.context.targetRole !== 'platform-admin',
    'guardrails.production-promotion-mfa': (f) => f.action === 'version:promote' && (f.context?.targetStage === 'production' || f.resource.stage === 'production'),
    'guardrails.production-deployment-mfa': (f) => f.action === 'deployment:update' && f.resource.environment === 'production',
    'guardrails.restricted-download-mfa': (f) => f.action === 'artifact:download' && f.resource.sensitivity === 'restricted',
    'guardrails.binding-management-mfa': (f) => f.action === 'binding:manage' && f.context?.mfa === 'fresh',
  };
  const SCOPE_OF: Record<string, string> = { read: 'model:read', download: 'artifact:download', write: 'artifact:upload', release: 'version:promote', trigger: 'pipeline:trigger', admin: 'user:create' };
  for (const [scope, action] of Object.entries(SCOPE_OF)) {
    counterparts[`guardrails.scope-${scope}`] = (f) => f.action === action && Array.isArray(f.context?.tokenScopes) && f.context.tokenScopes.length < 6 && f.context.tokenScopes.includes(scope);
  }

  test('each ABAC rule is exercised allowed and denied', () => {
    const forbids = engine.policyIds.filter((id) => id.startsWith('guardrails.'));
    assert.deepEqual(forbids.sort(), Object.keys(counterparts).sort(), 'a new guardrail needs a counterpart predicate here');
    for (const id of forbids) {
      assert.ok(
        decided.some(({ d }) => d.decision === 'deny' && d.reasons.includes(id)),
        `${id}: no fixture it denies`,
      );
      const pred = counterparts[id] ?? (() => false);
      assert.ok(
        decided.some(({ f, d }) => f.expected === 'allow' && d.decision === 'allow' && pred(f)),
        `${id}: no allowed fixture where the rule's condition is met`,
      );
    }
    // Restricted downloads also pass for service accounts without MFA.
    assert.ok(decided.some(({ f, d }) => d.decision === 'allow' && f.principal.type === 'ServiceAccount' && f.resource.sensitivity === 'restricted'));
  });
});


// Policy as code: what `modelkeep policy validate|test|matrix` do, on top of the Cedar
// engine. Validation reports each problem with file:line; the fixture runner decides
// every fixture with the same engine the server uses; the access matrix is generated
// from the policies themselves, deterministically, so CI can compare it byte for byte.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import { z } from 'zod';
import type { Action } from '../core/index.ts';
import { PROJECT_ROLES } from '../core/index.ts';
import {
  CedarEngine,
  type DecisionContext,
  type Fixture,
  fixtureRequest,
  PLATFORM_ADMIN_ROLE,
  PolicyLoadError,
  readPolicyFolder,
  SCHEMA_FILE,
  TOKEN_SCOPES,
} from './cedar-engine.ts';

/** Every action, in the order the schema declares them. */
export const POLICY_ACTIONS: readonly Action[] = [
  'project:create',
  'project:read',
  'model:create',
  'model:read',
  'version:create',
  'version:read',
  'artifact:upload',
  'version:finalize',
  'artifact:download',
  'version:promote',
  'deployment:read',
  'deployment:update',
  'pipeline:read',
  'pipeline:trigger',
  'audit:read',
  'binding:read',
  'binding:manage',
  'user:create',
  'user:read',
  'user:deactivate',
  'policy:read',
  'policy:reload',
];

// ---------------------------------------------------------------------------------
// validate

export interface PolicyProblem {
  file: string;
  /** 1-based; null when the problem is not at a place in a file (a missing file). */
  line: number | null;
  column: number | null;
  message: string;
}

export function formatProblem(p: PolicyProblem): string {
  const at = p.line === null ? p.file : `${p.file}:${p.line}:${p.column ?? 1}`;
  return `${at}: ${p.message}`;
}

export type ValidationResult = { ok: true; engine: CedarEngine } | { ok: false; problems: PolicyProblem[] };

/**
 * Loads the folder exactly as the server does (CedarEngine.load); when the set is
 * refused, runs the same checks file by file to place every problem at file:line.
 * Throws (ENOENT…) only when the folder itself cannot be read.
 */
export function validatePolicyFolder(dir: string): ValidationResult {
  const files = readPolicyFolder(dir);
  try {
    return { ok: true, engine: CedarEngine.fromFiles(dir, files) };
  } catch (err) {
    if (!(err instanceof PolicyLoadError)) throw err;
    const problems = locateProblems(files);
    // Anything the per-file pass cannot place (duplicate ids, templates) keeps the engine's words.
    if (problems.length === 0) {
      for (const e of err.errors) {
        const m = /^([^:\s]+\.(?:cedar|cedarschema)): (.*)$/s.exec(e);
        problems.push({ file: m?.[1] ?? dir, line: null, column: null, message: m?.[2] ?? e });
      }
    }
    problems.sort((a, b) => cmp(a.file, b.file) || (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0) || cmp(a.message, b.message));
    return { ok: false, problems };
  }
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

interface Place {
  line: number;
  column: number;
}

/** Cedar reports byte offsets into the text it parsed. */
function placeOf(text: string, byteOffset: number): Place {
  const before = Buffer.from(text, 'utf8').subarray(0, byteOffset).toString('utf8');
  const lines = before.split('\n');
  return { line: lines.length, column: (lines.at(-1)?.length ?? 0) + 1 };
}

function problemsOf(file: string, text: string, errors: readonly cedar.DetailedError[], rename?: (m: string) => string): PolicyProblem[] {
  return errors.map((e) => {
    const loc = e.sourceLocations?.[0];
    const place = loc ? placeOf(text, loc.start) : null;
    const message = (rename ? rename(e.message) : e.message) + (e.help ? ` (${e.help})` : '');
    return { file, line: place?.line ?? null, column: place?.column ?? null, message };
  });
}

const ID_ANNOTATION = /^\s*@id\(\s*"((?:[^"\\]|\\.)*)"\s*\)/m;

function locateProblems(files: readonly { name: string; text: string }[]): PolicyProblem[] {
  const problems: PolicyProblem[] = [];
  const schema = files.find((f) => f.name === SCHEMA_FILE);
  let schemaOk = false;
  if (!schema) {
    problems.push({ file: SCHEMA_FILE, line: null, column: null, message: 'is missing' });
  } else {
    const check = cedar.checkParseSchema(schema.text);
    if (check.type === 'failure') problems.push(...problemsOf(SCHEMA_FILE, schema.text, check.errors));
    else schemaOk = true;
  }
  for (const f of files.filter((x) => x.name.endsWith('.cedar'))) {
    const parts = cedar.policySetTextToParts(f.text);
    if (parts.type === 'failure') {
      problems.push(...problemsOf(f.name, f.text, parts.errors));
      continue;
    }
    if (!schemaOk || !schema) continue;
    // Validated as the file's own policy set, so locations are offsets into the file;
    // Cedar names the policies policy0, policy1… in file order: show their @id instead.
    const ids = parts.policies.map((p, i) => ID_ANNOTATION.exec(p)?.[1] ?? `policy${i}`);
    const rename = (m: string) => m.replace(/`policy(\d+)`/g, (whole, n: string) => `\`${ids[Number(n)] ?? whole}\``);
    const v = cedar.validate({ schema: schema.text, policies: { staticPolicies: f.text }, validationSettings: { mode: 'strict' } });
    if (v.type === 'failure') problems.push(...problemsOf(f.name, f.text, v.errors, rename));
    else problems.push(...problemsOf(f.name, f.text, v.validationErrors.map((e) => e.error), rename));
  }
  return problems;
}

// ---------------------------------------------------------------------------------
// test: fixtures (request → expected decision)

const STAGE = z.enum(['none', 'staging', 'production', 'archived']);
const fixtureSchema = z
  .object({
    name: z.string().min(1),
    principal: z
      .object({ type: z.enum(['User', 'ServiceAccount']).optional(), id: z.string().min(1).optional(), roles: z.array(z.string().min(1)) })
      .strict(),
    action: z.enum(POLICY_ACTIONS as [Action, ...Action[]]),
    resource: z
      .object({
        type: z.enum(['Platform', 'Project', 'Model', 'ModelVersion', 'Artifact', 'Deployment', 'Pipeline', 'AuditLog', 'Binding']),
        id: z.string().min(1).optional(),
        project: z.string().min(1).optional(),
        sensitivity: z.enum(['internal', 'restricted']).optional(),
        stage: STAGE.optional(),
        environment: z.string().min(1).optional(),
      })
      .strict(),
    context: z
      .object({
        mfa: z.enum(['fresh', 'stale', 'none']),
        amr: z.array(z.string()),
        authMethod: z.string(),
        deviceTrusted: z.boolean(),
        riskLevel: z.enum(['low', 'medium', 'high']),
        networkZone: z.string(),
        hourOfDay: z.number().int().min(0).max(23),
        tokenScopes: z.array(z.string()),
        targetStage: STAGE,
        targetRole: z.string(),
        selfBinding: z.boolean(),
      })
      .partial()
      .strict()
      .optional(),
    expected: z.enum(['allow', 'deny']),
  })
  .strict();

export interface FixtureFile {
  file: string;
  fixtures: Fixture[];
}

/** A fixture file that is not JSON or not an array of well-formed fixtures. */
export class FixtureError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FixtureError';
  }
}

/** Reads every `*.json` in the folder (sorted), checking each fixture's shape. */
export function loadFixtures(dir: string): FixtureFile[] {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.json'))
    .map((d) => d.name)
    .sort();
  return names.map((file) => {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(join(dir, file), 'utf8'));
    } catch (err) {
      throw new FixtureError(`${file}: not JSON: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!Array.isArray(data)) throw new FixtureError(`${file}: expected an array of fixtures`);
    const fixtures = data.map((item, i) => {
      const r = fixtureSchema.safeParse(item);
      if (!r.success) {
        const issue = r.error.issues[0];
        throw new FixtureError(`${file}: fixture #${i + 1}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid'}`.trim());
      }
      return r.data as Fixture;
    });
    return { file, fixtures };
  });
}

export interface FixtureResult {
  file: string;
  name: string;
  expected: 'allow' | 'deny';
  actual: 'allow' | 'deny';
  pass: boolean;
  /** Ids of the policies that determined the decision. */
  reasons: string[];
  errors: string[];
}

export function runFixtures(engine: CedarEngine, sets: readonly FixtureFile[]): FixtureResult[] {
  const out: FixtureResult[] = [];
  for (const { file, fixtures } of sets) {
    for (const f of fixtures) {
      const d = engine.decide(fixtureRequest(f));
      out.push({ file, name: f.name, expected: f.expected, actual: d.decision, pass: d.decision === f.expected, reasons: d.reasons, errors: d.errors });
    }
  }
  return out;
}

/** Policies that determined no fixture's decision: untested rules. */
export function unexercisedPolicies(engine: CedarEngine, results: readonly FixtureResult[]): string[] {
  const seen = new Set(results.flatMap((r) => r.reasons));
  return engine.policyIds.filter((id) => !seen.has(id));
}

// ---------------------------------------------------------------------------------
// matrix: every role × action × representative resource/context

interface Persona {
  /** Column heading. */
  label: string;
  principal: Fixture['principal'];
  context?: Partial<DecisionContext>;
}

/** A service account authenticates with client credentials: no MFA, no amr. */
const SERVICE_CONTEXT: Partial<DecisionContext> = { mfa: 'none', amr: [], authMethod: 'service' };

const PERSONAS: readonly Persona[] = [
  ...PROJECT_ROLES.map((role): Persona => ({ label: role, principal: { roles: [role] } })),
  { label: PLATFORM_ADMIN_ROLE, principal: { roles: [PLATFORM_ADMIN_ROLE] } },
  { label: 'service account (ml-engineer)', principal: { type: 'ServiceAccount', id: 'ci-bot', roles: ['ml-engineer'] }, context: SERVICE_CONTEXT },
  { label: 'service account (release-manager)', principal: { type: 'ServiceAccount', id: 'release-bot', roles: ['release-manager'] }, context: SERVICE_CONTEXT },
];

interface Variant {
  /** Row label after the action. */
  label: string;
  resource: Fixture['resource'];
  context?: Partial<DecisionContext>;
}

const STALE: Partial<DecisionContext> = { mfa: 'stale' };
const NO_MFA_AMR: Partial<DecisionContext> = { mfa: 'none', amr: ['pwd'] };

/** Representative resources and contexts per action: one row each. */
function variants(action: Action): Variant[] {
  switch (action) {
    case 'project:create':
    case 'user:create':
    case 'user:read':
    case 'user:deactivate':
    case 'policy:read':
    case 'policy:reload':
      return [{ label: 'platform', resource: { type: 'Platform' } }];
    case 'project:read':
      return [{ label: 'project', resource: { type: 'Project' } }];
    case 'model:create':
      return [{ label: 'in project', resource: { type: 'Project' } }];
    case 'model:read':
      return [
        { label: 'internal model', resource: { type: 'Model' } },
        { label: 'restricted model', resource: { type: 'Model', sensitivity: 'restricted' } },
      ];
    case 'version:create':
      return [{ label: 'of a model', resource: { type: 'Model' } }];
    case 'version:read':
      return [{ label: 'version', resource: { type: 'ModelVersion' } }];
    case 'artifact:upload':
      return [{ label: 'to a draft version', resource: { type: 'ModelVersion' } }];
    case 'version:finalize':
      return [{ label: 'draft version', resource: { type: 'ModelVersion' } }];
    case 'artifact:download':
      return [
        { label: 'internal, MFA session', resource: { type: 'Artifact' } },
        { label: 'internal, password-only session', resource: { type: 'Artifact' }, context: NO_MFA_AMR },
        { label: 'restricted, MFA session (amr mfa)', resource: { type: 'Artifact', sensitivity: 'restricted' } },
        { label: 'restricted, password-only session', resource: { type: 'Artifact', sensitivity: 'restricted' }, context: NO_MFA_AMR },
      ];
    case 'version:promote':
      return [
        { label: 'none → staging', resource: { type: 'ModelVersion' }, context: { targetStage: 'staging' } },
        { label: 'none → staging, MFA stale', resource: { type: 'ModelVersion' }, context: { targetStage: 'staging', ...STALE } },
        { label: 'staging → production, MFA fresh', resource: { type: 'ModelVersion', stage: 'staging' }, context: { targetStage: 'production' } },
        { label: 'staging → production, MFA stale', resource: { type: 'ModelVersion', stage: 'staging' }, context: { targetStage: 'production', ...STALE } },
        { label: 'production → archived, MFA fresh', resource: { type: 'ModelVersion', stage: 'production' }, context: { targetStage: 'archived' } },
        { label: 'production → archived, MFA stale', resource: { type: 'ModelVersion', stage: 'production' }, context: { targetStage: 'archived', ...STALE } },
      ];
    case 'deployment:read':
      return [{ label: 'production deployment', resource: { type: 'Deployment', environment: 'production' } }];
    case 'deployment:update':
      return [
        { label: 'dev', resource: { type: 'Deployment', environment: 'dev' } },
        { label: 'staging', resource: { type: 'Deployment', environment: 'staging' } },
        { label: 'production, MFA fresh', resource: { type: 'Deployment', environment: 'production' } },
        { label: 'production, MFA stale', resource: { type: 'Deployment', environment: 'production' }, context: STALE },
      ];
    case 'pipeline:read':
    case 'pipeline:trigger':
      return [{ label: 'pipeline', resource: { type: 'Pipeline' } }];
    case 'audit:read':
      return [
        { label: "project's log", resource: { type: 'AuditLog' } },
        { label: 'platform-wide', resource: { type: 'Platform' } },
      ];
    case 'binding:read':
      return [
        { label: "project's bindings", resource: { type: 'Binding' } },
        { label: 'platform-wide', resource: { type: 'Platform' } },
      ];
    case 'binding:manage':
      return [
        { label: 'grant viewer to someone else', resource: { type: 'Binding' }, context: { targetRole: 'viewer' } },
        { label: 'grant project-admin to someone else', resource: { type: 'Binding' }, context: { targetRole: 'project-admin' } },
        { label: 'grant a role to oneself', resource: { type: 'Binding' }, context: { targetRole: 'viewer', selfBinding: true } },
        { label: 'grant platform-admin', resource: { type: 'Binding' }, context: { targetRole: PLATFORM_ADMIN_ROLE } },
      ];
  }
}

function decideCell(engine: CedarEngine, persona: Persona, action: Action, v: Variant, extra: Partial<DecisionContext> = {}): 'allow' | 'deny' {
  const d = engine.decide(
    fixtureRequest({ name: '', principal: persona.principal, action, resource: v.resource, context: { ...persona.context, ...v.context, ...extra }, expected: 'deny' }),
  );
  return d.decision;
}

const YES = '✅';
const NO = '·';
const cell = (d: 'allow' | 'deny') => (d === 'allow' ? YES : NO);
const esc = (s: string) => s.replace(/\|/g, '\\|');

/** The access matrix as Markdown: deterministic (fixed order, no timestamps). */
export function accessMatrix(engine: CedarEngine): string {
  const out: string[] = [];
  out.push('# Access matrix');
  out.push('');
  out.push('<!-- Generated by `modelkeep policy matrix --out docs/ACCESS-MATRIX.md`; do not edit by hand.');
  out.push('     CI (`modelkeep policy matrix --check`, run by test/authz/policy-cli.test.ts) fails when this file');
  out.push('     differs from what the policies in policies/ decide. -->');
  out.push('');
  out.push(`Policy version: \`${engine.policyVersion}\``);
  out.push('');
  out.push(
    `Every cell is a decision of the Cedar policies for a principal holding one role in the resource's project (platform-admin: the global role), ` +
      'in an interactive session with fresh MFA (`amr` contains `mfa`) and every token scope, unless the row says otherwise. ' +
      'Service accounts authenticate with client credentials: no MFA, no `amr`. ' +
      `${YES} allowed, ${NO} denied. A principal with no role in a project is denied everything in it (and sees 404).`,
  );
  out.push('');
  out.push(`| Action | Resource / context | ${PERSONAS.map((p) => esc(p.label)).join(' | ')} |`);
  out.push(`| --- | --- | ${PERSONAS.map(() => ':---:').join(' | ')} |`);
  for (const action of POLICY_ACTIONS) {
    for (const v of variants(action)) {
      const cells = PERSONAS.map((p) => cell(decideCell(engine, p, action, v)));
      out.push(`| \`${action}\` | ${esc(v.label)} | ${cells.join(' | ')} |`);
    }
  }
  out.push('');
  out.push('## Token scopes');
  out.push('');
  out.push(
    'A token or API key carries scopes; each action belongs to exactly one scope group and is denied without it, whatever the roles. ' +
      "Each row takes the action's first variant above and the first role that may perform it, and asks again with a credential carrying only one scope.",
  );
  out.push('');
  out.push(`| Action | Role | ${TOKEN_SCOPES.map((s) => `only \`${s}\``).join(' | ')} |`);
  out.push(`| --- | --- | ${TOKEN_SCOPES.map(() => ':---:').join(' | ')} |`);
  for (const action of POLICY_ACTIONS) {
    const v = variants(action)[0];
    if (!v) continue;
    const persona = PERSONAS.find((p) => decideCell(engine, p, action, v) === 'allow');
    if (!persona) {
      out.push(`| \`${action}\` | (nobody) | ${TOKEN_SCOPES.map(() => NO).join(' | ')} |`);
      continue;
    }
    const cells = TOKEN_SCOPES.map((s) => cell(decideCell(engine, persona, action, v, { tokenScopes: [s] })));
    out.push(`| \`${action}\` | ${esc(persona.label)} | ${cells.join(' | ')} |`);
  }
  out.push('');
  return out.join('\n');
}

/** Lines that differ between the committed and the generated matrix (by line number). */
export function matrixDiff(committed: string, generated: string): string[] {
  const a = committed.split('\n');
  const b = generated.split('\n');
  const out: string[] = [];
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] === b[i]) continue;
    if (a[i] !== undefined) out.push(`${i + 1}: - ${a[i]}`);
    if (b[i] !== undefined) out.push(`${i + 1}: + ${b[i]}`);
  }
  return out;
}

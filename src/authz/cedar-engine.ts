// The Cedar policy decision point: loads a policy folder (schema + *.cedar), validates
// it against the schema, preparses it once, and decides requests against sliced
// entities. Fail closed: any evaluation error is a denial (MC-AZ-07), since Cedar skips
// a policy whose evaluation errors, and a skipped forbid would fail open.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { Action, ResourceRef, Sensitivity, Stage } from '../core/index.ts';
import { PROJECT_ROLES } from '../core/index.ts';

export const NAMESPACE = 'Modelkeep';
export const SCHEMA_FILE = 'schema.cedarschema';
export const PLATFORM_ADMIN_ROLE = 'platform-admin';

/** Token scopes; a session without a narrower token carries all of them. */
export const TOKEN_SCOPES = ['read', 'download', 'write', 'release', 'trigger', 'admin'] as const;
export type TokenScope = (typeof TOKEN_SCOPES)[number];

export type PrincipalType = 'User' | 'ServiceAccount';
export type ResourceType = 'Platform' | 'Project' | 'Model' | 'ModelVersion' | 'Artifact' | 'Deployment' | 'Pipeline' | 'AuditLog' | 'Binding';
export type EntityType = PrincipalType | ResourceType | 'Role';

/** A Cedar entity reference (the type without namespace). */
export interface EntityRef {
  type: EntityType;
  id: string;
}

/** The request context: discrete values only, computed by the guard. */
export interface DecisionContext {
  mfa: 'fresh' | 'stale' | 'none';
  amr: readonly string[];
  authMethod: string;
  deviceTrusted: boolean;
  riskLevel: 'low' | 'medium' | 'high';
  networkZone: string;
  hourOfDay: number;
  tokenScopes: readonly string[];
  /** version:promote: the stage requested ('none' otherwise). */
  targetStage: Stage;
  /** binding:manage: the role granted or revoked ('' otherwise). */
  targetRole: string;
  /** binding:manage / user:deactivate: whether the target is the caller. */
  selfBinding: boolean;
}

export interface DecideRequest {
  principal: EntityRef;
  action: Action;
  resource: EntityRef;
  context: DecisionContext;
  entities: cedar.EntityJson[];
}

export interface EngineDecision {
  decision: 'allow' | 'deny';
  /** Ids (`@id` annotations) of the policies that determined the decision. */
  reasons: string[];
  /** Evaluation and request errors; any of them makes the decision a denial. */
  errors: string[];
  policyVersion: string;
}

/** A policy folder that does not parse or does not validate against its schema. */
export class PolicyLoadError extends Error {
  readonly errors: readonly string[];
  constructor(dir: string, errors: readonly string[]) {
    super(`policy set in ${dir} refused:\n${errors.map((e) => `  - ${e}`).join('\n')}`);
    this.name = 'PolicyLoadError';
    this.errors = errors;
  }
}

export interface PolicyFile {
  name: string;
  text: string;
}

const uid = (e: EntityRef): cedar.TypeAndId => ({ type: `${NAMESPACE}::${e.type}`, id: e.id });

function describe(e: cedar.DetailedError): string {
  return e.help ? `${e.message} (${e.help})` : e.message;
}

/** `line:column` (1-based) of a character offset in `text`. */
function lineCol(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split('\n').length;
  return `${line}:${offset - before.lastIndexOf('\n')}`;
}

/** `file:line:col: message` for an error whose source offsets are relative to `text` (starting at `base` in the file). */
function located(file: string, fileText: string, e: cedar.DetailedError, base = 0): string {
  const at = e.sourceLocations?.[0];
  return at ? `${file}:${lineCol(fileText, base + at.start)}: ${describe(e)}` : `${file}: ${describe(e)}`;
}

/** sha256 over the sorted file names and contents. */
export function policySetVersion(files: readonly PolicyFile[]): string {
  const h = createHash('sha256');
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    h.update(f.name).update('\0').update(f.text).update('\0');
  }
  return h.digest('hex');
}

/** Reads `schema.cedarschema` and every `*.cedar` file of a folder (not its subfolders). */
export function readPolicyFolder(dir: string): PolicyFile[] {
  const names = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && (d.name === SCHEMA_FILE || d.name.endsWith('.cedar')))
    .map((d) => d.name)
    .sort();
  return names.map((name) => ({ name, text: readFileSync(join(dir, name), 'utf8') }));
}

const ID_ANNOTATION = /^\s*@id\(\s*"((?:[^"\\]|\\.)*)"\s*\)/m;

export class CedarEngine {
  readonly policyVersion: string;
  readonly policyIds: readonly string[];
  readonly files: readonly string[];
  readonly #psetId: string;

  /** Per action: its Action entity and those of the groups it is in (from the schema). */
  #actionEntities = new Map<string, cedar.EntityJson[]>();

  private constructor(policyVersion: string, policyIds: string[], files: string[]) {
    this.policyVersion = policyVersion;
    this.policyIds = policyIds;
    this.files = files;
    this.#psetId = `modelkeep-policies-${policyVersion}`;
  }

  /** Loads and validates a policy folder; throws PolicyLoadError listing every problem. */
  static load(dir: string): CedarEngine {
    return CedarEngine.fromFiles(dir, readPolicyFolder(dir));
  }

  static fromFiles(label: string, files: readonly PolicyFile[]): CedarEngine {
    const errors: string[] = [];
    const schema = files.find((f) => f.name === SCHEMA_FILE);
    if (!schema) throw new PolicyLoadError(label, [`${SCHEMA_FILE} is missing`]);
    const schemaCheck = cedar.checkParseSchema(schema.text);
    if (schemaCheck.type === 'failure') {
      throw new PolicyLoadError(
        label,
        schemaCheck.errors.map((e) => located(SCHEMA_FILE, schema.text, e)),
      );
    }
    const policies: Record<string, string> = {};
    const ids: string[] = [];
    const origin = new Map<string, { file: PolicyFile; base: number }>();
    const cedarFiles = files.filter((f) => f.name.endsWith('.cedar'));
    if (cedarFiles.length === 0) errors.push('no .cedar policy files');
    for (const f of cedarFiles) {
      const parts = cedar.policySetTextToParts(f.text);
      if (parts.type === 'failure') {
        for (const e of parts.errors) errors.push(located(f.name, f.text, e));
        continue;
      }
      if (parts.policy_templates.length > 0) errors.push(`${f.name}: templates are not supported`);
      parts.policies.forEach((text, i) => {
        const base = f.name.replace(/\.cedar$/, '');
        const id = ID_ANNOTATION.exec(text)?.[1] ?? `${base}#${i}`;
        if (Object.hasOwn(policies, id)) errors.push(`${f.name}: duplicate policy id ${id}`);
        policies[id] = text;
        ids.push(id);
        origin.set(id, { file: f, base: Math.max(0, f.text.indexOf(text)) });
      });
    }
    if (errors.length > 0) throw new PolicyLoadError(label, errors);

    const v = cedar.validate({ schema: schema.text, policies: { staticPolicies: policies }, validationSettings: { mode: 'strict' } });
    if (v.type === 'failure') throw new PolicyLoadError(label, v.errors.map(describe));
    if (v.validationErrors.length > 0) {
      throw new PolicyLoadError(
        label,
        v.validationErrors.map((e) => {
          const o = origin.get(e.policyId);
          return o ? `${located(o.file.name, o.file.text, e.error, o.base)} (policy ${e.policyId})` : `policy ${e.policyId}: ${describe(e.error)}`;
        }),
      );
    }

    const version = policySetVersion(files);
    const engine = new CedarEngine(version, ids, files.map((f) => f.name).sort());
    const ps = cedar.preparsePolicySet(engine.#psetId, { staticPolicies: policies });
    if (ps.type === 'failure') throw new PolicyLoadError(label, ps.errors.map(describe));
    const json = cedar.schemaToJson(schema.text);
    if (json.type === 'failure') throw new PolicyLoadError(label, json.errors.map(describe));
    engine.#actionEntities = actionHierarchy(json.json);
    return engine;
  }

  decide(req: DecideRequest): EngineDecision {
    const base = { policyVersion: this.policyVersion };
    let answer: cedar.AuthorizationAnswer;
    try {
      answer = cedar.statefulIsAuthorized({
        principal: uid(req.principal),
        action: { type: `${NAMESPACE}::Action`, id: req.action },
        resource: uid(req.resource),
        context: cedarContext(req.context),
        // Evaluated without the schema (a fifth off each call): the policies were validated
        // against it at load, the guard builds every request and entity itself, and the action
        // hierarchy (each action's scope group) comes along as entities. Any evaluation error
        // still denies (below).
        entities: [...req.entities, ...(this.#actionEntities.get(req.action) ?? [])],
        preparsedPolicySetId: this.#psetId,
      });
    } catch (err) {
      return { ...base, decision: 'deny', reasons: [], errors: [`authorizer failed: ${err instanceof Error ? err.message : String(err)}`] };
    }
    if (answer.type === 'failure') {
      return { ...base, decision: 'deny', reasons: [], errors: answer.errors.map(describe) };
    }
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `policy ${e.policyId}: ${describe(e.error)}`);
    // Fail closed: an erroring policy is skipped by Cedar, so any error denies.
    if (errors.length > 0) return { ...base, decision: 'deny', reasons: diagnostics.reason, errors };
    return { ...base, decision, reasons: diagnostics.reason, errors: [] };
  }
}

/** The action groups of the schema as entities, per action with its ancestors (transitively). */
function actionHierarchy(json: cedar.SchemaJson<string>): Map<string, cedar.EntityJson[]> {
  const ns = (json as Record<string, { actions?: Record<string, { memberOf?: { id: string; type?: string }[] }> }>)[NAMESPACE];
  const actions = ns?.actions ?? {};
  const type = `${NAMESPACE}::Action`;
  const parentsOf = (id: string) => (actions[id]?.memberOf ?? []).map((m) => m.id);
  const out = new Map<string, cedar.EntityJson[]>();
  for (const id of Object.keys(actions)) {
    const seen = new Set<string>();
    const queue = [id];
    const list: cedar.EntityJson[] = [];
    while (queue.length > 0) {
      const a = queue.shift() as string;
      if (seen.has(a)) continue;
      seen.add(a);
      const parents = parentsOf(a);
      list.push({ uid: { type, id: a }, attrs: {}, parents: parents.map((p) => ({ type, id: p })) });
      queue.push(...parents);
    }
    out.set(id, list);
  }
  return out;
}

function cedarContext(c: DecisionContext): cedar.Context {
  return {
    mfa: c.mfa,
    amr: [...c.amr],
    authMethod: c.authMethod,
    deviceTrusted: c.deviceTrusted,
    riskLevel: c.riskLevel,
    networkZone: c.networkZone,
    hourOfDay: c.hourOfDay,
    tokenScopes: [...c.tokenScopes],
    targetStage: c.targetStage,
    targetRole: c.targetRole,
    selfBinding: c.selfBinding,
  };
}

// ---------------------------------------------------------------------------------
// Entity slicing: only the entities one request needs.

/** A role binding: scope is a project id or 'platform'. */
export interface RoleGrant {
  scope: string;
  role: string;
}

export interface PrincipalSpec {
  type: PrincipalType;
  id: string;
  /** Active bindings of the principal (only those for the resource's project and the platform matter). */
  roles: readonly RoleGrant[];
}

/** The resource of a request and what policies read of it. */
export type ResourceSpec =
  | { type: 'Platform' }
  | { type: 'Project'; project: string }
  | { type: 'Model'; id: string; project: string; sensitivity: Sensitivity }
  | { type: 'ModelVersion'; id: string; project: string; model?: string; sensitivity: Sensitivity; stage: Stage }
  | { type: 'Artifact'; id: string; project: string; model?: string; version?: string; sensitivity: Sensitivity; stage: Stage }
  | { type: 'Deployment'; id: string; project: string; environment: string }
  | { type: 'Pipeline'; id: string; project: string }
  | { type: 'AuditLog'; project: string }
  | { type: 'Binding'; id: string; project: string };

export const PLATFORM_ID = 'platform';

export const roleId = (scope: string, role: string): string => (role === PLATFORM_ADMIN_ROLE ? PLATFORM_ADMIN_ROLE : `${scope}/${role}`);

export interface SlicedRequest {
  principal: EntityRef;
  resource: EntityRef;
  entities: cedar.EntityJson[];
}

const entity = (ref: EntityRef, attrs: Record<string, cedar.CedarValueJson>, parents: EntityRef[]): cedar.EntityJson => ({
  uid: uid(ref),
  attrs,
  parents: parents.map(uid),
});

const eref = (ref: EntityRef): cedar.CedarValueJson => ({ __entity: uid(ref) });

/** Builds the principal, its relevant roles, the resource and its ancestors — nothing else. */
export function sliceEntities(principal: PrincipalSpec, resource: ResourceSpec): SlicedRequest {
  const project = resource.type === 'Platform' ? null : resource.project;
  const roles: EntityRef[] = [];
  for (const g of principal.roles) {
    const global = g.role === PLATFORM_ADMIN_ROLE && g.scope === PLATFORM_ID;
    if (!global && (project === null || g.scope !== project || g.role === PLATFORM_ADMIN_ROLE)) continue;
    roles.push({ type: 'Role', id: roleId(g.scope, g.role) });
  }
  const p: EntityRef = { type: principal.type, id: principal.id };
  const entities: cedar.EntityJson[] = [entity(p, {}, roles), ...roles.map((r) => entity(r, {}, []))];
  const platform: EntityRef = { type: 'Platform', id: PLATFORM_ID };
  entities.push(entity(platform, {}, []));
  if (resource.type === 'Platform' || project === null) return { principal: p, resource: platform, entities };

  const projectRef: EntityRef = { type: 'Project', id: project };
  const projectRoles: Record<string, cedar.CedarValueJson> = {};
  for (const role of PROJECT_ROLES) projectRoles[role] = eref({ type: 'Role', id: roleId(project, role) });
  entities.push(entity(projectRef, { project: eref(projectRef), roles: projectRoles }, [platform]));
  const inProject = { project: eref(projectRef) };
  let r: EntityRef;
  switch (resource.type) {
    case 'Project':
      return { principal: p, resource: projectRef, entities };
    case 'Model':
      r = { type: 'Model', id: resource.id };
      entities.push(entity(r, { ...inProject, sensitivity: resource.sensitivity }, [projectRef]));
      break;
    case 'ModelVersion': {
      r = { type: 'ModelVersion', id: resource.id };
      const parents = [projectRef];
      if (resource.model !== undefined) {
        const m: EntityRef = { type: 'Model', id: resource.model };
        entities.push(entity(m, { ...inProject, sensitivity: resource.sensitivity }, [projectRef]));
        parents.push(m);
      }
      entities.push(entity(r, { ...inProject, sensitivity: resource.sensitivity, stage: resource.stage }, parents));
      break;
    }
    case 'Artifact': {
      r = { type: 'Artifact', id: resource.id };
      const parents = [projectRef];
      if (resource.model !== undefined) {
        const m: EntityRef = { type: 'Model', id: resource.model };
        entities.push(entity(m, { ...inProject, sensitivity: resource.sensitivity }, [projectRef]));
        parents.push(m);
        if (resource.version !== undefined) {
          const v: EntityRef = { type: 'ModelVersion', id: resource.version };
          entities.push(entity(v, { ...inProject, sensitivity: resource.sensitivity, stage: resource.stage }, [projectRef, m]));
          parents.push(v);
        }
      }
      entities.push(entity(r, { ...inProject, sensitivity: resource.sensitivity, stage: resource.stage }, parents));
      break;
    }
    case 'Deployment':
      r = { type: 'Deployment', id: resource.id };
      entities.push(entity(r, { ...inProject, environment: resource.environment }, [projectRef]));
      break;
    case 'Pipeline':
      r = { type: 'Pipeline', id: resource.id };
      entities.push(entity(r, inProject, [projectRef]));
      break;
    case 'AuditLog':
      r = { type: 'AuditLog', id: project };
      entities.push(entity(r, inProject, [projectRef]));
      break;
    case 'Binding':
      r = { type: 'Binding', id: resource.id };
      entities.push(entity(r, inProject, [projectRef]));
      break;
  }
  return { principal: p, resource: r, entities };
}

/** Maps the guard's ResourceRef to the Cedar resource services address (for the guard swap). */
export function resourceFromRef(r: ResourceRef): ResourceSpec {
  if (r.projectId === null) return { type: 'Platform' };
  const project = r.projectId;
  const sensitivity: Sensitivity = r.sensitivity ?? 'internal';
  const stage: Stage = r.stage ?? 'none';
  switch (r.type) {
    case 'model':
      return { type: 'Model', id: r.path, project, sensitivity };
    case 'version':
      return { type: 'ModelVersion', id: r.path, project, sensitivity, stage };
    case 'artifact':
      return { type: 'Artifact', id: r.path, project, sensitivity, stage };
    case 'deployment':
      return { type: 'Deployment', id: r.path, project, environment: r.environment ?? 'dev' };
    case 'pipeline':
      return { type: 'Pipeline', id: r.path, project };
    case 'audit':
    case 'alert':
      return { type: 'AuditLog', project };
    case 'binding':
      return { type: 'Binding', id: r.path, project };
    default:
      return { type: 'Project', project };
  }
}

// ---------------------------------------------------------------------------------
// Fixtures (policies/tests/*.json): request → expected decision.

/**
 * One fixture. Roles name a project role in the resource's project ("ml-engineer"),
 * a role elsewhere ("other/ml-engineer"), or "platform-admin". Omitted context fields
 * take FIXTURE_CONTEXT's values; the resource's project defaults to "fraud".
 */
export interface Fixture {
  name: string;
  principal: { type?: PrincipalType; id?: string; roles: string[] };
  action: Action;
  resource: {
    type: ResourceType;
    id?: string;
    project?: string;
    sensitivity?: Sensitivity;
    stage?: Stage;
    environment?: string;
  };
  context?: Partial<DecisionContext>;
  expected: 'allow' | 'deny';
}

/** The context of a fresh, MFA-authenticated interactive session with every scope. */
export const FIXTURE_CONTEXT: DecisionContext = {
  mfa: 'fresh',
  amr: ['pwd', 'mfa'],
  authMethod: 'password',
  deviceTrusted: true,
  riskLevel: 'low',
  networkZone: 'internal',
  hourOfDay: 10,
  tokenScopes: TOKEN_SCOPES,
  targetStage: 'none',
  targetRole: '',
  selfBinding: false,
};

export function fixtureRequest(f: Fixture): DecideRequest {
  const project = f.resource.project ?? 'fraud';
  const roles = f.principal.roles.map((r): RoleGrant => {
    if (r === PLATFORM_ADMIN_ROLE) return { scope: PLATFORM_ID, role: r };
    const slash = r.lastIndexOf('/');
    return slash < 0 ? { scope: project, role: r } : { scope: r.slice(0, slash), role: r.slice(slash + 1) };
  });
  const res = f.resource;
  const id = res.id ?? `${project}/${res.type.toLowerCase()}-1`;
  const sensitivity = res.sensitivity ?? 'internal';
  const stage = res.stage ?? 'none';
  let spec: ResourceSpec;
  switch (res.type) {
    case 'Platform':
      spec = { type: 'Platform' };
      break;
    case 'Project':
    case 'AuditLog':
      spec = { type: res.type, project };
      break;
    case 'Model':
      spec = { type: 'Model', id, project, sensitivity };
      break;
    case 'ModelVersion':
      spec = { type: 'ModelVersion', id, project, model: `${project}/model-1`, sensitivity, stage };
      break;
    case 'Artifact':
      spec = { type: 'Artifact', id, project, model: `${project}/model-1`, version: `${project}/model-1@1`, sensitivity, stage };
      break;
    case 'Deployment':
      spec = { type: 'Deployment', id, project, environment: res.environment ?? 'dev' };
      break;
    case 'Pipeline':
    case 'Binding':
      spec = { type: res.type, id, project };
      break;
  }
  const sliced = sliceEntities({ type: f.principal.type ?? 'User', id: f.principal.id ?? 'alice', roles }, spec);
  return { ...sliced, action: f.action, context: { ...FIXTURE_CONTEXT, ...f.context } };
}

// What the signed-in person may do, for showing and disabling controls. The server decides
// every call regardless; this is only so nobody meets a button that cannot work without
// being told why. Source: GET /v1/me/permissions when the server offers it, otherwise a
// summary derived from the role bindings in GET /v1/me (the default policies' role matrix).
import { type ActionAnswer, ApiError, me, type RoleGrant } from './api.ts';

export type Action =
  | 'project:create'
  | 'model:create'
  | 'version:create'
  | 'artifact:upload'
  | 'version:finalize'
  | 'artifact:download'
  | 'version:promote:staging'
  | 'version:promote:production'
  | 'version:promote:archived'
  | 'binding:read'
  | 'binding:manage'
  | 'audit:read'
  | 'user:manage';

const WRITE: Action[] = ['model:create', 'version:create', 'artifact:upload', 'version:finalize'];
/** The default policies (policies/*.cedar), per project role. */
const ROLE_ACTIONS: Record<string, Action[]> = {
  viewer: [],
  'data-scientist': [...WRITE, 'artifact:download'],
  'ml-engineer': [...WRITE, 'artifact:download', 'version:promote:staging', 'version:promote:archived'],
  'release-manager': ['artifact:download', 'version:promote:staging', 'version:promote:archived', 'version:promote:production'],
  auditor: ['audit:read', 'binding:read'],
  'project-admin': ['audit:read', 'binding:read', 'binding:manage'],
};
const PLATFORM_ADMIN: Action[] = ['project:create', 'binding:read', 'binding:manage', 'audit:read', 'user:manage'];

/** Who may do what, for the "request access" hint. */
const NEEDS: Record<Action, string> = {
  'project:create': 'the platform-admin role',
  'model:create': 'the data-scientist or ml-engineer role',
  'version:create': 'the data-scientist or ml-engineer role',
  'artifact:upload': 'the data-scientist or ml-engineer role',
  'version:finalize': 'the data-scientist or ml-engineer role',
  'artifact:download': 'the data-scientist, ml-engineer or release-manager role',
  'version:promote:staging': 'the ml-engineer or release-manager role',
  'version:promote:archived': 'the ml-engineer or release-manager role',
  'version:promote:production': 'the release-manager role (and a recent MFA check)',
  'binding:read': 'the auditor or project-admin role',
  'binding:manage': 'the project-admin role',
  'audit:read': 'the auditor or project-admin role',
  'user:manage': 'the platform-admin role',
};
const LABEL: Record<Action, string> = {
  'project:create': 'create projects',
  'model:create': 'create models',
  'version:create': 'create versions',
  'artifact:upload': 'upload',
  'version:finalize': 'finalize versions',
  'artifact:download': 'download',
  'version:promote:staging': 'promote to staging',
  'version:promote:archived': 'archive',
  'version:promote:production': 'promote to production',
  'binding:read': 'see access',
  'binding:manage': 'grant access',
  'audit:read': 'read the audit log',
  'user:manage': 'manage users',
};

export function projectRoles(roles: RoleGrant[], project: string): string[] {
  return roles.filter((r) => r.scope === `project:${project}`).map((r) => r.role);
}
export function isPlatformAdmin(roles: RoleGrant[]): boolean {
  return roles.some((r) => r.scope === 'platform' && r.role === 'platform-admin');
}

function fromRoles(roles: RoleGrant[], project: string | null): Set<Action> {
  const out = new Set<Action>();
  if (isPlatformAdmin(roles)) for (const a of PLATFORM_ADMIN) out.add(a);
  if (project) for (const r of projectRoles(roles, project)) for (const a of ROLE_ACTIONS[r] ?? []) out.add(a);
  else for (const r of roles) for (const a of ROLE_ACTIONS[r.role] ?? []) out.add(a);
  return out;
}

/** Server action names of /v1/me/permissions for our UI actions. */
const SERVER_ACTION: Partial<Record<Action, string>> = {
  'model:create': 'model:create',
  'version:create': 'version:create',
  'artifact:upload': 'artifact:upload',
  'version:finalize': 'version:finalize',
  'artifact:download': 'artifact:download',
  'binding:manage': 'binding:manage',
  'binding:read': 'binding:read',
  'audit:read': 'audit:read',
  // On a version: 'version:promote' is the release decision (into production, or out of it).
  'version:promote:production': 'version:promote',
  'version:promote:staging': 'version:promote:staging',
};

export class Capabilities {
  readonly roles: RoleGrant[];
  readonly project: string | null;
  readonly #local: Set<Action>;
  readonly #server: Record<string, ActionAnswer> | null;
  constructor(roles: RoleGrant[], project: string | null, server: Record<string, ActionAnswer> | null) {
    this.roles = roles;
    this.project = project;
    this.#local = fromRoles(roles, project);
    this.#server = server;
  }
  get source(): 'server' | 'roles' {
    return this.#server ? 'server' : 'roles';
  }
  /** `mfaRequired`: refused only for want of a fresh second factor — the action will ask for one. */
  check(action: Action): { allowed: boolean; reason: string; hint: string; mfaRequired: boolean } {
    const serverName = SERVER_ACTION[action];
    const answer = this.#server && serverName ? this.#server[serverName] : undefined;
    const where = this.project ? ` in ${this.project}` : '';
    if (answer) {
      return {
        allowed: answer.allowed,
        reason: `You cannot ${LABEL[action]}${where}${answer.reason ? `: ${answer.reason}` : '.'}`,
        hint: `Request access: ${answer.hint ?? `ask a project-admin for ${NEEDS[action]}.`}`,
        mfaRequired: answer.mfaRequired === true,
      };
    }
    const allowed = this.#local.has(action);
    return { allowed, reason: `You cannot ${LABEL[action]}${where}: that needs ${NEEDS[action]}.`, hint: 'Request access from a project-admin of this project.', mfaRequired: false };
  }
  /** "You are ml-engineer in fraud: you can …; you cannot …". */
  summary(): string {
    const who = this.project
      ? projectRoles(this.roles, this.project)
      : [...new Set(this.roles.map((r) => (r.scope === 'platform' ? r.role : `${r.role} in ${r.scope.replace(/^project:/, '')}`)))];
    const admin = isPlatformAdmin(this.roles);
    const parts = [...who, ...(this.project && admin ? ['platform-admin'] : [])];
    const roleText = parts.length === 0 ? 'You have no role' : `You are ${parts.join(', ')}`;
    const scope = this.project ? ` in ${this.project}` : '';
    if (!this.project) return `${roleText}.`;
    const shown: Action[] = ['artifact:upload', 'artifact:download', 'version:promote:staging', 'version:promote:production', 'binding:manage'];
    const ok = (a: Action) => this.check(a).allowed || this.check(a).mfaRequired;
    const can = shown.filter(ok).map((a) => (this.check(a).mfaRequired ? `${LABEL[a]} (needs a fresh sign-in factor)` : LABEL[a]));
    const cannot = shown.filter((a) => !ok(a)).map((a) => LABEL[a]);
    return `${roleText}${scope}: ${can.length ? `you can ${can.join(', ')}` : 'you can view'}${cannot.length ? `; you cannot ${cannot.join(', ')}` : ''}.`;
  }
}

let permissionsRoute: 'unknown' | 'present' | 'absent' = 'unknown';

/** Capabilities for a project page (server answer when available). */
export async function capabilitiesFor(roles: RoleGrant[], project: string | null, resource: string | null): Promise<Capabilities> {
  if (resource && permissionsRoute !== 'absent') {
    try {
      const p = await me.permissions(resource);
      permissionsRoute = 'present';
      return new Capabilities(roles, project, p.actions);
    } catch (err) {
      if (err instanceof ApiError && err.routeMissing) permissionsRoute = 'absent';
      else if (!(err instanceof ApiError) || err.status === 401) throw err;
    }
  }
  return new Capabilities(roles, project, null);
}

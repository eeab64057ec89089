// The policy enforcement point. Every domain service method calls it before acting;
// it is deny-by-default, records every decision, and answers 404 rather than 403 when
// the caller may not even know the resource exists.
import type { Kysely } from 'kysely';
import { type AuditLog, type Work, withAudit } from '../audit/index.ts';
import type { Action, Authorizer, Decision, RequestContext, ResourceRef } from '../core/index.ts';
import { ModelkeepError } from '../core/index.ts';
import type { Database } from '../storage/index.ts';
import { BindingStore, PLATFORM_SCOPE } from './binding-store.ts';
import { PLATFORM_ADMIN_ACTIONS, projectRequirement, ROLE_MATRIX_VERSION } from './role-matrix.ts';

/** What the operator (offline CLI with access to the data directory) may do: bootstrap only. */
const OPERATOR_ACTIONS: ReadonlySet<Action> = new Set<Action>(['user:create', 'binding:manage', 'user:read']);

export class Guard implements Authorizer<Work> {
  readonly #bindings: BindingStore;
  readonly #audit: AuditLog;

  constructor(db: Kysely<Database>, audit: AuditLog) {
    this.#bindings = new BindingStore(db);
    this.#audit = audit;
  }

  get policyVersion(): string {
    return ROLE_MATRIX_VERSION;
  }

  async check(ctx: RequestContext, action: Action, r: ResourceRef, work?: Work): Promise<Decision> {
    try {
      return await this.#decide(ctx, action, r, work);
    } catch (err) {
      // Fail closed: a decision that cannot be computed is a denial.
      return deny('the permission check could not be completed', r.projectId === null, undefined, err);
    }
  }

  async #decide(ctx: RequestContext, action: Action, r: ResourceRef, work?: Work): Promise<Decision> {
    const p = ctx.principal;
    if (p.kind === 'anonymous') return deny('authentication required', false);
    if (p.kind === 'operator') {
      if (OPERATOR_ACTIONS.has(action)) return allow('local operator bootstrap');
      return deny('the local operator may only bootstrap accounts', true);
    }
    const ex = work?.tx;
    const scopes = r.projectId === null ? [PLATFORM_SCOPE] : [PLATFORM_SCOPE, r.projectId];
    const bindings = await this.#bindings.activeRoles(p.id, scopes, ctx.now, ex);
    const isPlatformAdmin = bindings.some((b) => b.scope === PLATFORM_SCOPE && b.role === 'platform-admin');
    const projectRoles = new Set(bindings.filter((b) => b.scope === r.projectId).map((b) => b.role));
    // A caller with no role in the project may not learn that anything in it exists.
    const visible = r.projectId === null || isPlatformAdmin || projectRoles.size > 0;
    if (!visible) return deny(`${r.type} not found`, false);

    if (action === 'binding:manage') {
      // Nobody changes their own access: self-binding is how insiders escalate (MC-AZ-04).
      if (r.targetPrincipalId === p.id) return deny('nobody may change their own role bindings', true);
      // platform-admin is granted offline by the operator, never through the API.
      if (r.targetRole === 'platform-admin') return deny('platform-admin cannot be granted through the API', true);
    }
    if (isPlatformAdmin && PLATFORM_ADMIN_ACTIONS.has(action)) return allow('platform-admin');
    const req = r.projectId === null ? null : projectRequirement(action, r);
    if (req) {
      const held = req.roles.find((role) => projectRoles.has(role));
      if (held) return allow(`role ${held}`);
      const where = r.projectName ? ` in project ${r.projectName}` : '';
      return deny(`${req.needs}${where}`, true, r.projectName ? `ask a project-admin of ${r.projectName} for the role` : undefined);
    }
    return deny(
      isPlatformAdmin ? 'platform-admin does not include this action (least privilege)' : 'this action needs the platform-admin role',
      true,
    );
  }

  async authorize(ctx: RequestContext, action: Action, r: ResourceRef, work?: Work, details?: Record<string, unknown>): Promise<Decision> {
    const d = await this.check(ctx, action, r, work);
    const event = {
      action,
      resource: `${r.type}:${r.path}`,
      projectId: r.projectId,
      policyVersion: d.policyVersion,
      reason: d.reason,
      ...(details ? { details } : {}),
    };
    if (d.decision === 'allow') {
      const input = { ...event, outcome: 'allow' as const };
      if (work) {
        await this.#audit.append(work.tx, ctx, input);
        work.attempted = input;
      } else {
        await this.#audit.record(ctx, input);
      }
      return d;
    }
    const err = denialError(ctx, r, d);
    const input = { ...event, outcome: 'deny' as const };
    // Inside a transaction the denial is written after the rollback (see inTransaction).
    if (work) throw withAudit(err, input);
    await this.#audit.record(ctx, input);
    throw err;
  }
}

function allow(reason: string): Decision {
  return { decision: 'allow', reason, visible: true, policyVersion: ROLE_MATRIX_VERSION };
}

function deny(reason: string, visible: boolean, hint?: string, _cause?: unknown): Decision {
  return { decision: 'deny', reason, visible, policyVersion: ROLE_MATRIX_VERSION, ...(hint ? { hint } : {}) };
}

function denialError(ctx: RequestContext, r: ResourceRef, d: Decision): ModelkeepError {
  if (ctx.principal.kind === 'anonymous') return new ModelkeepError('unauthenticated', 'authentication required');
  if (!d.visible) return new ModelkeepError('not_found', `${r.type} not found`);
  return new ModelkeepError('forbidden', `not allowed: ${d.reason}`, d.hint ? { hint: d.hint } : {});
}

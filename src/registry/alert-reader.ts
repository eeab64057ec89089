// Reading and acknowledging alerts, through the guard like the audit log they come from:
// platform-admins see every alert; auditors and project-admins see the alerts of their
// projects only (an alert about a user's logins or addresses, with no project, is
// platform-wide). Acknowledging is a change of state with its own audit event.
import type { Kysely } from 'kysely';
import { type Alert, type AlertStore, type AuditLog, inTransaction, type Work } from '../audit/index.ts';
import type { Authorizer, RequestContext, ResourceRef } from '../core/index.ts';
import { ModelkeepError, notFound } from '../core/index.ts';
import type { Database, ProjectsTable } from '../storage/index.ts';
import { projectRef } from './refs.ts';

const ALL_ALERTS: ResourceRef = { type: 'alert', path: '*', projectId: null };

type Scope = { all: true } | { all: false; projects: ProjectsTable[] };

export class AlertReader {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #alerts: AlertStore;
  constructor(deps: { db: Kysely<Database>; audit: AuditLog; guard: Authorizer<Work>; alerts: AlertStore }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#alerts = deps.alerts;
  }

  /** Which alerts the caller may read; a caller who may read none gets the guard's recorded 403. */
  async #scope(ctx: RequestContext): Promise<Scope> {
    if ((await this.#guard.check(ctx, 'audit:read', ALL_ALERTS)).decision === 'allow') return { all: true };
    const projects: ProjectsTable[] = [];
    for (const p of await this.#db.selectFrom('projects').selectAll().execute()) {
      if ((await this.#guard.check(ctx, 'audit:read', { ...projectRef(p), type: 'alert', path: `${p.name}/*` })).decision === 'allow') projects.push(p);
    }
    if (projects.length === 0) {
      // Records the denial through the guard and throws its 403.
      await this.#guard.authorize(ctx, 'audit:read', ALL_ALERTS);
      throw new ModelkeepError('forbidden', 'not allowed');
    }
    return { all: false, projects };
  }

  async list(ctx: RequestContext, q: { unacknowledged?: boolean; limit?: number; after?: string }): Promise<Alert[]> {
    const scope = await this.#scope(ctx);
    if (scope.all) {
      await this.#guard.authorize(ctx, 'audit:read', ALL_ALERTS);
      return this.#alerts.list(q);
    }
    await this.#audit.record(ctx, { action: 'audit:read', outcome: 'allow', resource: 'alert:projects', policyVersion: this.#guard.policyVersion, details: { projects: scope.projects.length } });
    return this.#alerts.list({ ...q, projectIds: scope.projects.map((p) => p.id) });
  }

  /** Acknowledges once (409 after that); the change and its audit event commit together. */
  async acknowledge(ctx: RequestContext, id: string): Promise<Alert> {
    const p = ctx.principal;
    if (p.kind === 'anonymous') throw new ModelkeepError('unauthenticated', 'authentication required');
    const scope = await this.#scope(ctx);
    const alert = await this.#alerts.get(id);
    const visible = alert !== null && (scope.all || scope.projects.some((x) => x.id === alert.projectId));
    // An alert the caller may not read answers exactly like a missing one.
    if (!alert || !visible) {
      // The visibility came from the guard's decisions above: the event carries their policy version.
      await this.#audit.record(ctx, { action: 'alert:lookup', outcome: 'deny', resource: `alert:${id}`, reason: 'not found', policyVersion: this.#guard.policyVersion });
      throw notFound('alert');
    }
    const ref = await this.#ref(alert);
    return inTransaction(this.#db, this.#audit, ctx, async (work) => {
      await this.#guard.authorize(ctx, 'audit:read', ref, work);
      const now = ctx.now;
      if (!(await this.#alerts.acknowledge(id, p.username, now, work.tx))) {
        throw new ModelkeepError('conflict', 'the alert is already acknowledged');
      }
      await this.#audit.append(work.tx, ctx, {
        action: 'alert.acknowledge',
        outcome: 'success',
        resource: `alert:${id}`,
        projectId: alert.projectId,
        details: { rule: alert.rule, severity: alert.severity, eventSeq: alert.eventSeq },
      });
      return { ...alert, acknowledgedAt: now.toISOString(), acknowledgedBy: p.username };
    });
  }

  async #ref(alert: Alert): Promise<ResourceRef> {
    if (alert.projectId === null) return { type: 'alert', path: alert.id, projectId: null };
    const p = await this.#db.selectFrom('projects').selectAll().where('id', '=', alert.projectId).executeTakeFirst();
    return p ? { ...projectRef(p), type: 'alert', path: `${p.name}/${alert.id}` } : { type: 'alert', path: alert.id, projectId: alert.projectId };
  }
}

/** Project id to name for the detectors (per-project working hours). Names never change. */
export function projectNames(db: Kysely<Database>): (id: string) => Promise<string | null> {
  return async (id) => (await db.selectFrom('projects').select('name').where('id', '=', id).executeTakeFirst())?.name ?? null;
}

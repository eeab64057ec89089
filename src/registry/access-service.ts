// Who holds which role in a project, and the offline bootstrap of the first admin.
import type { Kysely } from 'kysely';
import { type AuditLog, type Executor, inTransaction, type Work, withAudit } from '../audit/index.ts';
import { type Binding, BindingStore, PLATFORM_SCOPE } from '../authz/index.ts';
import type { Action, Authorizer, Decision, RequestContext, ResourceRef } from '../core/index.ts';
import { invalidInput, ModelkeepError, notFound, PROJECT_ROLES, validateName } from '../core/index.ts';
import { type IdentityService, ServiceAccountStore, type User } from '../identity/index.ts';
import type { Database, EventBus } from '../storage/index.ts';
import { expireBinding, principalLabel, systemContext } from './binding-expiry.ts';
import type { Lookup } from './lookup.ts';
import { myNotifications, type Notification } from './notifications.ts';
import { modelRef, projectRef, versionRef } from './refs.ts';

export interface BindingView {
  id: string;
  /** `user:NAME` or `service:NAME`. */
  principal: string;
  role: string;
  /** Until when the binding grants (null: until removed). */
  expiresAt: string | null;
  /** `expired` only between its expiry time and the expiry job's sweep; it grants nothing. */
  status: 'active' | 'expired';
  createdAt: string;
  createdBy: string;
}

/** ISO 8601 date-time with a zone: 2030-01-01T00:00:00Z, 2030-01-01T01:00:00.5+01:00. */
const ISO_DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
const DAY_MS = 24 * 60 * 60 * 1000;

export interface PermissionView {
  allowed: boolean;
  reason?: string;
  hint?: string;
  /** Denied only for want of a fresh second factor (the action would answer 428). */
  mfaRequired?: true;
}

const PERMISSION_KINDS = ['project', 'model', 'version', 'deployment', 'pipeline'] as const;

export class AccessService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #identity: IdentityService;
  readonly #lookup: Lookup;
  readonly #bindings: BindingStore;
  readonly #serviceAccounts: ServiceAccountStore;
  readonly #bus: EventBus;
  readonly #maxBindingDays: number;

  constructor(deps: {
    db: Kysely<Database>;
    audit: AuditLog;
    guard: Authorizer<Work>;
    identity: IdentityService;
    lookup: Lookup;
    bus: EventBus;
    /** The longest a binding may be granted for. */
    maxBindingDays: number;
  }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#identity = deps.identity;
    this.#lookup = deps.lookup;
    this.#bindings = new BindingStore(deps.db);
    this.#serviceAccounts = new ServiceAccountStore(deps.db);
    this.#bus = deps.bus;
    this.#maxBindingDays = deps.maxBindingDays;
  }

  async #view(b: Binding, now: Date, ex: Executor): Promise<BindingView> {
    const expired = b.expiresAt !== null && b.expiresAt <= now.toISOString();
    return {
      id: b.id,
      principal: await principalLabel(ex, b.principalKind, b.principalId),
      role: b.role,
      expiresAt: b.expiresAt,
      status: expired ? 'expired' : 'active',
      createdAt: b.createdAt,
      createdBy: b.createdBy,
    };
  }

  /** Who holds which role in the project, and until when. */
  async list(ctx: RequestContext, project: unknown): Promise<BindingView[]> {
    const p = await this.#lookup.project(ctx, project);
    await this.#guard.authorize(ctx, 'binding:read', { ...projectRef(p), type: 'binding', path: `${p.name}/*` });
    const out: BindingView[] = [];
    for (const b of await this.#bindings.list(p.id)) out.push(await this.#view(b, ctx.now, this.#db));
    return out;
  }

  #expiry(ctx: RequestContext, value: unknown): string | null {
    if (value === undefined || value === null) return null;
    const t = typeof value === 'string' && ISO_DATE_TIME.test(value) ? Date.parse(value) : Number.NaN;
    if (Number.isNaN(t)) throw invalidInput('expiresAt must be an ISO 8601 date-time with a time zone, e.g. 2030-01-01T00:00:00Z');
    if (t <= ctx.now.getTime()) throw invalidInput('expiresAt must be in the future');
    // A time-boxed grant that never really ends is a permanent grant in disguise.
    if (t - ctx.now.getTime() > this.#maxBindingDays * DAY_MS) {
      throw invalidInput(`expiresAt must be at most ${this.#maxBindingDays} days ahead`, 'ask again for a shorter grant, or grant without expiresAt');
    }
    return new Date(t).toISOString();
  }

  async add(ctx: RequestContext, project: unknown, input: { principal?: unknown; role?: unknown; expiresAt?: unknown }): Promise<BindingView> {
    const principal = typeof input.principal === 'string' ? input.principal : '';
    // Both are checked for shape before they reach a query or the audit log: a NUL or a
    // control byte would otherwise fail inside PostgreSQL (500/503) instead of answering 422.
    const m = /^(user|service):([a-z0-9][a-z0-9._-]{0,62})$/.exec(principal);
    if (!m) throw invalidInput("principal must be 'user:NAME' or 'service:NAME'");
    const kind = m[1] === 'service' ? 'service' : 'user';
    const name = m[2] ?? '';
    const role = input.role;
    if (typeof role !== 'string' || !/^[a-z][a-z-]{0,31}$/.test(role)) throw invalidInput(`role must be one of ${PROJECT_ROLES.join(', ')}`);
    const expiresAt = this.#expiry(ctx, input.expiresAt);
    const { view, scope, principalId } = await inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const p = await this.#lookup.project(ctx, project, w);
      const target = await this.#target(kind, name, p.id, w.tx);
      await this.#guard.authorize(
        ctx,
        'binding:manage',
        { ...projectRef(p), type: 'binding', path: `${p.name}/${principal}/${role}`, ...(target ? { targetPrincipalId: target.id } : {}), targetRole: role },
        w,
      );
      if (!(PROJECT_ROLES as readonly string[]).includes(role)) throw invalidInput(`role must be one of ${PROJECT_ROLES.join(', ')}`);
      if (!target?.active) throw notFound('principal');
      const existing = await this.#bindings.find(p.id, kind, target.id, role, w.tx);
      if (existing) {
        // An expired binding with the same key is revoked (and audited as such) before the new grant.
        const gone = await expireBinding(w.tx, this.#audit, systemContext(ctx.now, ctx.requestId), existing, ctx.now);
        if (!gone) throw new ModelkeepError('conflict', 'the principal already holds this role in the project');
      }
      const b = await this.#bindings.insert(w.tx, { scope: p.id, principalKind: kind, principalId: target.id, role, expiresAt, createdBy: actor(ctx), now: ctx.now });
      await this.#audit.append(w.tx, ctx, {
        action: 'binding.create',
        outcome: 'success',
        resource: `binding:${p.name}/${principal}/${role}`,
        projectId: p.id,
        details: { bindingId: b.id, principal, role, expiresAt },
      });
      return { view: await this.#view(b, ctx.now, w.tx), scope: p.id, principalId: target.id };
    });
    // After the commit: the guard's cached decisions for this principal are now stale.
    this.#bus.publish({ type: 'bindings.changed', scope, principalId });
    return view;
  }

  /** The principal a binding would name; a service account of another project is not reachable from this one. */
  async #target(kind: 'user' | 'service', name: string, projectId: string, ex: Executor): Promise<{ id: string; active: boolean } | null> {
    if (kind === 'user') {
      const u = await this.#identity.users.byUsername(name, ex);
      return u ? { id: u.id, active: u.status === 'active' } : null;
    }
    const sa = await this.#serviceAccounts.byName(name, ex);
    if (!sa || (sa.projectId !== null && sa.projectId !== projectId)) return null;
    return { id: sa.id, active: sa.status === 'active' };
  }

  async remove(ctx: RequestContext, project: unknown, id: unknown): Promise<void> {
    if (typeof id !== 'string' || !/^bnd_[A-Za-z0-9_-]{1,64}$/.test(id)) throw notFound('binding');
    const { scope, principalId } = await inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const p = await this.#lookup.project(ctx, project, w);
      const b = await this.#bindings.get(id, w.tx);
      const target = b && b.scope === p.id ? b : null;
      await this.#guard.authorize(
        ctx,
        'binding:manage',
        { ...projectRef(p), type: 'binding', path: `${p.name}/${id}`, ...(target ? { targetPrincipalId: target.principalId, targetRole: target.role } : {}) },
        w,
      );
      // A binding of another project (or none) is a refused reach across projects: recorded
      // as a denial, answered like a missing binding (MC-AZ-01, MC-AZ-04).
      if (!target) {
        throw withAudit(notFound('binding'), { action: 'binding:lookup', outcome: 'deny', resource: `binding:${p.name}/${id}`, projectId: p.id, reason: 'not found in this project' });
      }
      await this.#bindings.delete(w.tx, id);
      await this.#audit.append(w.tx, ctx, {
        action: 'binding.delete',
        outcome: 'success',
        resource: `binding:${p.name}/${id}`,
        projectId: p.id,
        details: { principalId: target.principalId, principal: await principalLabel(w.tx, target.principalKind, target.principalId), role: target.role },
      });
      return { scope: p.id, principalId: target.principalId };
    });
    this.#bus.publish({ type: 'bindings.changed', scope, principalId });
  }

  /**
   * GET /v1/me/permissions: what the caller may do to one resource, with the reasons and
   * hints the server would give. Reading the resource is authorized (and audited) first;
   * a resource the caller cannot read answers 404, like every other route.
   */
  async myPermissions(ctx: RequestContext, resource: unknown): Promise<{ resource: string; actions: Record<string, PermissionView> }> {
    const raw = typeof resource === 'string' ? resource : '';
    const colon = raw.indexOf(':');
    const kind = raw.slice(0, colon) as (typeof PERMISSION_KINDS)[number];
    if (colon < 1 || !(PERMISSION_KINDS as readonly string[]).includes(kind) || raw.length > 512) {
      throw invalidInput(`resource must be KIND:PATH with KIND one of ${PERMISSION_KINDS.join(', ')}`, 'e.g. version:fraud/churn/3');
    }
    const parts = raw.slice(colon + 1).split('/');
    const want = { project: 1, model: 2, version: 3, deployment: 2, pipeline: 2 }[kind];
    if (parts.length !== want) throw invalidInput(`a ${kind} is named ${['P', 'P/M', 'P/M/V', 'P/D', 'P/NAME'][PERMISSION_KINDS.indexOf(kind)]}`);
    const p = await this.#lookup.project(ctx, parts[0]);
    let read: { action: Action; ref: ResourceRef };
    let actions: [string, Action, ResourceRef][];
    const pref = projectRef(p);
    const under = (type: string, path: string): ResourceRef => ({ ...pref, type, path });
    switch (kind) {
      case 'project':
        read = { action: 'project:read', ref: pref };
        actions = [
          ['project:read', 'project:read', pref],
          ['model:create', 'model:create', under('model', `${p.name}/*`)],
          ['model:read', 'model:read', under('model', `${p.name}/*`)],
          ['deployment:read', 'deployment:read', under('deployment', `${p.name}/*`)],
          ['pipeline:read', 'pipeline:read', under('pipeline', `${p.name}/*`)],
          ['pipeline:trigger', 'pipeline:trigger', under('pipeline', `${p.name}/*`)],
          ['audit:read', 'audit:read', under('audit', p.name)],
          ['binding:read', 'binding:read', under('binding', `${p.name}/*`)],
          ['binding:manage', 'binding:manage', under('binding', `${p.name}/*`)],
        ];
        break;
      case 'model':
      case 'version': {
        const m = await this.#lookup.model(ctx, p, parts[1]);
        const mref = modelRef(p, m);
        if (kind === 'model') {
          read = { action: 'model:read', ref: mref };
          actions = [
            ['model:read', 'model:read', mref],
            ['version:create', 'version:create', mref],
            ['version:read', 'version:read', { ...mref, type: 'version', path: `${p.name}/${m.name}@*` }],
          ];
          break;
        }
        const v = await this.#lookup.version(ctx, p, m, parts[2]);
        const vref = versionRef(p, m, v);
        const aref: ResourceRef = { ...vref, type: 'artifact', path: `${vref.path}/*` };
        read = { action: 'version:read', ref: vref };
        actions = [
          ['version:read', 'version:read', vref],
          ['artifact:upload', 'artifact:upload', aref],
          ['version:finalize', 'version:finalize', vref],
          ['artifact:download', 'artifact:download', aref],
          // The release decision the console shows: into production (or out of it).
          ['version:promote', 'version:promote', { ...vref, targetStage: v.stage === 'production' ? 'archived' : 'production' }],
          ['version:promote:staging', 'version:promote', { ...vref, targetStage: 'staging' }],
        ];
        break;
      }
      case 'deployment': {
        const name = validateName(parts[1], 'deployment');
        const d = await this.#db.selectFrom('deployments').select(['environment']).where('project_id', '=', p.id).where('name', '=', name).executeTakeFirst();
        const dref: ResourceRef = { ...pref, type: 'deployment', path: `${p.name}/${name}`, ...(d ? { environment: d.environment } : {}) };
        read = { action: 'deployment:read', ref: dref };
        await this.#readable(ctx, read.action, read.ref, 'deployment');
        if (!d) {
          await this.#audit.record(ctx, { action: 'deployment:lookup', outcome: 'deny', resource: `deployment:${dref.path}`, projectId: p.id, reason: 'not found' });
          throw notFound('deployment');
        }
        actions = [
          ['deployment:read', 'deployment:read', dref],
          ['deployment:update', 'deployment:update', dref],
        ];
        return { resource: raw, actions: toViews(await this.#decideAll(ctx, actions)) };
      }
      case 'pipeline': {
        const name = validateName(parts[1], 'pipeline');
        const ref = under('pipeline', `${p.name}/${name}`);
        read = { action: 'pipeline:read', ref };
        actions = [
          ['pipeline:read', 'pipeline:read', ref],
          ['pipeline:trigger', 'pipeline:trigger', ref],
        ];
        break;
      }
    }
    await this.#readable(ctx, read.action, read.ref, kind);
    return { resource: raw, actions: toViews(await this.#decideAll(ctx, actions)) };
  }

  /** Authorizes (and audits) reading the resource; a caller who may not read it learns nothing (404). */
  async #readable(ctx: RequestContext, action: Action, ref: ResourceRef, kind: string): Promise<void> {
    try {
      await this.#guard.authorize(ctx, action, ref);
    } catch (err) {
      if (err instanceof ModelkeepError && (err.code === 'forbidden' || err.code === 'mfa_required')) throw notFound(kind);
      throw err;
    }
  }

  async #decideAll(ctx: RequestContext, actions: [string, Action, ResourceRef][]): Promise<[string, Decision][]> {
    const out: [string, Decision][] = [];
    for (const [key, action, ref] of actions) out.push([key, await this.#guard.check(ctx, action, ref)]);
    return out;
  }

  /** The caller's own recent sensitive events (src/registry/notifications.ts). */
  myNotifications(ctx: RequestContext, limit: unknown): Promise<{ notifications: Notification[] }> {
    return myNotifications(this.#db, ctx, limit);
  }

  /** The caller's own roles, for GET /v1/me. */
  async myRoles(ctx: RequestContext): Promise<{ scope: string; role: string; expiresAt?: string }[]> {
    const p = ctx.principal;
    if (p.kind !== 'user') return [];
    const rows = await this.#db
      .selectFrom('role_bindings')
      .leftJoin('projects', 'projects.id', 'role_bindings.scope')
      .select(['role_bindings.scope', 'role_bindings.role', 'role_bindings.expires_at', 'projects.name'])
      .where('role_bindings.principal_id', '=', p.id)
      .where((eb) => eb.or([eb('role_bindings.expires_at', 'is', null), eb('role_bindings.expires_at', '>', ctx.now.toISOString())]))
      .execute();
    return rows.map((r) => ({
      scope: r.scope === PLATFORM_SCOPE ? 'platform' : `project:${r.name ?? r.scope}`,
      role: r.role,
      ...(r.expires_at ? { expiresAt: r.expires_at } : {}),
    }));
  }

  /** Offline bootstrap by the local operator: creates an account, optionally platform-admin. */
  async bootstrapUser(ctx: RequestContext, input: { username: string; password: string; email?: string; platformAdmin: boolean }): Promise<User> {
    return inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const user = await this.#identity.createUser(ctx, { username: input.username, password: input.password, ...(input.email ? { email: input.email } : {}) }, w);
      if (input.platformAdmin) {
        await this.#guard.authorize(ctx, 'binding:manage', { type: 'binding', path: `platform/user:${user.username}/platform-admin`, projectId: null, targetPrincipalId: user.id, targetRole: 'platform-admin' }, w);
        const b = await this.#bindings.insert(w.tx, { scope: PLATFORM_SCOPE, principalKind: 'user', principalId: user.id, role: 'platform-admin', expiresAt: null, createdBy: 'operator', now: ctx.now });
        await this.#audit.append(w.tx, ctx, { action: 'binding.create', outcome: 'success', resource: `binding:platform/user:${user.username}/platform-admin`, details: { bindingId: b.id } });
      }
      return user;
    }).then((user) => {
      if (input.platformAdmin) this.#bus.publish({ type: 'bindings.changed', scope: PLATFORM_SCOPE });
      return user;
    });
  }
}

function actor(ctx: RequestContext): string {
  return ctx.principal.kind === 'anonymous' ? 'anonymous' : ctx.principal.username;
}

function toViews(decisions: [string, Decision][]): Record<string, PermissionView> {
  const out: Record<string, PermissionView> = {};
  for (const [key, d] of decisions) {
    out[key] =
      d.decision === 'allow'
        ? { allowed: true }
        : { allowed: false, reason: d.reason, ...(d.hint ? { hint: d.hint } : {}), ...(d.mfaRequired ? { mfaRequired: true as const } : {}) };
  }
  return out;
}

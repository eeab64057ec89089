// The policy enforcement point. Every domain service method calls it before acting; it
// computes the discrete decision context, asks the policy decision point (Cedar by
// default, pdp.ts), records every decision with the active policy version, and answers
// 404 rather than 403 when the caller may not even know the resource exists.
//
// Decisions are cached exactly (decision-cache.ts): the key holds everything a decision
// depends on, epochs move with every change made through this process, and an entry never
// outlives the earliest expiry of a binding it was computed from, nor bindingsCacheSeconds
// (the bound on seeing another server process's binding changes). A hit costs no database round trip: the
// principal's bindings are cached per principal epoch too.
import type { Kysely } from 'kysely';
import { type AuditLog, type Work, withAudit } from '../audit/index.ts';
import type { Action, Authorizer, Decision, Principal, RequestContext, ResourceRef } from '../core/index.ts';
import { MFA_ENROLLMENT_REASON, ModelkeepError, mfaEnrollmentRequired, PROJECT_ROLES, SCOPES } from '../core/index.ts';
import type { Database, EventBus } from '../storage/index.ts';
import { BindingStore, PLATFORM_SCOPE } from './binding-store.ts';
import { type DecisionContext, PLATFORM_ADMIN_ROLE, type PrincipalSpec, type RoleGrant, resourceFromRef } from './cedar-engine.ts';
import { type CacheStats, Epochs, Lru } from './decision-cache.ts';
import type { PdpDecision, PdpRequest, PolicyDecisionPoint } from './pdp.ts';
import type { PdpSource } from './policy-holder.ts';

/** What the operator (offline CLI with access to the data directory) may do: bootstrap only. */
const OPERATOR_ACTIONS: ReadonlySet<Action> = new Set<Action>(['user:create', 'binding:manage', 'user:read']);

export const STEP_UP_HINT = 'step up with a second factor (POST /v1/auth/step-up/totp), then retry';

export interface GuardOptions {
  /** A second factor this recent (minutes) counts as "fresh". */
  mfaFreshMinutes: number;
  /** Most decisions kept (least recently used go first); principals' binding slices are bounded alike. 0: no cache. */
  cacheSize: number;
  /**
   * The longest a principal's bindings, and decisions made from them, are served from memory.
   * The bus bumps epochs for changes made through this process; a change made by another
   * server process (replicas on one PostgreSQL) is seen once this has passed.
   */
  bindingsCacheSeconds: number;
  /** Network zone of a client address ('unknown' when none matches). */
  zoneOf?: (ip: string | null) => string;
}

const DEFAULTS: GuardOptions = { mfaFreshMinutes: 15, cacheSize: 100_000, bindingsCacheSeconds: 30 };

/** The active bindings of one principal, and until when that answer holds. */
interface Slice {
  roles: RoleGrant[];
  platformAdmin: boolean;
  projects: ReadonlySet<string>;
  /** Until when this answer holds (ms): the earliest expires_at among the bindings, and at most bindingsCacheSeconds after the read. */
  validUntil: number;
}

interface Entry {
  decision: Decision;
  validUntil: number;
}

type Subject = Extract<Principal, { kind: 'user' | 'service' }>;

export class Guard implements Authorizer<Work> {
  readonly #bindings: BindingStore;
  readonly #audit: AuditLog;
  readonly #policies: PdpSource;
  readonly #opts: GuardOptions;
  readonly #epochs = new Epochs();
  readonly #decisions: Lru<Entry>;
  readonly #slices: Lru<Slice>;
  #hits = 0;
  #misses = 0;

  constructor(deps: { db: Kysely<Database>; audit: AuditLog; policies: PdpSource; bus?: EventBus; options?: Partial<GuardOptions> }) {
    this.#bindings = new BindingStore(deps.db);
    this.#audit = deps.audit;
    this.#policies = deps.policies;
    this.#opts = { ...DEFAULTS, ...deps.options };
    this.#decisions = new Lru(this.#opts.cacheSize);
    this.#slices = new Lru(Math.max(1, Math.ceil(this.#opts.cacheSize / 4)));
    deps.policies.onSwap(() => this.flush());
    deps.bus?.subscribe((e) => {
      switch (e.type) {
        case 'bindings.changed':
          if (e.principalId) this.#epochs.bumpPrincipal(e.principalId);
          else this.#epochs.bumpGlobal();
          break;
        case 'user.revoked':
          this.#epochs.bumpPrincipal(e.userId);
          break;
        case 'resource.changed':
          this.#epochs.bumpResource(e.projectId);
          break;
        case 'policies.reloaded':
          this.flush();
          break;
        // session.revoked: the session id is part of every key, and a revoked session
        // never authenticates again, so its entries are unreachable and age out.
      }
    });
  }

  get policyVersion(): string {
    return this.#policies.pdp.policyVersion;
  }

  get cacheStats(): CacheStats {
    return { hits: this.#hits, misses: this.#misses, size: this.#decisions.size };
  }

  /** Forgets every cached decision and binding slice (policy reload). */
  flush(): void {
    this.#epochs.bumpGlobal();
    this.#decisions.clear();
    this.#slices.clear();
  }

  async check(ctx: RequestContext, action: Action, r: ResourceRef, work?: Work): Promise<Decision> {
    try {
      return await this.#decide(ctx, action, r, work);
    } catch {
      // Fail closed: a decision that cannot be computed is a denial.
      return deny('the permission check could not be completed', r.projectId === null, this.#safeVersion());
    }
  }

  #safeVersion(): string {
    try {
      return this.policyVersion;
    } catch {
      return 'unknown';
    }
  }

  async visible(ctx: RequestContext, r: ResourceRef, work?: Work): Promise<boolean> {
    // The same answers as #decide gives in Decision.visible, in the same order.
    const p = ctx.principal;
    if (p.kind === 'anonymous') return false;
    if (p.kind === 'operator') return true;
    if (p.kind === 'user' && p.projectId != null && r.projectId !== p.projectId) return r.projectId === null;
    if (r.projectId === null) return true;
    try {
      const slice = await this.#slice(p, ctx.now.getTime(), work);
      return sees(slice, r);
    } catch {
      return false;
    }
  }

  async #decide(ctx: RequestContext, action: Action, r: ResourceRef, work?: Work): Promise<Decision> {
    const p = ctx.principal;
    if (p.kind === 'anonymous') return deny('authentication required', false, this.policyVersion);
    if (p.kind === 'operator') {
      // The offline operator is no Cedar principal: it only bootstraps accounts.
      if (OPERATOR_ACTIONS.has(action)) return allow('local operator bootstrap', this.policyVersion);
      return deny('the local operator may only bootstrap accounts', true, this.policyVersion);
    }
    // Mandatory MFA: until the account has a second factor it may do nothing here. The HTTP
    // layer refuses such a session's requests first; this holds for every caller of the guard.
    if (p.kind === 'user' && p.mfaEnrollmentRequired === true) {
      return { ...deny(MFA_ENROLLMENT_REASON, true, this.policyVersion), enrollmentRequired: true };
    }
    // A credential pinned to one project (an API key) acts nowhere else, whatever its owner's
    // roles: another project's resources do not exist for it (404), platform actions are refused.
    if (p.kind === 'user' && p.projectId != null && r.projectId !== p.projectId) {
      return deny('this credential is limited to one project', r.projectId === null, this.policyVersion);
    }
    const context = this.context(ctx, p, r);
    const now = ctx.now.getTime();
    if (work || this.#opts.cacheSize === 0) return this.#evaluate(p, await this.#slice(p, now, work), action, r, context);
    // Epochs are read before any data: an entry computed while a change lands is stored
    // under the old epoch and never found again.
    const g = this.#epochs.global;
    const pe = this.#epochs.principal(p.id);
    const re = r.projectId === null ? 0 : this.#epochs.resource(r.projectId);
    const key = `${this.#policies.generation}|${g}|${p.kind}:${p.id}|${pe}|${re}|${action}|${resourceKey(r)}|${contextKey(context, p.sessionId)}`;
    const hit = this.#decisions.get(key);
    if (hit !== undefined && now < hit.validUntil) {
      this.#hits++;
      return hit.decision;
    }
    this.#misses++;
    const slice = await this.#slice(p, now);
    const decision = this.#evaluate(p, slice, action, r, context);
    this.#decisions.set(key, { decision, validUntil: slice.validUntil });
    return decision;
  }

  /** The principal's active bindings: cached per principal epoch, read afresh inside a transaction. */
  async #slice(p: Subject, now: number, work?: Work): Promise<Slice> {
    if (work || this.#opts.cacheSize === 0) {
      // Inside a transaction: read the bindings with it and keep nothing (the transaction
      // may roll back; writes are rare next to reads).
      return this.#loadSlice(p, now, work?.tx);
    }
    // The epochs are read before the bindings (see #decide).
    const sliceKey = `${this.#epochs.global}|${p.kind}:${p.id}|${this.#epochs.principal(p.id)}`;
    let slice = this.#slices.get(sliceKey);
    if (slice === undefined || now >= slice.validUntil) {
      slice = await this.#loadSlice(p, now);
      this.#slices.set(sliceKey, slice);
    }
    return slice;
  }

  async #loadSlice(p: Subject, now: number, ex?: Work['tx']): Promise<Slice> {
    const rows = await this.#bindings.activeOf(p.kind, p.id, new Date(now), ex);
    let validUntil = now + this.#opts.bindingsCacheSeconds * 1000;
    const projects = new Set<string>();
    let platformAdmin = false;
    for (const b of rows) {
      if (b.expiresAt !== null) validUntil = Math.min(validUntil, Date.parse(b.expiresAt));
      if (b.scope === PLATFORM_SCOPE) platformAdmin ||= b.role === PLATFORM_ADMIN_ROLE;
      else projects.add(b.scope);
    }
    return { roles: rows.map((b) => ({ scope: b.scope, role: b.role })), platformAdmin, projects, validUntil };
  }

  /** The discrete context of a request: everything policies may read besides entities. */
  context(ctx: RequestContext, p: Subject, r: ResourceRef): DecisionContext {
    const windowMs = this.#opts.mfaFreshMinutes * 60_000;
    const mfa = p.mfaAt === null ? 'none' : ctx.now.getTime() - p.mfaAt.getTime() <= windowMs ? 'fresh' : 'stale';
    return {
      mfa,
      amr: [...new Set(p.amr)].sort(),
      authMethod: p.authMethod,
      deviceTrusted: false,
      riskLevel: 'low',
      networkZone: this.#opts.zoneOf?.(ctx.ip) ?? 'unknown',
      hourOfDay: ctx.now.getUTCHours(),
      tokenScopes: p.scopes === null ? SCOPES : [...new Set(p.scopes)].sort(),
      targetStage: r.targetStage ?? 'none',
      targetRole: r.targetRole ?? '',
      selfBinding: r.targetPrincipalId === p.id,
    };
  }

  #request(p: Subject, roles: readonly RoleGrant[], action: Action, r: ResourceRef, context: DecisionContext): PdpRequest {
    const principal: PrincipalSpec = { type: p.kind === 'service' ? 'ServiceAccount' : 'User', id: p.id, roles };
    return { principal, action, resource: resourceFromRef(r), context };
  }

  #evaluate(p: Subject, slice: Slice, action: Action, r: ResourceRef, context: DecisionContext): Decision {
    const pdp = this.#policies.pdp;
    // A caller with no role in the project may not learn that anything in it exists.
    if (!sees(slice, r)) return deny(`${r.type} not found`, false, pdp.policyVersion);
    const req = this.#request(p, slice.roles, action, r, context);
    const d = pdp.decide(req);
    if (d.decision === 'allow' && d.errors.length === 0) return allow(`allowed by ${d.reasons.join(', ') || 'policy'}`, d.policyVersion);
    return explain(pdp, req, d, r, slice, this.#opts.mfaFreshMinutes);
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

/** A caller may know a resource exists when it is platform-wide, or it holds a role in its project (or is platform-admin). */
const sees = (slice: Slice, r: ResourceRef): boolean => r.projectId === null || slice.platformAdmin || slice.projects.has(r.projectId);

const resourceKey = (r: ResourceRef): string =>
  `${r.type}|${r.path}|${r.projectId ?? ''}|${r.projectName ?? ''}|${r.sensitivity ?? ''}|${r.stage ?? ''}|${r.environment ?? ''}|${r.targetStage ?? ''}|${r.targetPrincipalId ?? ''}|${r.targetRole ?? ''}`;

const contextKey = (c: DecisionContext, sessionId: string | null): string =>
  `${c.mfa}|${c.amr.join(',')}|${c.authMethod}|${c.tokenScopes.join(',')}|${c.hourOfDay}|${c.riskLevel}|${c.networkZone}|${c.deviceTrusted ? 1 : 0}|${sessionId ?? ''}`;

function allow(reason: string, policyVersion: string): Decision {
  return { decision: 'allow', reason, visible: true, policyVersion };
}

function deny(reason: string, visible: boolean, policyVersion: string, hint?: string): Decision {
  return { decision: 'deny', reason, visible, policyVersion, ...(hint ? { hint } : {}) };
}

const GUARDRAIL_TEXT: Record<string, { reason: string; hint?: string }> = {
  'guardrails.no-self-binding': { reason: 'nobody may change their own role bindings' },
  'guardrails.no-platform-admin-grant': {
    reason: 'platform-admin cannot be granted through the API',
    hint: 'the operator grants platform-admin offline (modelkeep admin create-user --platform-admin)',
  },
};

/**
 * Why a request was denied, in terms the caller may know: the guardrail that fired, the
 * scope its credential lacks, a second factor it has not given recently (428), or the
 * roles that would allow it — found by asking the engine again with that role added.
 */
function explain(pdp: PolicyDecisionPoint, req: PdpRequest, d: PdpDecision, r: ResourceRef, slice: Slice, mfaMinutes: number): Decision {
  const v = d.policyVersion;
  if (d.errors.length > 0) return deny('the permission check could not be completed (a policy failed to evaluate)', true, v);
  for (const id of d.reasons) {
    const fixed = GUARDRAIL_TEXT[id];
    if (fixed) return deny(fixed.reason, true, v, fixed.hint);
  }
  const scope = d.reasons.find((id) => id.startsWith('guardrails.scope-'))?.slice('guardrails.scope-'.length);
  if (scope !== undefined) {
    return deny(`the credential used lacks the '${scope}' scope`, true, v, `use a console session, or a token or API key that carries the '${scope}' scope`);
  }
  const ideal: DecisionContext = { ...req.context, mfa: 'fresh', amr: [...new Set([...req.context.amr, 'mfa'])].sort(), tokenScopes: SCOPES };
  if (req.context.mfa !== 'fresh' || !req.context.amr.includes('mfa')) {
    // Would a fresh second factor alone lift the denial? Then the caller should step up (428).
    const stepped = pdp.decide({ ...req, context: ideal });
    if (stepped.decision === 'allow' && stepped.errors.length === 0) {
      const why =
        req.context.mfa === 'none'
          ? 'no second factor was given in this session'
          : req.context.mfa === 'stale'
            ? `the last second factor is older than ${mfaMinutes} minutes`
            : 'this session did not sign in with a second factor';
      return { ...deny(`this action needs a second factor within the last ${mfaMinutes} minutes: ${why}`, true, v, STEP_UP_HINT), mfaRequired: true };
    }
  }
  const project = r.projectId;
  const name = r.projectName ?? 'the project';
  if (project !== null) {
    const roles = PROJECT_ROLES.filter((role) => {
      const a = pdp.decide({ ...req, principal: { ...req.principal, roles: [...slice.roles, { scope: project, role }] }, context: ideal });
      return a.decision === 'allow' && a.errors.length === 0;
    });
    if (roles.length > 0) {
      const list = roles.length === 1 ? `the ${roles[0]} role` : `one of the roles ${roles.join(', ')}`;
      const ask = roles.length === 1 ? roles[0] : roles.join(' or ');
      return deny(`this action needs ${list} in project ${name}`, true, v, `ask a project-admin of ${name} for ${ask}, or request just-in-time access`);
    }
  }
  if (!slice.platformAdmin) {
    const a = pdp.decide({ ...req, principal: { ...req.principal, roles: [...slice.roles, { scope: PLATFORM_SCOPE, role: PLATFORM_ADMIN_ROLE }] }, context: ideal });
    if (a.decision === 'allow' && a.errors.length === 0) return deny('this action needs the platform-admin role', true, v);
  }
  return deny(slice.platformAdmin ? 'platform-admin does not include this action (least privilege)' : 'no role allows this action here', true, v);
}

function denialError(ctx: RequestContext, r: ResourceRef, d: Decision): ModelkeepError {
  if (ctx.principal.kind === 'anonymous') return new ModelkeepError('unauthenticated', 'authentication required');
  if (!d.visible) return new ModelkeepError('not_found', `${r.type} not found`);
  const hint = d.hint ? { hint: d.hint } : {};
  if (d.enrollmentRequired) return mfaEnrollmentRequired();
  if (d.mfaRequired) return new ModelkeepError('mfa_required', `not allowed yet: ${d.reason}`, hint);
  return new ModelkeepError('forbidden', `not allowed: ${d.reason}`, hint);
}

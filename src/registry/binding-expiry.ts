// Expiry of role bindings. An expired binding stops granting at once, because the guard
// only reads bindings whose expires_at is after the request's time; this job then
// revokes it for good: deletes the row and records `binding.expired` in the same
// transaction, so each expiry is in the audit log exactly once, whichever replica (or
// concurrent sweep) gets there first, and announces `bindings.changed` so caches drop.
import type { Kysely } from 'kysely';
import type { AuditLog, Executor } from '../audit/index.ts';
import type { Binding } from '../authz/index.ts';
import { BindingStore, PLATFORM_SCOPE } from '../authz/index.ts';
import type { Clock, RequestContext } from '../core/index.ts';
import { newId } from '../core/index.ts';
import type { Database, EventBus } from '../storage/index.ts';

/** `user:NAME` / `service:NAME` for audit and listings (the id when the account is gone). */
export async function principalLabel(ex: Executor, kind: 'user' | 'service', id: string): Promise<string> {
  if (kind === 'user') {
    const u = await ex.selectFrom('users').select('username').where('id', '=', id).executeTakeFirst();
    return `user:${u?.username ?? id}`;
  }
  const s = await ex.selectFrom('service_accounts').select('name').where('id', '=', id).executeTakeFirst();
  return `service:${s?.name ?? id}`;
}

async function scopeLabel(ex: Executor, scope: string): Promise<string> {
  if (scope === PLATFORM_SCOPE) return PLATFORM_SCOPE;
  const p = await ex.selectFrom('projects').select('name').where('id', '=', scope).executeTakeFirst();
  return p?.name ?? scope;
}

/** The context of events the system writes on its own (no human actor). */
export function systemContext(now: Date, requestId = newId('job')): RequestContext {
  return { requestId, principal: { kind: 'anonymous' }, ip: null, userAgent: 'modelkeep-binding-expiry', now };
}

/**
 * Revokes one expired binding inside `tx`: deletes it only if it is still there and
 * expired at `now`, and then (only then) records `binding.expired`. Returns whether
 * this call did it, so a binding is never audited twice.
 */
export async function expireBinding(tx: Executor, audit: AuditLog, ctx: RequestContext, b: Binding, now: Date): Promise<boolean> {
  if (b.expiresAt === null) return false;
  const r = await tx
    .deleteFrom('role_bindings')
    .where('id', '=', b.id)
    .where('expires_at', 'is not', null)
    .where('expires_at', '<=', now.toISOString())
    .executeTakeFirst();
  if (Number(r.numDeletedRows) === 0) return false;
  await audit.append(tx, ctx, {
    action: 'binding.expired',
    outcome: 'success',
    resource: `binding:${b.id}`,
    projectId: b.scope === PLATFORM_SCOPE ? null : b.scope,
    reason: 'the binding reached its expiry time',
    details: {
      principal: await principalLabel(tx, b.principalKind, b.principalId),
      role: b.role,
      scope: await scopeLabel(tx, b.scope),
      expiresAt: b.expiresAt,
    },
  });
  return true;
}

export class BindingExpiry {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #bus: EventBus;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #bindings: BindingStore;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<number> | null = null;
  /** Called when a sweep fails (it is retried at the next interval). */
  onError: (err: unknown) => void = () => {};

  constructor(deps: { db: Kysely<Database>; audit: AuditLog; bus: EventBus; clock: Clock; intervalMs: number }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#bus = deps.bus;
    this.#clock = deps.clock;
    this.#intervalMs = deps.intervalMs;
    this.#bindings = new BindingStore(deps.db);
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.sweep().catch((err: unknown) => this.onError(err));
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => {});
  }

  /** Revokes every binding expired at the clock's now; returns how many this sweep revoked. */
  sweep(): Promise<number> {
    // One sweep at a time in this process; other replicas are kept out by the row delete.
    this.#running ??= this.#sweep().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #sweep(): Promise<number> {
    const now = this.#clock.now();
    let revoked = 0;
    for (;;) {
      const batch = await this.#bindings.expired(now, 200);
      if (batch.length === 0) return revoked;
      let progressed = 0;
      for (const b of batch) {
        const ctx = systemContext(now);
        const done = await this.#db.transaction().execute((tx) => expireBinding(tx, this.#audit, ctx, b, now));
        progressed++;
        if (!done) continue;
        revoked++;
        this.#bus.publish({ type: 'bindings.changed', scope: b.scope, principalId: b.principalId });
      }
      if (progressed < 200) return revoked;
    }
  }
}

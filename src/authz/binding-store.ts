import type { Kysely } from 'kysely';
import type { Executor } from '../audit/index.ts';
import { newId } from '../core/index.ts';
import type { Database, RoleBindingsTable } from '../storage/index.ts';

export const PLATFORM_SCOPE = 'platform';

export interface Binding {
  id: string;
  scope: string;
  principalKind: 'user' | 'service';
  principalId: string;
  role: string;
  expiresAt: string | null;
  createdAt: string;
  createdBy: string;
}

const toBinding = (r: RoleBindingsTable): Binding => ({
  id: r.id,
  scope: r.scope,
  principalKind: r.principal_kind,
  principalId: r.principal_id,
  role: r.role,
  expiresAt: r.expires_at,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

/** Role bindings: who holds which role where. Expired bindings are never returned as active. */
export class BindingStore {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Active roles of a principal in the given scopes. */
  async activeRoles(principalId: string, scopes: readonly string[], now: Date, ex: Executor = this.#db): Promise<Binding[]> {
    if (scopes.length === 0) return [];
    const rows = await ex
      .selectFrom('role_bindings')
      .selectAll()
      .where('principal_id', '=', principalId)
      .where('scope', 'in', scopes)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
      .execute();
    return rows.map(toBinding);
  }

  /** Every active binding of a principal, in every scope (the guard's slice; one indexed query). */
  async activeOf(kind: 'user' | 'service', principalId: string, now: Date, ex: Executor = this.#db): Promise<Binding[]> {
    const rows = await ex
      .selectFrom('role_bindings')
      .selectAll()
      .where('principal_kind', '=', kind)
      .where('principal_id', '=', principalId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
      .execute();
    return rows.map(toBinding);
  }

  /** Scopes (project ids and 'platform') where the principal holds any active role. */
  async activeScopes(principalId: string, now: Date, ex: Executor = this.#db): Promise<Set<string>> {
    const rows = await ex
      .selectFrom('role_bindings')
      .select('scope')
      .where('principal_id', '=', principalId)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
      .execute();
    return new Set(rows.map((r) => r.scope));
  }

  async list(scope: string, ex: Executor = this.#db): Promise<Binding[]> {
    const rows = await ex.selectFrom('role_bindings').selectAll().where('scope', '=', scope).orderBy('created_at').execute();
    return rows.map(toBinding);
  }

  /** Bindings whose expiry time has passed at `now` (oldest expiry first). */
  async expired(now: Date, limit: number, ex: Executor = this.#db): Promise<Binding[]> {
    const rows = await ex
      .selectFrom('role_bindings')
      .selectAll()
      .where('expires_at', 'is not', null)
      .where('expires_at', '<=', now.toISOString())
      .orderBy('expires_at')
      .orderBy('id')
      .limit(limit)
      .execute();
    return rows.map(toBinding);
  }

  /** The binding of this principal, role and scope, active or expired (unique). */
  async find(scope: string, principalKind: 'user' | 'service', principalId: string, role: string, ex: Executor = this.#db): Promise<Binding | null> {
    const r = await ex
      .selectFrom('role_bindings')
      .selectAll()
      .where('scope', '=', scope)
      .where('principal_kind', '=', principalKind)
      .where('principal_id', '=', principalId)
      .where('role', '=', role)
      .executeTakeFirst();
    return r ? toBinding(r) : null;
  }

  async get(id: string, ex: Executor = this.#db): Promise<Binding | null> {
    const r = await ex.selectFrom('role_bindings').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toBinding(r) : null;
  }

  async insert(
    ex: Executor,
    b: { scope: string; principalKind: 'user' | 'service'; principalId: string; role: string; expiresAt: string | null; createdBy: string; now: Date },
  ): Promise<Binding> {
    const row: RoleBindingsTable = {
      id: newId('bnd'),
      scope: b.scope,
      principal_kind: b.principalKind,
      principal_id: b.principalId,
      role: b.role,
      expires_at: b.expiresAt,
      created_at: b.now.toISOString(),
      created_by: b.createdBy,
    };
    await ex.insertInto('role_bindings').values(row).execute();
    return toBinding(row);
  }

  async delete(ex: Executor, id: string): Promise<boolean> {
    const r = await ex.deleteFrom('role_bindings').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }
}

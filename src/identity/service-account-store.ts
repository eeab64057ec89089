import type { Kysely } from 'kysely';
import type { Executor } from '../audit/index.ts';
import type { Database, ServiceAccountsTable } from '../storage/index.ts';

/** A machine identity as bindings and listings see it: never the secret hash. */
export interface ServiceAccount {
  id: string;
  name: string;
  /** The project it belongs to; null: platform-level. */
  projectId: string | null;
  status: 'active' | 'disabled';
}

const toServiceAccount = (r: Pick<ServiceAccountsTable, 'id' | 'name' | 'project_id' | 'status'>): ServiceAccount => ({
  id: r.id,
  name: r.name,
  projectId: r.project_id,
  status: r.status,
});

/** Reads the service_accounts table (migration 0003); creating accounts is elsewhere. */
export class ServiceAccountStore {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }
  async byName(name: string, ex: Executor = this.#db): Promise<ServiceAccount | null> {
    const r = await ex.selectFrom('service_accounts').select(['id', 'name', 'project_id', 'status']).where('name', '=', name).executeTakeFirst();
    return r ? toServiceAccount(r) : null;
  }
  async byId(id: string, ex: Executor = this.#db): Promise<ServiceAccount | null> {
    const r = await ex.selectFrom('service_accounts').select(['id', 'name', 'project_id', 'status']).where('id', '=', id).executeTakeFirst();
    return r ? toServiceAccount(r) : null;
  }
}

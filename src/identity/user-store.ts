import type { Kysely } from 'kysely';
import type { Executor } from '../audit/index.ts';
import type { Database, UsersTable } from '../storage/index.ts';

export interface User {
  id: string;
  username: string;
  email: string | null;
  status: 'active' | 'deactivated';
  createdAt: string;
  deactivatedAt: string | null;
}

export const toUser = (r: UsersTable): User => ({
  id: r.id,
  username: r.username,
  email: r.email,
  status: r.status,
  createdAt: r.created_at,
  deactivatedAt: r.deactivated_at,
});

export class UserStore {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }
  async byUsername(username: string, ex: Executor = this.#db): Promise<UsersTable | null> {
    return (await ex.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst()) ?? null;
  }
  async byId(id: string, ex: Executor = this.#db): Promise<UsersTable | null> {
    return (await ex.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }
  async list(ex: Executor = this.#db): Promise<User[]> {
    return (await ex.selectFrom('users').selectAll().orderBy('username').execute()).map(toUser);
  }
  async insert(ex: Executor, row: UsersTable): Promise<void> {
    await ex.insertInto('users').values(row).execute();
  }
  async deactivate(ex: Executor, id: string, now: Date): Promise<void> {
    await ex.updateTable('users').set({ status: 'deactivated', deactivated_at: now.toISOString() }).where('id', '=', id).execute();
  }
}

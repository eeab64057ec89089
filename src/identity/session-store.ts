import type { Kysely } from 'kysely';
import type { Executor } from '../audit/index.ts';
import type { Database, SessionsTable } from '../storage/index.ts';

export class SessionStore {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }
  async insert(ex: Executor, row: SessionsTable): Promise<void> {
    await ex.insertInto('sessions').values(row).execute();
  }
  async byTokenHash(tokenHash: string): Promise<(SessionsTable & { user_status: string; username: string }) | null> {
    const r = await this.#db
      .selectFrom('sessions')
      .innerJoin('users', 'users.id', 'sessions.user_id')
      .selectAll('sessions')
      .select(['users.status as user_status', 'users.username as username'])
      .where('sessions.token_hash', '=', tokenHash)
      .executeTakeFirst();
    return r ?? null;
  }
  async touch(id: string, at: Date): Promise<void> {
    await this.#db.updateTable('sessions').set({ last_seen_at: at.toISOString() }).where('id', '=', id).execute();
  }
  /** True when this call revoked it (false: it was revoked already). */
  async revoke(ex: Executor, id: string, at: Date, reason: string): Promise<boolean> {
    const r = await ex
      .updateTable('sessions')
      .set({ revoked_at: at.toISOString(), revoked_reason: reason })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
  async revokeAllOfUser(ex: Executor, userId: string, at: Date, reason: string): Promise<string[]> {
    const rows = await ex
      .selectFrom('sessions')
      .select('id')
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
    await ex
      .updateTable('sessions')
      .set({ revoked_at: at.toISOString(), revoked_reason: reason })
      .where('user_id', '=', userId)
      .where('revoked_at', 'is', null)
      .execute();
    return rows.map((r) => r.id);
  }
  async activeOfUser(userId: string): Promise<SessionsTable[]> {
    return this.#db.selectFrom('sessions').selectAll().where('user_id', '=', userId).where('revoked_at', 'is', null).orderBy('created_at').execute();
  }
  async byId(id: string, ex: Executor = this.#db): Promise<SessionsTable | null> {
    return (await ex.selectFrom('sessions').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }
}

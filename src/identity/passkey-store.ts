// Tables of the passkey module: registered credentials and outstanding challenges.
import type { Kysely } from 'kysely';
import type { Executor } from '../audit/index.ts';
import type { Database, WebauthnChallengesTable, WebauthnCredentialsTable } from '../storage/index.ts';

export type Ceremony = WebauthnChallengesTable['ceremony'];

export class PasskeyStore {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  async insertChallenge(row: WebauthnChallengesTable): Promise<void> {
    await this.#db.insertInto('webauthn_challenges').values(row).execute();
  }

  /**
   * Spends a challenge: true only for the first caller, while it is unexpired, for the
   * ceremony, user and binding it was issued to. A conditional UPDATE, so two concurrent
   * uses of one challenge cannot both win (replay).
   */
  async spendChallenge(
    ex: Executor,
    q: { challengeHash: string; ceremony: Ceremony; userId: string | null; binding: string | null; now: Date },
  ): Promise<{ userId: string | null } | null> {
    const row = await ex
      .selectFrom('webauthn_challenges')
      .select(['id', 'user_id', 'binding', 'ceremony', 'expires_at', 'used_at'])
      .where('challenge_hash', '=', q.challengeHash)
      .executeTakeFirst();
    if (!row) return null;
    const r = await ex
      .updateTable('webauthn_challenges')
      .set({ used_at: q.now.toISOString() })
      .where('id', '=', row.id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    // Spent whatever the outcome below: a challenge tried in the wrong ceremony is dead too.
    if (Number(r.numUpdatedRows) !== 1) return null;
    if (row.ceremony !== q.ceremony) return null;
    if (Date.parse(row.expires_at) <= q.now.getTime()) return null;
    // A null user on the challenge (discoverable login) accepts whoever proves a credential.
    if (row.user_id !== null && row.user_id !== q.userId) return null;
    if (row.binding !== q.binding) return null;
    return { userId: row.user_id };
  }

  /** Drops challenges that expired long ago, so the table stays small. */
  async purgeChallenges(before: Date): Promise<void> {
    await this.#db.deleteFrom('webauthn_challenges').where('expires_at', '<', before.toISOString()).execute();
  }

  async insertCredential(ex: Executor, row: WebauthnCredentialsTable): Promise<void> {
    await ex.insertInto('webauthn_credentials').values(row).execute();
  }

  async byCredentialId(credentialId: string, ex: Executor = this.#db): Promise<WebauthnCredentialsTable | null> {
    return (await ex.selectFrom('webauthn_credentials').selectAll().where('credential_id', '=', credentialId).executeTakeFirst()) ?? null;
  }

  async listOfUser(userId: string, ex: Executor = this.#db): Promise<WebauthnCredentialsTable[]> {
    return ex.selectFrom('webauthn_credentials').selectAll().where('user_id', '=', userId).orderBy('created_at').orderBy('id').execute();
  }

  async byId(id: string, ex: Executor = this.#db): Promise<WebauthnCredentialsTable | null> {
    return (await ex.selectFrom('webauthn_credentials').selectAll().where('id', '=', id).executeTakeFirst()) ?? null;
  }

  /** Records a use; only moves the counter forward (a racing older assertion cannot roll it back). */
  async recordUse(ex: Executor, id: string, counter: number, at: Date): Promise<boolean> {
    const r = await ex
      .updateTable('webauthn_credentials')
      .set({ counter, last_used_at: at.toISOString() })
      .where('id', '=', id)
      // An authenticator without a counter reports 0 forever; any other value must grow.
      .where((eb) => (counter === 0 ? eb('counter', '=', 0) : eb('counter', '<', counter)))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async delete(ex: Executor, id: string): Promise<boolean> {
    const r = await ex.deleteFrom('webauthn_credentials').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) === 1;
  }
}

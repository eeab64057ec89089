// Online-guessing defence (NIST SP 800-63B s3.2.2, ASVS 6.3.1, MC-AUTHN-01): failure
// counters per account and per client IP with exponential back-off.
//
// Choices, and why:
// - State lives in the database (table auth_throttle), not in process memory: several
//   server processes share one PostgreSQL, and an attacker who spreads guesses over them
//   must still meet one counter.
// - An attempt is counted BEFORE the secret is checked, under a row lock (PostgreSQL
//   SELECT … FOR UPDATE; SQLite runs one write transaction at a time). So 50 parallel
//   wrong passwords cannot all slip past the cap (CVE-2024-4629): each one takes a slot
//   first, and only the slots the policy grants go on to verification. A success gives the
//   account's slot back (the counter resets).
// - Never a permanent lockout: after `free` failures each further attempt must wait 1 s,
//   2 s, 4 s … up to maxDelaySeconds (15 min by default), and the wait always ends. An
//   attacker can slow a victim's sign-in down to one attempt per 15 min per account
//   key, never shut it out; the legitimate user's success resets the account counter.
// - Unknown accounts are counted exactly like known ones (key = the submitted name), so
//   the throttle does not reveal which accounts exist.
import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.ts';
import { ModelkeepError, sha256Hex } from '../core/index.ts';
import type { Database } from '../storage/index.ts';

export interface ThrottlePolicy {
  accountFreeFailures: number;
  ipFreeFailures: number;
  maxDelaySeconds: number;
  forgetAfterMinutes: number;
}

export interface ThrottleKey {
  /** What is counted, e.g. `login:acct:alice`, `mfa:ip:10.0.0.1`. Stored hashed. */
  key: string;
  /** Failures allowed before back-off starts. */
  free: number;
  /** Reset when the attempt succeeds (account keys; IP keys are not, so one valid account cannot launder an IP). */
  resetOnSuccess: boolean;
}

export class Throttle {
  readonly #db: Kysely<Database>;
  readonly #dialect: 'sqlite' | 'postgres';
  readonly #policy: ThrottlePolicy;
  readonly #clock: Clock;

  constructor(deps: { db: Kysely<Database>; dialect: 'sqlite' | 'postgres'; policy: ThrottlePolicy; clock: Clock }) {
    this.#db = deps.db;
    this.#dialect = deps.dialect;
    this.#policy = deps.policy;
    this.#clock = deps.clock;
  }

  /** The usual pair for an authentication step: one counter for the account, one for the client IP. */
  keys(kind: string, account: string, ip: string | null): ThrottleKey[] {
    const keys: ThrottleKey[] = [{ key: `${kind}:acct:${account.toLowerCase().slice(0, 128)}`, free: this.#policy.accountFreeFailures, resetOnSuccess: true }];
    if (ip) keys.push({ key: `${kind}:ip:${ip}`, free: this.#policy.ipFreeFailures, resetOnSuccess: false });
    return keys;
  }

  /** Seconds to wait after the n-th failure beyond the free ones (n ≥ 1): 1, 2, 4 … capped. */
  delaySeconds(beyondFree: number): number {
    return Math.min(2 ** Math.max(0, beyondFree - 1), this.#policy.maxDelaySeconds);
  }

  /**
   * Takes one attempt slot on every key, counted as a failure until `succeeded` is called.
   * Throws 429 `throttled` (with Retry-After) when any key is waiting; nothing is counted then.
   */
  async attempt(keys: readonly ThrottleKey[]): Promise<void> {
    const now = this.#clock.now();
    const sorted = [...keys].sort((a, b) => (a.key < b.key ? -1 : 1));
    const forgetMs = this.#policy.forgetAfterMinutes * 60_000;
    const retryAfter = await this.#db.transaction().execute(async (tx) => {
      const rows = new Map<string, { failures: number; blocked_until: string | null; updated_at: string }>();
      for (const k of sorted) {
        const id = sha256Hex(k.key);
        await tx
          .insertInto('auth_throttle')
          .values({ key: id, failures: 0, blocked_until: null, updated_at: now.toISOString() })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
        let q = tx.selectFrom('auth_throttle').select(['failures', 'blocked_until', 'updated_at']).where('key', '=', id);
        if (this.#dialect === 'postgres') q = q.forUpdate();
        const row = await q.executeTakeFirstOrThrow();
        const stale = now.getTime() - Date.parse(row.updated_at) >= forgetMs;
        rows.set(id, stale ? { failures: 0, blocked_until: null, updated_at: row.updated_at } : row);
      }
      let wait = 0;
      for (const k of sorted) {
        const r = rows.get(sha256Hex(k.key));
        if (r?.blocked_until && now.getTime() < Date.parse(r.blocked_until)) {
          wait = Math.max(wait, Math.ceil((Date.parse(r.blocked_until) - now.getTime()) / 1000));
        }
      }
      if (wait > 0) return wait;
      for (const k of sorted) {
        const id = sha256Hex(k.key);
        const failures = Number(rows.get(id)?.failures ?? 0) + 1;
        const blocked = failures >= k.free ? new Date(now.getTime() + this.delaySeconds(failures - k.free + 1) * 1000).toISOString() : null;
        await tx.updateTable('auth_throttle').set({ failures, blocked_until: blocked, updated_at: now.toISOString() }).where('key', '=', id).execute();
      }
      return 0;
    });
    if (retryAfter > 0) {
      throw new ModelkeepError('throttled', 'too many failed attempts; try again later', { retryAfterSeconds: retryAfter });
    }
  }

  /**
   * The attempt succeeded: account counters start again from zero; an IP counter only gets
   * back the slot this attempt took (so one valid account cannot wipe its IP's failures,
   * and many users behind one NAT who sign in fine never add up).
   */
  async succeeded(keys: readonly ThrottleKey[]): Promise<void> {
    await this.#db.transaction().execute(async (tx) => {
      for (const k of [...keys].sort((a, b) => (a.key < b.key ? -1 : 1))) {
        const id = sha256Hex(k.key);
        if (k.resetOnSuccess) {
          await tx.deleteFrom('auth_throttle').where('key', '=', id).execute();
          continue;
        }
        let q = tx.selectFrom('auth_throttle').select(['failures']).where('key', '=', id);
        if (this.#dialect === 'postgres') q = q.forUpdate();
        const row = await q.executeTakeFirst();
        if (!row) continue;
        const failures = Math.max(0, Number(row.failures) - 1);
        await tx
          .updateTable('auth_throttle')
          .set({ failures, ...(failures < k.free ? { blocked_until: null } : {}) })
          .where('key', '=', id)
          .execute();
      }
    });
  }
}

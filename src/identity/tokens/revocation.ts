// Revocation everywhere, without a DB round trip on the hot path: every authenticated
// request asks here whether its user / token family / API key / service account is still
// valid. Answers come from an in-process cache that the event bus updates the moment a
// revocation commits (logout-all, deactivation, refresh reuse, key deletion); a miss, or an
// entry older than `ttlMs` (another process may have revoked without telling this one),
// is read from the database. Revocations learnt from the bus never go stale.
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/index.ts';
import type { Database, EventBus } from '../../storage/index.ts';

export interface UserState {
  active: boolean;
  username: string;
  /** Tokens issued before this (epoch ms) are void; null: none. */
  notBefore: number | null;
}

export interface ServiceState {
  active: boolean;
  name: string;
  projectId: string | null;
}

interface Entry<T> {
  value: T;
  /** Epoch ms after which the DB is asked again; Infinity for revocations. */
  until: number;
}

/** A Map bounded to `max` entries; the oldest insertion goes first. */
class Bounded<T> {
  readonly #map = new Map<string, Entry<T>>();
  readonly #max: number;
  constructor(max: number) {
    this.#max = Math.max(1, max);
  }
  get(key: string, now: number): T | undefined {
    const e = this.#map.get(key);
    if (!e) return undefined;
    if (now >= e.until) {
      this.#map.delete(key);
      return undefined;
    }
    return e.value;
  }
  set(key: string, value: T, until: number): void {
    this.#map.delete(key);
    this.#map.set(key, { value, until });
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
}

export class RevocationCache {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;
  readonly #ttlMs: number;
  readonly #users: Bounded<UserState>;
  readonly #families: Bounded<boolean>;
  readonly #keys: Bounded<boolean>;
  readonly #services: Bounded<ServiceState>;
  /** Counts of DB fallbacks, for the bench and tests. */
  dbReads = 0;

  constructor(deps: { db: Kysely<Database>; clock: Clock; bus: EventBus; ttlMs: number; maxEntries: number }) {
    this.#db = deps.db;
    this.#clock = deps.clock;
    this.#ttlMs = deps.ttlMs;
    this.#users = new Bounded(deps.maxEntries);
    this.#families = new Bounded(deps.maxEntries);
    this.#keys = new Bounded(deps.maxEntries);
    this.#services = new Bounded(deps.maxEntries);
    deps.bus.subscribe((e) => {
      switch (e.type) {
        case 'user.revoked':
          this.#users.set(e.userId, { active: false, username: '', notBefore: null }, Number.POSITIVE_INFINITY);
          break;
        case 'user.sessions_revoked':
          // The new not-before is in the DB, committed before the event: read it on next use.
          this.#users.delete(e.userId);
          break;
        case 'token-family.revoked':
          this.#families.set(e.familyId, false, Number.POSITIVE_INFINITY);
          break;
        case 'api-key.revoked':
          this.#keys.set(e.keyId, false, Number.POSITIVE_INFINITY);
          break;
        case 'service-account.revoked':
          this.#services.set(e.serviceAccountId, { active: false, name: '', projectId: null }, Number.POSITIVE_INFINITY);
          break;
        default:
          break;
      }
    });
  }

  #until(): number {
    return this.#clock.now().getTime() + this.#ttlMs;
  }

  async user(id: string): Promise<UserState> {
    const hit = this.#users.get(id, this.#clock.now().getTime());
    if (hit) return hit;
    this.dbReads++;
    const r = await this.#db.selectFrom('users').select(['status', 'username', 'tokens_not_before']).where('id', '=', id).executeTakeFirst();
    const state: UserState = r
      ? { active: r.status === 'active', username: r.username, notBefore: r.tokens_not_before ? Date.parse(r.tokens_not_before) : null }
      : { active: false, username: '', notBefore: null };
    this.#users.set(id, state, state.active ? this.#until() : Number.POSITIVE_INFINITY);
    return state;
  }

  /** True while the family is neither revoked nor past its absolute lifetime. */
  async familyValid(id: string): Promise<boolean> {
    const now = this.#clock.now().getTime();
    const hit = this.#families.get(id, now);
    if (hit !== undefined) return hit;
    this.dbReads++;
    const r = await this.#db.selectFrom('token_families').select(['revoked_at', 'expires_at']).where('id', '=', id).executeTakeFirst();
    const ok = r !== undefined && r.revoked_at === null && now < Date.parse(r.expires_at);
    this.#families.set(id, ok, ok ? Math.min(this.#until(), r ? Date.parse(r.expires_at) : 0) : Number.POSITIVE_INFINITY);
    return ok;
  }

  /** True while the API key is not revoked (expiry is checked by the caller against the key row). */
  async apiKeyValid(id: string): Promise<boolean> {
    const hit = this.#keys.get(id, this.#clock.now().getTime());
    if (hit !== undefined) return hit;
    this.dbReads++;
    const r = await this.#db.selectFrom('api_keys').select('revoked_at').where('id', '=', id).executeTakeFirst();
    const ok = r !== undefined && r.revoked_at === null;
    this.#keys.set(id, ok, ok ? this.#until() : Number.POSITIVE_INFINITY);
    return ok;
  }

  async service(id: string): Promise<ServiceState> {
    const hit = this.#services.get(id, this.#clock.now().getTime());
    if (hit) return hit;
    this.dbReads++;
    const r = await this.#db.selectFrom('service_accounts').select(['status', 'name', 'project_id']).where('id', '=', id).executeTakeFirst();
    const state: ServiceState = r ? { active: r.status === 'active', name: r.name, projectId: r.project_id } : { active: false, name: '', projectId: null };
    this.#services.set(id, state, state.active ? this.#until() : Number.POSITIVE_INFINITY);
    return state;
  }
}

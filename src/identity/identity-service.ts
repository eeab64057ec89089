// Local accounts and console sessions: the thin identity layer of the walking skeleton.
// MFA, tokens and API keys deepen this module without changing its callers.
import { createHmac } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type AuditLog, type Executor, inTransaction, type Work } from '../audit/index.ts';
import type { Authorizer, Clock, Principal, RequestContext } from '../core/index.ts';
import { invalidInput, ModelkeepError, newId, newSecret, notFound, secretsEqual, sha256Hex } from '../core/index.ts';
import type { Database, EventBus, SessionsTable } from '../storage/index.ts';
import { checkPasswordRules, hashPassword, verifyPassword } from './passwords.ts';
import { SessionStore } from './session-store.ts';
import type { Throttle } from './throttle.ts';
import { TotpStore } from './totp.ts';
import { toUser, type User, UserStore } from './user-store.ts';

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
/** Write last-seen at most this often, so authentication is not a write per request. */
const TOUCH_EVERY_MS = 60_000;

export interface SessionConfig {
  idleMinutes: number;
  absoluteHours: number;
  /** How long a verified session is trusted from memory before the row is read again (0: never cached). */
  cacheSeconds: number;
}

export interface MfaConfig {
  requiredForAdmins: boolean;
  freshMinutes: number;
  pendingMinutes: number;
  maxFailuresPerLogin: number;
}

/**
 * A kind of second factor another module provides (passkeys): how many confirmed
 * credentials of it a user has, and the `methods` names login lists when they have one.
 */
export interface SecondFactor {
  methods: readonly string[];
  count(userId: string, ex: Executor): Promise<number>;
}

/** What a password login leads to: a session, or a pending login waiting for a second factor. */
export type LoginOutcome =
  | { status: 'ok'; session: LoginResult; mfaEnrollmentRequired: boolean }
  | { status: 'mfa_required'; mfaToken: string; methods: string[]; expiresAt: Date };

export interface PendingLogin {
  id: string;
  userId: string;
  username: string;
}

export interface LoginResult {
  /** The session secret for the cookie. Shown once; only its hash is stored. */
  token: string;
  csrfToken: string;
  sessionId: string;
  expiresAt: Date;
}

export interface AuthenticatedSession {
  principal: Extract<Principal, { kind: 'user' }>;
  sessionId: string;
  csrfHash: string;
  /** A platform/project admin without a confirmed second factor: everything but enrollment is refused. */
  mfaEnrollmentRequired: boolean;
}

export interface SessionView {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  idleExpiresAt: string;
  ip: string | null;
  userAgent: string | null;
  authTime: string;
  amr: string[];
  mfaAt: string | null;
}

/**
 * A session's CSRF token, derived from its cookie secret (HMAC-SHA256 keyed by it), so the
 * console can ask for it again after a reload (GET /v1/auth/csrf) without the server
 * storing it: only the hash is stored, and only a holder of the HttpOnly cookie can obtain it.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('modelkeep-csrf/1').digest('base64url');
}

export interface SessionListEntry {
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  amr: string[];
  mfaAt: string | null;
  current: boolean;
}

const ADMIN_ROLES = ['platform-admin', 'project-admin'];

/** Most sessions kept in the in-process session cache (oldest evicted first). */
const SESSION_CACHE_MAX = 10_000;

interface CachedSession {
  row: SessionsTable & { user_status: string; username: string };
  /** Last activity as this process knows it (written to the database at most once a minute). */
  lastSeen: number;
  fetchedAt: number;
  /** Mandatory-MFA state, read again after binding or factor changes (null: unknown). */
  enrollment: boolean | null;
}

export function validateUsername(value: unknown): string {
  if (typeof value !== 'string' || !USERNAME.test(value)) {
    throw invalidInput("username must be 1-63 characters of lowercase letters, digits, '.', '_' and '-'");
  }
  return value;
}

export class IdentityService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #users: UserStore;
  readonly #sessions: SessionStore;
  readonly #cfg: SessionConfig;
  readonly #clock: Clock;
  readonly #bus: EventBus;
  readonly #mfa: MfaConfig;
  readonly #totp: TotpStore;
  readonly #factors: SecondFactor[] = [];
  readonly #credentialRevokers: Array<(tx: Executor, userId: string, now: Date, reason: string) => Promise<() => void>> = [];
  /** Per-account and per-IP failure counters; other authentication paths (tokens) use it too. */
  readonly throttle: Throttle;

  constructor(deps: {
    db: Kysely<Database>;
    audit: AuditLog;
    guard: Authorizer<Work>;
    sessions: SessionConfig;
    clock: Clock;
    bus: EventBus;
    mfa: MfaConfig;
    throttle: Throttle;
  }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#users = new UserStore(deps.db);
    this.#sessions = new SessionStore(deps.db);
    this.#cfg = deps.sessions;
    this.#clock = deps.clock;
    this.#bus = deps.bus;
    this.#mfa = deps.mfa;
    this.#totp = new TotpStore(deps.db);
    this.throttle = deps.throttle;
    // The session cache forgets what the bus says is no longer true, before the next request.
    deps.bus.subscribe((e) => {
      switch (e.type) {
        case 'session.revoked':
          for (const [k, v] of this.#sessionCache) if (v.row.id === e.sessionId) this.#sessionCache.delete(k);
          break;
        case 'user.revoked':
        case 'user.sessions_revoked':
          for (const [k, v] of this.#sessionCache) if (v.row.user_id === e.userId) this.#sessionCache.delete(k);
          break;
        case 'bindings.changed':
          // Whether the user is an admin (mandatory MFA) is read again.
          for (const v of this.#sessionCache.values()) if (e.principalId === undefined || v.row.user_id === e.principalId) v.enrollment = null;
          break;
        default:
          break;
      }
    });
  }

  /**
   * Verified sessions by token hash: a repeated cookie authenticates without a database
   * round trip. Revocation in this process reaches it through the bus before the next
   * request; a revocation made by another server process is seen after at most
   * `sessions.cacheSeconds` (then the row is read again).
   */
  readonly #sessionCache = new Map<string, CachedSession>();

  /** Drops a user's cached sessions: their rows are read again on the next request (rows changed outside this service). */
  rereadSessions(userId: string): void {
    for (const [k, v] of this.#sessionCache) if (v.row.user_id === userId) this.#sessionCache.delete(k);
  }

  /** Forgets cached sessions of a user whose second factors changed (mandatory-MFA state). */
  factorsChanged(userId: string): void {
    for (const v of this.#sessionCache.values()) if (v.row.user_id === userId) v.enrollment = null;
  }

  /** Adds a kind of second factor (passkeys): it counts towards factorCount and login's methods. */
  /**
   * Other credential kinds (token families, API keys) that must die with the user's sessions
   * on logout-all and deactivation. Runs in the same transaction; the returned function
   * publishes after commit.
   */
  revokeCredentialsWith(fn: (tx: Executor, userId: string, now: Date, reason: string) => Promise<() => void>): void {
    this.#credentialRevokers.push(fn);
  }

  async #revokeCredentials(tx: Executor, userId: string, now: Date, reason: string): Promise<() => void> {
    const after: Array<() => void> = [];
    for (const fn of this.#credentialRevokers) after.push(await fn(tx, userId, now, reason));
    return () => {
      for (const f of after) f();
    };
  }

  registerFactor(f: SecondFactor): void {
    this.#factors.push(f);
  }

  /** Confirmed second factors of a user: TOTP (0 or 1) plus every registered kind. */
  async factorCount(userId: string, ex: Executor = this.#db): Promise<number> {
    let n = (await this.#totp.isConfirmed(userId, ex)) ? 1 : 0;
    for (const f of this.#factors) n += await f.count(userId, ex);
    return n;
  }

  async #methods(userId: string): Promise<string[]> {
    const out: string[] = [];
    if (await this.#totp.isConfirmed(userId)) {
      out.push('totp');
      if ((await this.#totp.unusedRecoveryCodes(userId)) > 0) out.push('recovery');
    }
    for (const f of this.#factors) if ((await f.count(userId, this.#db)) > 0) out.push(...f.methods);
    return out;
  }

  async #isAdmin(userId: string, now: Date, ex: Executor = this.#db): Promise<boolean> {
    const r = await ex
      .selectFrom('role_bindings')
      .select('id')
      .where('principal_kind', '=', 'user')
      .where('principal_id', '=', userId)
      .where('role', 'in', ADMIN_ROLES)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', now.toISOString())]))
      .executeTakeFirst();
    return r !== undefined;
  }

  /**
   * True when the user holds platform-admin or project-admin (anywhere) and has no confirmed
   * second factor: such a user may only enroll one. Every authentication path (session,
   * access token, API key) must ask this and refuse with 403 mfa_enrollment_required.
   */
  async mfaEnrollmentRequired(userId: string, now: Date): Promise<boolean> {
    if (!this.#mfa.requiredForAdmins) return false;
    if (!(await this.#isAdmin(userId, now))) return false;
    return (await this.factorCount(userId)) === 0;
  }

  /** Throws 428 mfa_required unless a second factor succeeded in this session within the fresh window. */
  requireFreshMfa(ctx: RequestContext): void {
    const p = ctx.principal;
    const fresh = p.kind === 'user' && p.mfaAt !== null && ctx.now.getTime() - p.mfaAt.getTime() <= this.#mfa.freshMinutes * 60_000;
    if (!fresh) {
      throw new ModelkeepError('mfa_required', 'this operation needs a recent second factor', {
        hint: 'confirm with POST /v1/auth/step-up/totp (or a passkey) and retry; without a second factor yet, enroll one first (POST /v1/me/mfa/totp)',
      });
    }
  }

  #user(ctx: RequestContext): Extract<Principal, { kind: 'user' }> {
    const p = ctx.principal;
    if (p.kind !== 'user' || !p.sessionId) throw new ModelkeepError('unauthenticated', 'authentication required');
    return p;
  }

  get users(): UserStore {
    return this.#users;
  }

  /**
   * Password login. Unknown user and wrong password give the same error in similar time,
   * and are throttled alike. A user with a second factor gets a pending login (mfaToken)
   * instead of a session: no session exists until the second factor succeeds.
   */
  async login(ctx: RequestContext, username: unknown, password: unknown): Promise<LoginOutcome> {
    const name = typeof username === 'string' ? username : '';
    const pass = typeof password === 'string' ? password : '';
    const keys = this.throttle.keys('login', name, ctx.ip);
    try {
      await this.throttle.attempt(keys);
    } catch (err) {
      await this.#audit.record(ctx, { action: 'auth.login', outcome: 'failure', resource: `user:${name.slice(0, 64)}`, reason: 'throttled' });
      throw err;
    }
    const row = USERNAME.test(name) ? await this.#users.byUsername(name) : null;
    const ok = await verifyPassword(row?.password_hash ?? null, pass);
    if (!row || !ok || row.status !== 'active') {
      // The detail (which of the three) goes to the audit log only.
      const why = !row ? 'unknown user' : !ok ? 'wrong password' : 'account deactivated';
      await this.#audit.record(ctx, {
        action: 'auth.login',
        outcome: 'failure',
        resource: `user:${name.slice(0, 64)}`,
        reason: why,
      });
      throw new ModelkeepError('invalid_credentials', 'invalid username or password');
    }
    await this.throttle.succeeded(keys);
    const user = { id: row.id, username: row.username };
    if ((await this.factorCount(user.id)) > 0) return this.#startPendingLogin(ctx, user, ['pwd']);
    const enroll = await this.mfaEnrollmentRequired(user.id, ctx.now);
    const session = await this.issueSession(ctx, user, ['pwd'], null);
    return { status: 'ok', session, mfaEnrollmentRequired: enroll };
  }

  async #startPendingLogin(ctx: RequestContext, user: { id: string; username: string }, amr: string[]): Promise<LoginOutcome> {
    const mfaToken = newSecret();
    const expiresAt = new Date(ctx.now.getTime() + this.#mfa.pendingMinutes * 60_000);
    const methods = await this.#methods(user.id);
    const id = newId('mfp');
    await this.#db.transaction().execute(async (tx) => {
      await tx
        .insertInto('mfa_pending_logins')
        .values({ id, token_hash: sha256Hex(mfaToken), user_id: user.id, amr: JSON.stringify(amr), created_at: ctx.now.toISOString(), expires_at: expiresAt.toISOString(), failures: 0, consumed_at: null })
        .execute();
      await this.#audit.append(tx, ctx, { action: 'auth.mfa_challenge', outcome: 'success', resource: `user:${user.username}`, details: { methods, pendingLogin: id } });
    });
    return { status: 'mfa_required', mfaToken, methods, expiresAt };
  }

  /** The user a live pending login belongs to (for a factor that must prepare a challenge, e.g. passkeys), or null. */
  async pendingLogin(mfaToken: unknown, now: Date = this.#clock.now()): Promise<PendingLogin | null> {
    if (typeof mfaToken !== 'string' || mfaToken.length === 0 || mfaToken.length > 128) return null;
    const r = await this.#db
      .selectFrom('mfa_pending_logins')
      .innerJoin('users', 'users.id', 'mfa_pending_logins.user_id')
      .select(['mfa_pending_logins.id as id', 'mfa_pending_logins.user_id as userId', 'users.username as username', 'mfa_pending_logins.expires_at as expiresAt', 'mfa_pending_logins.consumed_at as consumedAt', 'mfa_pending_logins.failures as failures', 'users.status as status'])
      .where('mfa_pending_logins.token_hash', '=', sha256Hex(mfaToken))
      .executeTakeFirst();
    if (!r || r.consumedAt !== null || r.status !== 'active' || now.getTime() >= Date.parse(r.expiresAt) || Number(r.failures) >= this.#mfa.maxFailuresPerLogin) return null;
    return { id: r.id, userId: r.userId, username: r.username };
  }

  /**
   * Finishes a pending login with a second factor: the one way from an mfaToken to a session.
   * `verify` checks the factor (true: it succeeded); `amr` is what it adds ('otp', 'hwk').
   * Failures are counted on the pending login (after maxFailuresPerLogin it is discarded and
   * the user must sign in again) and on the per-account throttle. Success consumes the
   * pending login (single use) and issues a new session with 'mfa' in its amr.
   */
  async completePendingLogin(
    ctx: RequestContext,
    mfaToken: unknown,
    method: string,
    verify: (user: PendingLogin) => Promise<boolean>,
    amr: readonly string[],
  ): Promise<LoginResult> {
    const pending = await this.pendingLogin(mfaToken, ctx.now);
    if (!pending) {
      await this.#audit.record(ctx, { action: 'auth.mfa_failure', outcome: 'failure', resource: 'user:unknown', reason: 'invalid or expired sign-in attempt', details: { method } });
      throw new ModelkeepError('invalid_credentials', 'the sign-in attempt is invalid or has expired', { hint: 'sign in again with your password' });
    }
    const resource = `user:${pending.username}`;
    const keys = this.throttle.keys('mfa', pending.userId, ctx.ip);
    try {
      await this.throttle.attempt(keys);
    } catch (err) {
      await this.#audit.record(ctx, { action: 'auth.mfa_failure', outcome: 'failure', resource, reason: 'throttled', details: { method } });
      throw err;
    }
    const ok = await verify(pending);
    if (!ok) {
      const restart = await this.#db.transaction().execute(async (tx) => {
        await tx.updateTable('mfa_pending_logins').set((eb) => ({ failures: eb('failures', '+', 1) })).where('id', '=', pending.id).execute();
        const row = await tx.selectFrom('mfa_pending_logins').select('failures').where('id', '=', pending.id).executeTakeFirstOrThrow();
        const over = Number(row.failures) >= this.#mfa.maxFailuresPerLogin;
        if (over) await tx.updateTable('mfa_pending_logins').set({ consumed_at: ctx.now.toISOString() }).where('id', '=', pending.id).execute();
        await this.#audit.append(tx, ctx, {
          action: 'auth.mfa_failure',
          outcome: 'failure',
          resource,
          reason: over ? 'wrong or reused code; too many failures, sign-in discarded' : 'wrong or reused code',
          details: { method },
        });
        return over;
      });
      throw new ModelkeepError('invalid_credentials', 'invalid code', restart ? { hint: 'too many wrong codes: sign in again with your password' } : {});
    }
    const consumed = await this.#db
      .updateTable('mfa_pending_logins')
      .set({ consumed_at: ctx.now.toISOString() })
      .where('id', '=', pending.id)
      .where('consumed_at', 'is', null)
      .executeTakeFirst();
    if (Number(consumed.numUpdatedRows) !== 1) throw new ModelkeepError('invalid_credentials', 'the sign-in attempt is invalid or has expired', { hint: 'sign in again with your password' });
    await this.throttle.succeeded(keys);
    const first = await this.#db.selectFrom('mfa_pending_logins').select('amr').where('id', '=', pending.id).executeTakeFirstOrThrow();
    const all = [...new Set([...(JSON.parse(first.amr) as string[]), ...amr, 'mfa'])];
    await this.#audit.record(ctx, { action: method === 'recovery' ? 'auth.recovery_used' : 'auth.mfa_success', outcome: 'success', resource, details: { method } });
    return this.issueSession(ctx, { id: pending.userId, username: pending.username }, all, ctx.now);
  }

  /** Second step of a login with a TOTP code (each code accepted at most once per account). */
  loginTotp(ctx: RequestContext, mfaToken: unknown, code: unknown): Promise<LoginResult> {
    return this.completePendingLogin(ctx, mfaToken, 'totp', (u) => this.#totp.accept(this.#db, u.userId, code, ctx.now, true), ['otp']);
  }

  /** Second step of a login with a single-use recovery code. */
  loginRecovery(ctx: RequestContext, mfaToken: unknown, code: unknown): Promise<LoginResult> {
    return this.completePendingLogin(ctx, mfaToken, 'recovery', (u) => this.#totp.useRecoveryCode(this.#db, u.userId, code, ctx.now), ['otp']);
  }

  /**
   * Enrollment and removal of a factor are sensitive (MC-SES-05): a user who has a factor
   * must have used it recently; a user without one must have signed in recently.
   */
  async #requireRecentAuth(ctx: RequestContext, userId: string): Promise<void> {
    const p = this.#user(ctx);
    if ((await this.factorCount(userId)) > 0) return this.requireFreshMfa(ctx);
    if (ctx.now.getTime() - p.authTime.getTime() > this.#mfa.freshMinutes * 60_000) {
      throw new ModelkeepError('mfa_required', 'this operation needs a recent sign-in', { hint: 'sign out, sign in again and retry' });
    }
  }

  /** Starts TOTP enrollment: a new secret, pending until confirmed with a code. */
  async beginTotp(ctx: RequestContext): Promise<{ secret: string; otpauthUrl: string }> {
    const p = this.#user(ctx);
    if (await this.#totp.isConfirmed(p.id)) throw new ModelkeepError('conflict', 'an authenticator app is already set up', { hint: 'remove it first (DELETE /v1/me/mfa/totp)' });
    await this.#requireRecentAuth(ctx, p.id);
    return this.#db.transaction().execute(async (tx) => {
      const r = await this.#totp.begin(tx, p.id, p.username, ctx.now);
      await this.#audit.append(tx, ctx, { action: 'auth.mfa_enrollment_started', outcome: 'success', resource: `user:${p.username}`, details: { method: 'totp' } });
      return r;
    });
  }

  /** Confirms TOTP enrollment with a first code; returns 10 recovery codes (shown once). */
  async confirmTotp(ctx: RequestContext, code: unknown): Promise<{ recoveryCodes: string[] }> {
    const p = this.#user(ctx);
    const keys = this.throttle.keys('mfa', p.id, ctx.ip);
    await this.throttle.attempt(keys);
    const codes = await this.#db.transaction().execute(async (tx) => {
      if (!(await this.#totp.accept(tx, p.id, code, ctx.now, false))) return null;
      const c = await this.#totp.newRecoveryCodes(tx, p.id, ctx.now);
      await this.#audit.append(tx, ctx, { action: 'auth.mfa_enrolled', outcome: 'success', resource: `user:${p.username}`, details: { method: 'totp', recoveryCodes: c.length } });
      return c;
    });
    if (!codes) {
      await this.#audit.record(ctx, { action: 'auth.mfa_enrolled', outcome: 'failure', resource: `user:${p.username}`, reason: 'no pending enrollment, or wrong code', details: { method: 'totp' } });
      throw invalidInput('the code is not valid', 'start with POST /v1/me/mfa/totp and enter the current code of the app');
    }
    await this.throttle.succeeded(keys);
    this.factorsChanged(p.id);
    return { recoveryCodes: codes };
  }

  /** Removes the authenticator app (and its recovery codes). A confirmed one needs a fresh second factor. */
  async removeTotp(ctx: RequestContext): Promise<void> {
    const p = this.#user(ctx);
    const t = await this.#totp.get(p.id);
    if (!t) return; // idempotent: nothing to remove
    if (t.confirmed) this.requireFreshMfa(ctx);
    await this.#db.transaction().execute(async (tx) => {
      await this.#totp.remove(tx, p.id);
      const left = await this.factorCount(p.id, tx);
      await this.#audit.append(tx, ctx, { action: 'auth.mfa_removed', outcome: 'success', resource: `user:${p.username}`, details: { method: 'totp', factorsLeft: left } });
    });
    this.factorsChanged(p.id);
  }

  /** Replaces the recovery codes. Needs a fresh second factor. */
  async regenerateRecoveryCodes(ctx: RequestContext): Promise<{ recoveryCodes: string[] }> {
    const p = this.#user(ctx);
    if (!(await this.#totp.isConfirmed(p.id))) throw notFound('authenticator');
    this.requireFreshMfa(ctx);
    return this.#db.transaction().execute(async (tx) => {
      const c = await this.#totp.newRecoveryCodes(tx, p.id, ctx.now);
      await this.#audit.append(tx, ctx, { action: 'auth.recovery_codes_regenerated', outcome: 'success', resource: `user:${p.username}`, details: { count: c.length } });
      return { recoveryCodes: c };
    });
  }

  /** What the user has set up, for the console's security page. */
  async mfaStatus(ctx: RequestContext): Promise<{ totp: boolean; recoveryCodesLeft: number; factors: number; enrollmentRequired: boolean }> {
    const p = this.#user(ctx);
    const totp = await this.#totp.isConfirmed(p.id);
    return {
      totp,
      recoveryCodesLeft: totp ? await this.#totp.unusedRecoveryCodes(p.id) : 0,
      factors: await this.factorCount(p.id),
      enrollmentRequired: await this.mfaEnrollmentRequired(p.id, ctx.now),
    };
  }

  /** Step-up with a TOTP code: marks MFA now and rotates the session (new id, cookie and CSRF token). */
  async stepUpTotp(ctx: RequestContext, code: unknown): Promise<LoginResult> {
    const p = this.#user(ctx);
    const keys = this.throttle.keys('mfa', p.id, ctx.ip);
    try {
      await this.throttle.attempt(keys);
    } catch (err) {
      await this.#audit.record(ctx, { action: 'auth.mfa_failure', outcome: 'failure', resource: `user:${p.username}`, reason: 'throttled', details: { method: 'totp', stepUp: true } });
      throw err;
    }
    if (!(await this.#totp.accept(this.#db, p.id, code, ctx.now, true))) {
      await this.#audit.record(ctx, { action: 'auth.mfa_failure', outcome: 'failure', resource: `user:${p.username}`, reason: 'wrong or reused code', details: { method: 'totp', stepUp: true } });
      throw new ModelkeepError('invalid_credentials', 'invalid code');
    }
    await this.throttle.succeeded(keys);
    await this.#audit.record(ctx, { action: 'auth.mfa_success', outcome: 'success', resource: `user:${p.username}`, details: { method: 'totp', stepUp: true } });
    return this.rotateSession(ctx, ['otp', 'mfa'], ctx.now);
  }

  /**
   * Replaces the caller's session by a new one (new id, secret and CSRF token; the old one is
   * dead at once), keeping its creation time and absolute expiry, adding `amr` and setting
   * mfaAt. Step-up with any factor ends here: no fixation across a privilege change.
   */
  async rotateSession(ctx: RequestContext, amr: readonly string[], mfaAt: Date | null): Promise<LoginResult> {
    const p = this.#user(ctx);
    const oldId = p.sessionId as string;
    const token = newSecret();
    const csrfToken = csrfTokenFor(token);
    const sessionId = newId('ses');
    const result = await this.#db.transaction().execute(async (tx) => {
      const old = await this.#sessions.byId(oldId, tx);
      if (!old || old.revoked_at !== null || !(await this.#sessions.revoke(tx, oldId, ctx.now, 'step-up'))) {
        throw new ModelkeepError('unauthenticated', 'authentication required');
      }
      const all = [...new Set([...(JSON.parse(old.amr) as string[]), ...amr])];
      await this.#sessions.insert(tx, {
        ...old,
        id: sessionId,
        token_hash: sha256Hex(token),
        csrf_hash: sha256Hex(csrfToken),
        amr: JSON.stringify(all),
        last_seen_at: ctx.now.toISOString(),
        ip: ctx.ip,
        user_agent: ctx.userAgent?.slice(0, 512) ?? null,
        revoked_at: null,
        revoked_reason: null,
        mfa_at: (mfaAt ?? (old.mfa_at ? new Date(old.mfa_at) : null))?.toISOString() ?? null,
      });
      await this.#audit.append(tx, ctx, {
        action: 'auth.step_up',
        outcome: 'success',
        resource: `user:${p.username}`,
        details: { previousSession: oldId, newSession: sessionId, amr: all },
      });
      return { token, csrfToken, sessionId, expiresAt: new Date(old.expires_at) };
    });
    this.#bus.publish({ type: 'session.revoked', sessionId: oldId });
    return result;
  }

  /**
   * Starts a new session for a user who has just proven who they are (password, second
   * factor, passkey). A fresh random id every time: an id planted before login is worthless
   * (fixation). `mfaAt` is when a second factor (or passkey) succeeded, if it did.
   */
  async issueSession(ctx: RequestContext, user: { id: string; username: string }, amr: readonly string[], mfaAt: Date | null): Promise<LoginResult> {
    const now = ctx.now;
    const token = newSecret();
    const csrfToken = csrfTokenFor(token);
    const sessionId = newId('ses');
    const expiresAt = new Date(now.getTime() + this.#cfg.absoluteHours * 3600_000);
    const principal: Principal = { kind: 'user', id: user.id, username: user.username, sessionId, amr, authTime: now, mfaAt, authMethod: 'session', scopes: null };
    const sctx: RequestContext = { ...ctx, principal };
    await this.#db.transaction().execute(async (tx) => {
      await this.#sessions.insert(tx, {
        id: sessionId,
        token_hash: sha256Hex(token),
        csrf_hash: sha256Hex(csrfToken),
        user_id: user.id,
        amr: JSON.stringify(amr),
        auth_time: now.toISOString(),
        created_at: now.toISOString(),
        last_seen_at: now.toISOString(),
        expires_at: expiresAt.toISOString(),
        ip: ctx.ip,
        user_agent: ctx.userAgent?.slice(0, 512) ?? null,
        revoked_at: null,
        revoked_reason: null,
        mfa_at: mfaAt?.toISOString() ?? null,
      });
      await this.#audit.append(tx, sctx, { action: 'auth.login', outcome: 'success', resource: `user:${user.username}`, details: { amr: [...amr] } });
    });
    return { token, csrfToken, sessionId, expiresAt };
  }

  /** Step-up with a factor verified elsewhere (a passkey): the same rotation as a TOTP step-up. */
  async stepUp(ctx: RequestContext, sessionId: string, method: 'hwk' | 'otp'): Promise<LoginResult> {
    const p = ctx.principal;
    if (p.kind !== 'user' || p.sessionId !== sessionId) throw new ModelkeepError('unauthenticated', 'authentication required');
    return this.rotateSession(ctx, [method, 'mfa'], ctx.now);
  }

  /** Resolves a session cookie to a principal, or null when it is unknown, revoked, expired or idle. */
  async authenticateSession(token: string, meta: { requestId: string; ip: string | null; userAgent: string | null }): Promise<AuthenticatedSession | null> {
    if (token.length === 0 || token.length > 128) return null;
    const now = this.#clock.now();
    const hash = sha256Hex(token);
    let cached = this.#sessionCache.get(hash);
    if (cached && now.getTime() - cached.fetchedAt >= this.#cfg.cacheSeconds * 1000) {
      this.#sessionCache.delete(hash);
      cached = undefined;
    }
    if (!cached) {
      const s = await this.#sessions.byTokenHash(hash);
      if (!s || s.revoked_at !== null || s.user_status !== 'active') return null;
      cached = { row: s, lastSeen: Date.parse(s.last_seen_at), fetchedAt: now.getTime(), enrollment: null };
      if (this.#cfg.cacheSeconds > 0) {
        if (this.#sessionCache.size >= SESSION_CACHE_MAX) {
          const oldest = this.#sessionCache.keys().next().value;
          if (oldest !== undefined) this.#sessionCache.delete(oldest);
        }
        this.#sessionCache.set(hash, cached);
      }
    }
    const s = cached.row;
    const expired =
      now.getTime() >= Date.parse(s.expires_at)
        ? 'absolute lifetime reached'
        : now.getTime() >= cached.lastSeen + this.#cfg.idleMinutes * 60_000
          ? 'idle timeout'
          : null;
    if (expired) {
      this.#sessionCache.delete(hash);
      // The first use of an expired session ends it for good and records the expiry once.
      const ctx: RequestContext = {
        ...meta,
        now,
        principal: { kind: 'user', id: s.user_id, username: s.username, sessionId: s.id, amr: JSON.parse(s.amr) as string[], authTime: new Date(s.auth_time), mfaAt: s.mfa_at ? new Date(s.mfa_at) : null, authMethod: 'session', scopes: null },
      };
      await this.#db.transaction().execute(async (tx) => {
        if (await this.#sessions.revoke(tx, s.id, now, expired)) {
          await this.#audit.append(tx, ctx, { action: 'auth.session_expired', outcome: 'failure', resource: `session:${s.id}`, reason: expired });
        }
      });
      return null;
    }
    if (now.getTime() - cached.lastSeen >= TOUCH_EVERY_MS) {
      await this.#sessions.touch(s.id, now);
      cached.lastSeen = now.getTime();
    }
    if (cached.enrollment === null) cached.enrollment = await this.mfaEnrollmentRequired(s.user_id, now);
    return {
      principal: {
        kind: 'user',
        id: s.user_id,
        username: s.username,
        sessionId: s.id,
        amr: JSON.parse(s.amr) as string[],
        authTime: new Date(s.auth_time),
        mfaAt: s.mfa_at ? new Date(s.mfa_at) : null,
        authMethod: 'session',
        scopes: null,
        mfaEnrollmentRequired: cached.enrollment,
      },
      sessionId: s.id,
      csrfHash: s.csrf_hash,
      mfaEnrollmentRequired: cached.enrollment,
    };
  }

  /** Constant-time check of a CSRF token against the session's stored hash. */
  csrfMatches(session: AuthenticatedSession, presented: string | undefined): boolean {
    if (!presented) return false;
    return secretsEqual(sha256Hex(presented), session.csrfHash);
  }

  async logout(ctx: RequestContext): Promise<void> {
    const sid = this.#user(ctx).sessionId as string;
    await this.#db.transaction().execute(async (tx) => {
      await this.#sessions.revoke(tx, sid, ctx.now, 'logout');
      await this.#audit.append(tx, ctx, { action: 'auth.logout', outcome: 'success', resource: `session:${sid}` });
    });
    this.#bus.publish({ type: 'session.revoked', sessionId: sid });
  }

  /**
   * Ends every session of the caller and marks every token issued up to now as dead
   * (users.tokens_not_before; token verification compares iat). Token modules listen for
   * 'user.sessions_revoked' on the bus and drop their token families and caches.
   */
  async logoutAll(ctx: RequestContext): Promise<{ sessionsEnded: number }> {
    const p = this.#user(ctx);
    const { ended, publish } = await this.#db.transaction().execute(async (tx) => {
      const ids = await this.#sessions.revokeAllOfUser(tx, p.id, ctx.now, 'logout-all');
      await tx.updateTable('users').set({ tokens_not_before: ctx.now.toISOString() }).where('id', '=', p.id).execute();
      // Refresh-token families too: "everywhere" includes the CLI and other devices (MC-SES-04).
      const after = await this.#revokeCredentials(tx, p.id, ctx.now, 'logout-all');
      await this.#audit.append(tx, ctx, { action: 'auth.logout_all', outcome: 'success', resource: `user:${p.username}`, details: { sessionsEnded: ids.length } });
      return { ended: ids, publish: after };
    });
    publish();
    for (const sessionId of ended) this.#bus.publish({ type: 'session.revoked', sessionId });
    this.#bus.publish({ type: 'user.sessions_revoked', userId: p.id, at: ctx.now });
    return { sessionsEnded: ended.length };
  }

  /** The caller's live sessions (not revoked, not past idle or absolute expiry). */
  async listSessions(ctx: RequestContext): Promise<SessionListEntry[]> {
    const p = this.#user(ctx);
    const now = ctx.now.getTime();
    const rows = await this.#sessions.activeOfUser(p.id);
    return rows
      .filter((s) => now < Date.parse(s.expires_at) && now < Date.parse(s.last_seen_at) + this.#cfg.idleMinutes * 60_000)
      .map((s) => ({
        id: s.id,
        createdAt: s.created_at,
        lastSeenAt: s.last_seen_at,
        expiresAt: s.expires_at,
        ip: s.ip,
        userAgent: s.user_agent,
        amr: JSON.parse(s.amr) as string[],
        mfaAt: s.mfa_at,
        current: s.id === p.sessionId,
      }));
  }

  /** Ends one of the caller's sessions. Another user's session id is simply not found. */
  async endSession(ctx: RequestContext, sessionId: string): Promise<{ current: boolean }> {
    const p = this.#user(ctx);
    const done = await this.#db.transaction().execute(async (tx) => {
      const s = await this.#sessions.byId(sessionId, tx);
      if (!s || s.user_id !== p.id || s.revoked_at !== null) return false;
      await this.#sessions.revoke(tx, sessionId, ctx.now, 'ended by user');
      await this.#audit.append(tx, ctx, { action: 'auth.session_ended', outcome: 'success', resource: `session:${sessionId}` });
      return true;
    });
    if (!done) throw notFound('session');
    this.#bus.publish({ type: 'session.revoked', sessionId });
    return { current: sessionId === p.sessionId };
  }

  async me(ctx: RequestContext): Promise<{ user: User; session: SessionView | null }> {
    const p = ctx.principal;
    if (p.kind !== 'user') throw new ModelkeepError('unauthenticated', 'authentication required');
    const row = await this.#users.byId(p.id);
    if (!row) throw new ModelkeepError('unauthenticated', 'authentication required');
    const s = p.sessionId ? await this.#sessions.byId(p.sessionId) : null;
    return { user: toUser(row), session: s ? this.#sessionView(s) : null };
  }

  #sessionView(s: { id: string; created_at: string; last_seen_at: string; expires_at: string; ip: string | null; user_agent: string | null; auth_time: string; amr: string; mfa_at: string | null }): SessionView {
    const idle = new Date(Date.parse(s.last_seen_at) + this.#cfg.idleMinutes * 60_000);
    const abs = new Date(s.expires_at);
    return {
      id: s.id,
      createdAt: s.created_at,
      lastSeenAt: s.last_seen_at,
      expiresAt: s.expires_at,
      idleExpiresAt: (idle < abs ? idle : abs).toISOString(),
      ip: s.ip,
      userAgent: s.user_agent,
      authTime: s.auth_time,
      amr: JSON.parse(s.amr) as string[],
      mfaAt: s.mfa_at,
    };
  }

  async createUser(ctx: RequestContext, input: { username: unknown; password?: unknown; email?: unknown }, work?: Work): Promise<User> {
    const username = validateUsername(input.username);
    const email = input.email === undefined || input.email === null ? null : input.email;
    if (email !== null && (typeof email !== 'string' || !EMAIL.test(email))) throw invalidInput('email is not a valid address');
    const password = input.password === undefined ? null : checkPasswordRules(input.password);
    const passwordHash = password === null ? null : await hashPassword(password);
    const run = async (w: Work): Promise<User> => {
      await this.#guard.authorize(ctx, 'user:create', { type: 'user', path: username, projectId: null }, w);
      if (await this.#users.byUsername(username, w.tx)) throw new ModelkeepError('conflict', 'a user with this username exists');
      const row = {
        id: newId('usr'),
        username,
        email,
        password_hash: passwordHash,
        status: 'active' as const,
        created_at: ctx.now.toISOString(),
        deactivated_at: null,
        tokens_not_before: null,
      };
      await this.#users.insert(w.tx, row);
      await this.#audit.append(w.tx, ctx, { action: 'user.create', outcome: 'success', resource: `user:${username}`, details: { userId: row.id } });
      return toUser(row);
    };
    return work ? run(work) : inTransaction(this.#db, this.#audit, ctx, run);
  }

  async listUsers(ctx: RequestContext): Promise<User[]> {
    await this.#guard.authorize(ctx, 'user:read', { type: 'user', path: '*', projectId: null });
    return this.#users.list();
  }

  /** Deactivation ends every session of the user at once. */
  async deactivateUser(ctx: RequestContext, userId: string): Promise<{ user: User; sessionsEnded: number }> {
    let publishRevocations = (): void => {};
    const result = await inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const row = await this.#users.byId(userId, w.tx);
      await this.#guard.authorize(ctx, 'user:deactivate', { type: 'user', path: row?.username ?? userId, projectId: null, targetPrincipalId: userId }, w);
      if (!row) throw notFound('user');
      if (ctx.principal.kind === 'user' && ctx.principal.id === userId) throw invalidInput('you cannot deactivate your own account');
      await this.#users.deactivate(w.tx, userId, ctx.now);
      const ended = await this.#sessions.revokeAllOfUser(w.tx, userId, ctx.now, 'user deactivated');
      publishRevocations = await this.#revokeCredentials(w.tx, userId, ctx.now, 'user deactivated');
      await this.#audit.append(w.tx, ctx, {
        action: 'user.deactivate',
        outcome: 'success',
        resource: `user:${row.username}`,
        details: { userId, sessionsEnded: ended.length },
      });
      return { user: toUser({ ...row, status: 'deactivated', deactivated_at: ctx.now.toISOString() }), sessionsEnded: ended.length };
    });
    this.#bus.publish({ type: 'user.revoked', userId });
    publishRevocations();
    return result;
  }
}

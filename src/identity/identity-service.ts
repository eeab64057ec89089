// Local accounts and console sessions: the thin identity layer of the walking skeleton.
// MFA, tokens and API keys deepen this module without changing its callers.
import { createHmac } from 'node:crypto';
import type { Kysely } from 'kysely';
import { type AuditLog, inTransaction, type Work } from '../audit/index.ts';
import type { Authorizer, Clock, Principal, RequestContext } from '../core/index.ts';
import { invalidInput, ModelkeepError, newId, newSecret, notFound, secretsEqual, sha256Hex } from '../core/index.ts';
import type { Database, EventBus } from '../storage/index.ts';
import { checkPasswordRules, hashPassword, verifyPassword } from './passwords.ts';
import { SessionStore } from './session-store.ts';
import { toUser, type User, UserStore } from './user-store.ts';

const USERNAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;
const EMAIL = /^[^\s@]{1,64}@[^\s@]{1,255}$/;
/** Write last-seen at most this often, so authentication is not a write per request. */
const TOUCH_EVERY_MS = 60_000;

export interface SessionConfig {
  idleMinutes: number;
  absoluteHours: number;
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
}

/**
 * A session's CSRF token, derived from its cookie secret (HMAC-SHA256 keyed by it), so the
 * console can ask for it again after a reload (GET /v1/auth/csrf) without the server
 * storing it: only the hash is stored, and only a holder of the HttpOnly cookie can obtain it.
 */
export function csrfTokenFor(sessionToken: string): string {
  return createHmac('sha256', sessionToken).update('modelkeep-csrf/1').digest('base64url');
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

  constructor(deps: { db: Kysely<Database>; audit: AuditLog; guard: Authorizer<Work>; sessions: SessionConfig; clock: Clock; bus: EventBus }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#users = new UserStore(deps.db);
    this.#sessions = new SessionStore(deps.db);
    this.#cfg = deps.sessions;
    this.#clock = deps.clock;
    this.#bus = deps.bus;
  }

  get users(): UserStore {
    return this.#users;
  }

  /** Password login. Unknown user and wrong password give the same error in similar time. */
  async login(ctx: RequestContext, username: unknown, password: unknown): Promise<LoginResult> {
    const name = typeof username === 'string' ? username : '';
    const pass = typeof password === 'string' ? password : '';
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
    return this.issueSession(ctx, { id: row.id, username: row.username }, ['pwd'], null);
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

  /**
   * Step-up: a second factor just succeeded inside a signed-in session. The session is
   * replaced by a new one (fresh id, cookie and CSRF token: an id captured before the
   * step-up is worthless) that records the factor in amr and now as mfa_at. The absolute
   * lifetime and authTime carry over: a step-up never extends a session.
   */
  async stepUp(ctx: RequestContext, sessionId: string, method: 'hwk' | 'otp'): Promise<LoginResult> {
    const p = ctx.principal;
    if (p.kind !== 'user' || p.sessionId !== sessionId) throw new ModelkeepError('unauthenticated', 'authentication required');
    const now = ctx.now;
    const token = newSecret();
    const csrfToken = csrfTokenFor(token);
    const newSessionId = newId('ses');
    const result = await this.#db.transaction().execute(async (tx) => {
      const old = await this.#sessions.byId(sessionId, tx);
      if (!old || old.revoked_at !== null || old.user_id !== p.id) throw new ModelkeepError('unauthenticated', 'authentication required');
      // Revoke first: two concurrent step-ups of one session cannot both mint a successor.
      if (!(await this.#sessions.revoke(tx, sessionId, now, 'step-up'))) throw new ModelkeepError('unauthenticated', 'authentication required');
      const amr = [...new Set([...(JSON.parse(old.amr) as string[]), method, 'mfa'])];
      await this.#sessions.insert(tx, {
        ...old,
        id: newSessionId,
        token_hash: sha256Hex(token),
        csrf_hash: sha256Hex(csrfToken),
        amr: JSON.stringify(amr),
        created_at: now.toISOString(),
        last_seen_at: now.toISOString(),
        ip: ctx.ip,
        user_agent: ctx.userAgent?.slice(0, 512) ?? null,
        revoked_at: null,
        revoked_reason: null,
        mfa_at: now.toISOString(),
      });
      const sctx: RequestContext = { ...ctx, principal: { ...p, sessionId: newSessionId, amr, mfaAt: now } };
      await this.#audit.append(tx, sctx, {
        action: 'auth.step_up',
        outcome: 'success',
        resource: `user:${p.username}`,
        details: { method, amr, previousSession: sessionId },
      });
      return { token, csrfToken, sessionId: newSessionId, expiresAt: new Date(old.expires_at) };
    });
    this.#bus.publish({ type: 'session.revoked', sessionId });
    return result;
  }

  /** Resolves a session cookie to a principal, or null when it is unknown, revoked, expired or idle. */
  async authenticateSession(token: string, meta: { requestId: string; ip: string | null; userAgent: string | null }): Promise<AuthenticatedSession | null> {
    if (token.length === 0 || token.length > 128) return null;
    const now = this.#clock.now();
    const s = await this.#sessions.byTokenHash(sha256Hex(token));
    if (!s || s.revoked_at !== null || s.user_status !== 'active') return null;
    const lastSeen = Date.parse(s.last_seen_at);
    const expired =
      now.getTime() >= Date.parse(s.expires_at)
        ? 'absolute lifetime reached'
        : now.getTime() >= lastSeen + this.#cfg.idleMinutes * 60_000
          ? 'idle timeout'
          : null;
    if (expired) {
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
    if (now.getTime() - lastSeen >= TOUCH_EVERY_MS) await this.#sessions.touch(s.id, now);
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
      },
      sessionId: s.id,
      csrfHash: s.csrf_hash,
    };
  }

  /** Constant-time check of a CSRF token against the session's stored hash. */
  csrfMatches(session: AuthenticatedSession, presented: string | undefined): boolean {
    if (!presented) return false;
    return secretsEqual(sha256Hex(presented), session.csrfHash);
  }

  async logout(ctx: RequestContext): Promise<void> {
    const p = ctx.principal;
    if (p.kind !== 'user' || !p.sessionId) throw new ModelkeepError('unauthenticated', 'authentication required');
    const sid = p.sessionId;
    await this.#db.transaction().execute(async (tx) => {
      await this.#sessions.revoke(tx, sid, ctx.now, 'logout');
      await this.#audit.append(tx, ctx, { action: 'auth.logout', outcome: 'success', resource: `session:${sid}` });
    });
    this.#bus.publish({ type: 'session.revoked', sessionId: sid });
  }

  async me(ctx: RequestContext): Promise<{ user: User; session: SessionView | null }> {
    const p = ctx.principal;
    if (p.kind !== 'user') throw new ModelkeepError('unauthenticated', 'authentication required');
    const row = await this.#users.byId(p.id);
    if (!row) throw new ModelkeepError('unauthenticated', 'authentication required');
    const s = p.sessionId ? await this.#sessions.byId(p.sessionId) : null;
    return { user: toUser(row), session: s ? this.#sessionView(s) : null };
  }

  #sessionView(s: { id: string; created_at: string; last_seen_at: string; expires_at: string; ip: string | null; user_agent: string | null; auth_time: string; amr: string }): SessionView {
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
    const result = await inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const row = await this.#users.byId(userId, w.tx);
      await this.#guard.authorize(ctx, 'user:deactivate', { type: 'user', path: row?.username ?? userId, projectId: null, targetPrincipalId: userId }, w);
      if (!row) throw notFound('user');
      if (ctx.principal.kind === 'user' && ctx.principal.id === userId) throw invalidInput('you cannot deactivate your own account');
      await this.#users.deactivate(w.tx, userId, ctx.now);
      const ended = await this.#sessions.revokeAllOfUser(w.tx, userId, ctx.now, 'user deactivated');
      await this.#audit.append(w.tx, ctx, {
        action: 'user.deactivate',
        outcome: 'success',
        resource: `user:${row.username}`,
        details: { userId, sessionsEnded: ended.length },
      });
      return { user: toUser({ ...row, status: 'deactivated', deactivated_at: ctx.now.toISOString() }), sessionsEnded: ended.length };
    });
    this.#bus.publish({ type: 'user.revoked', userId });
    return result;
  }
}

// RFC 8628 device authorization grant, for `modelkeep login`. The CLI asks for a code,
// the user approves it in the console (signed in, CSRF token, fresh MFA where the account
// has MFA or the scope is sensitive), and the CLI polls the token endpoint. Codes are
// single use and bound to the client that asked for them; user-code guesses are limited
// per session and per address and answered with one generic error (MC-DF-01).
import { randomInt } from 'node:crypto';
import type { AuditLog } from '../../audit/index.ts';
import type { Principal, RequestContext } from '../../core/index.ts';
import { ModelkeepError, newId, newSecret } from '../../core/index.ts';
import type { DeviceAuthorizationsTable } from '../../storage/index.ts';
import { OAuthError } from './oauth-error.ts';
import { DEFAULT_CLI_SCOPES, parseScope, SENSITIVE_SCOPES, scopeString, splitScope } from './scopes.ts';
import { CLI_CLIENT_ID, type TokenResponse, TokenService, tokenHash } from './token-service.ts';

/** RFC 8628 §6.1: 20 consonants (no vowels: no words), 8 characters ≈ 34.5 bits. */
export const USER_CODE_ALPHABET = 'BCDFGHJKLMNPQRSTVWXZ';
const USER_CODE_LENGTH = 8;
export const STEP_UP_WINDOW_MS = 15 * 60_000;
/** Wrong user codes tolerated per session and per address in a window. */
const GUESS_LIMIT = 10;
/** Per address: higher, as many people may share one (NAT, proxy). */
const GUESS_LIMIT_PER_IP = 50;
const GUESS_WINDOW_MS = 15 * 60_000;

export function formatUserCode(code: string): string {
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** Case, spaces and hyphens do not matter; anything else outside the alphabet is no code. */
export function normaliseUserCode(raw: unknown): string | null {
  if (typeof raw !== 'string' || raw.length > 32) return null;
  const c = raw.toUpperCase().replace(/[\s-]/g, '');
  if (c.length !== USER_CODE_LENGTH) return null;
  for (const ch of c) if (!USER_CODE_ALPHABET.includes(ch)) return null;
  return c;
}

function newUserCode(): string {
  let s = '';
  for (let i = 0; i < USER_CODE_LENGTH; i++) s += USER_CODE_ALPHABET[randomInt(USER_CODE_ALPHABET.length)];
  return s;
}

/** A small in-process fixed-window limiter (the shared throttle replaces it at merge). */
export class GuessLimiter {
  readonly #hits = new Map<string, { count: number; start: number }>();
  readonly #limit: number;
  readonly #windowMs: number;
  constructor(limit = GUESS_LIMIT, windowMs = GUESS_WINDOW_MS) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }
  /** Seconds to wait when any key is over its limit, else 0. */
  blocked(keys: readonly string[], now: number): number {
    let wait = 0;
    for (const k of keys) {
      const h = this.#hits.get(k);
      if (h && now - h.start < this.#windowMs && h.count >= this.#limit) wait = Math.max(wait, Math.ceil((h.start + this.#windowMs - now) / 1000));
    }
    return wait;
  }
  fail(keys: readonly string[], now: number): void {
    if (this.#hits.size > 100_000) for (const [k, h] of this.#hits) if (now - h.start >= this.#windowMs) this.#hits.delete(k);
    for (const k of keys) {
      const h = this.#hits.get(k);
      if (!h || now - h.start >= this.#windowMs) this.#hits.set(k, { count: 1, start: now });
      else h.count++;
    }
  }
}

export interface DeviceInfo {
  userCode: string;
  clientId: string;
  scopes: string[];
  requestedAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  /** True when approving needs a second factor within the last 15 minutes. */
  mfaRequired: boolean;
}

export class DeviceFlow {
  readonly #tokens: TokenService;
  readonly #audit: AuditLog;
  readonly #perSession = new GuessLimiter(GUESS_LIMIT);
  readonly #perIp = new GuessLimiter(GUESS_LIMIT_PER_IP);
  /** Whether the user has a second factor enrolled (wired to the MFA module at merge). */
  mfaEnrolled: (userId: string) => Promise<boolean> = async () => false;

  constructor(tokens: TokenService) {
    this.#tokens = tokens;
    this.#audit = tokens.audit;
  }

  async authorize(ctx: RequestContext, params: { client_id?: unknown; scope?: unknown }): Promise<Record<string, unknown>> {
    if (params.client_id !== CLI_CLIENT_ID) throw new OAuthError('invalid_client', 'unknown client');
    const scopes = parseScope(params.scope, DEFAULT_CLI_SCOPES);
    const cfg = this.#tokens.cfg;
    const deviceCode = newSecret(32);
    const now = ctx.now;
    const row: DeviceAuthorizationsTable = {
      id: newId('dev'),
      device_code_hash: tokenHash(deviceCode),
      user_code: newUserCode(),
      client_id: CLI_CLIENT_ID,
      scope: scopeString(scopes),
      status: 'pending',
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + cfg.deviceCodeMinutes * 60_000).toISOString(),
      interval_seconds: cfg.devicePollSeconds,
      last_poll_at: null,
      ip: ctx.ip,
      user_agent: ctx.userAgent,
      user_id: null,
      amr: null,
      auth_time: null,
      mfa_at: null,
      decided_at: null,
      family_id: null,
    };
    await this.#tokens.db.transaction().execute(async (tx) => {
      // Expired codes are of no use; keep the table small.
      await tx.deleteFrom('device_authorizations').where('expires_at', '<', new Date(now.getTime() - 24 * 3600_000).toISOString()).execute();
      await tx.insertInto('device_authorizations').values(row).execute();
      await this.#audit.append(tx, ctx, { action: 'auth.device_authorize', outcome: 'success', resource: `device:${row.id}`, details: { clientId: row.client_id, scope: row.scope } });
    });
    const base = `${this.#tokens.issuer}/device`;
    const shown = formatUserCode(row.user_code);
    return {
      device_code: deviceCode,
      user_code: shown,
      verification_uri: base,
      verification_uri_complete: `${base}?user_code=${shown}`,
      expires_in: Math.round(cfg.deviceCodeMinutes * 60),
      interval: row.interval_seconds,
    };
  }

  /** grant_type=urn:ietf:params:oauth:grant-type:device_code. */
  async poll(ctx: RequestContext, params: { device_code?: unknown; client_id?: unknown; resource?: unknown }): Promise<TokenResponse> {
    const code = params.device_code;
    if (typeof code !== 'string' || code.length === 0 || code.length > 200) throw new OAuthError('invalid_request', 'device_code is required');
    if (params.resource !== undefined && params.resource !== this.#tokens.issuer) throw new OAuthError('invalid_target', 'tokens of this server are only for this server');
    const db = this.#tokens.db;
    const row = await db.selectFrom('device_authorizations').selectAll().where('device_code_hash', '=', tokenHash(code)).executeTakeFirst();
    const now = ctx.now;
    const fail = async (reason: string, err: OAuthError): Promise<never> => {
      await this.#audit.record(ctx, { action: 'auth.device_token', outcome: 'failure', resource: row ? `device:${row.id}` : null, reason });
      throw err;
    };
    const invalid = new OAuthError('invalid_grant', 'the device code is not valid');
    if (!row) return fail('unknown device code', invalid);
    if (params.client_id !== row.client_id) return fail('device code presented by another client', invalid);
    if (row.status === 'redeemed') return fail('device code already redeemed', invalid);
    if (now.getTime() >= Date.parse(row.expires_at)) return fail('device code expired', new OAuthError('expired_token', 'the device code has expired; start again'));
    if (row.status === 'denied') return fail('the user denied the request', new OAuthError('access_denied', 'the request was denied'));
    if (row.status === 'pending') {
      const last = row.last_poll_at ? Date.parse(row.last_poll_at) : null;
      if (last !== null && now.getTime() - last < row.interval_seconds * 1000) {
        // RFC 8628 §3.5: too fast; the interval grows by 5 seconds for this device.
        await db.updateTable('device_authorizations').set({ last_poll_at: now.toISOString(), interval_seconds: row.interval_seconds + 5 }).where('id', '=', row.id).execute();
        throw new OAuthError('slow_down', 'polling too fast');
      }
      await db.updateTable('device_authorizations').set({ last_poll_at: now.toISOString() }).where('id', '=', row.id).execute();
      throw new OAuthError('authorization_pending', 'the user has not approved the request yet');
    }
    // Approved: exactly one poll redeems it.
    const user = row.user_id ? await db.selectFrom('users').select(['id', 'username', 'status']).where('id', '=', row.user_id).executeTakeFirst() : undefined;
    if (user?.status !== 'active') return fail('approving account is gone', invalid);
    const uctx: RequestContext = { ...ctx, principal: await this.#userPrincipal(user) };
    const result = await db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('device_authorizations').set({ status: 'redeemed' }).where('id', '=', row.id).where('status', '=', 'approved').executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return null;
      const started = await this.#tokens.startFamily(tx, uctx, {
        userId: user.id,
        username: user.username,
        clientId: row.client_id,
        scopes: splitScope(row.scope),
        amr: row.amr ? (JSON.parse(row.amr) as string[]) : [],
        authTime: new Date(row.auth_time ?? row.created_at),
        mfaAt: row.mfa_at ? new Date(row.mfa_at) : null,
      });
      await tx.updateTable('device_authorizations').set({ family_id: started.family.id }).where('id', '=', row.id).execute();
      await this.#audit.append(tx, TokenService.actingAs(ctx, user, started.family.id), {
        action: 'auth.token',
        outcome: 'success',
        resource: `token-family:${started.family.id}`,
        details: { grant: 'device_code', clientId: row.client_id, scope: row.scope, familyId: started.family.id, deviceAuthorizationId: row.id },
      });
      return started;
    });
    if (!result) return fail('device code already redeemed', invalid);
    const at = await this.#tokens.accessTokenFor(result.family, splitScope(row.scope));
    return { access_token: at.token, token_type: 'Bearer', expires_in: this.#tokens.access.lifetimeSeconds, refresh_token: result.refreshToken, scope: row.scope };
  }

  async #userPrincipal(user: { id: string; username: string }): Promise<Principal> {
    return { kind: 'user', id: user.id, username: user.username, sessionId: null, amr: [], authTime: this.#tokens.clock.now(), mfaAt: null, authMethod: 'access-token', scopes: null };
  }

  // ---- the console side (signed-in user)

  #approver(ctx: RequestContext): Extract<Principal, { kind: 'user' }> {
    const p = ctx.principal;
    // Only a console session approves a login: a CLI token or an API key cannot mint more tokens.
    if (p.kind !== 'user' || p.authMethod !== 'session') throw new ModelkeepError('forbidden', 'approve device logins from a signed-in console session');
    return p;
  }

  async #find(ctx: RequestContext, userCode: unknown): Promise<DeviceAuthorizationsTable> {
    const p = this.#approver(ctx);
    const now = ctx.now.getTime();
    const ses = [`ses:${p.sessionId ?? p.id}`];
    const ip = [`ip:${ctx.ip ?? 'unknown'}`];
    const wait = Math.max(this.#perSession.blocked(ses, now), this.#perIp.blocked(ip, now));
    if (wait > 0) {
      await this.#audit.record(ctx, { action: 'auth.device_lookup', outcome: 'failure', reason: 'too many wrong codes' });
      throw new ModelkeepError('throttled', 'too many attempts; try again later', { retryAfterSeconds: wait });
    }
    const code = normaliseUserCode(userCode);
    const row = code
      ? await this.#tokens.db.selectFrom('device_authorizations').selectAll().where('user_code', '=', code).executeTakeFirst()
      : undefined;
    if (row?.status !== 'pending' || now >= Date.parse(row.expires_at)) {
      this.#perSession.fail(ses, now);
      this.#perIp.fail(ip, now);
      await this.#audit.record(ctx, {
        action: 'auth.device_lookup',
        outcome: 'failure',
        reason: !row ? 'unknown code' : row.status !== 'pending' ? `code already ${row.status}` : 'code expired',
      });
      // One answer for unknown, used and expired codes.
      throw new ModelkeepError('invalid_input', 'this code is not valid or has expired', { hint: 'check the code shown by the CLI, or start `modelkeep login` again' });
    }
    return row;
  }

  async #mfaRequired(p: Extract<Principal, { kind: 'user' }>, row: DeviceAuthorizationsTable): Promise<boolean> {
    const sensitive = splitScope(row.scope).some((s) => SENSITIVE_SCOPES.includes(s));
    return sensitive || p.mfaAt !== null || p.amr.includes('mfa') || (await this.mfaEnrolled(p.id));
  }

  async info(ctx: RequestContext, userCode: unknown): Promise<DeviceInfo> {
    const row = await this.#find(ctx, userCode);
    const p = this.#approver(ctx);
    return {
      userCode: formatUserCode(row.user_code),
      clientId: row.client_id,
      scopes: splitScope(row.scope),
      requestedAt: row.created_at,
      expiresAt: row.expires_at,
      ip: row.ip,
      userAgent: row.user_agent,
      mfaRequired: await this.#mfaRequired(p, row),
    };
  }

  async decide(ctx: RequestContext, userCode: unknown, approve: boolean): Promise<{ status: 'approved' | 'denied' }> {
    const row = await this.#find(ctx, userCode);
    const p = this.#approver(ctx);
    if (approve && (await this.#mfaRequired(p, row))) {
      const fresh = p.mfaAt !== null && ctx.now.getTime() - p.mfaAt.getTime() <= STEP_UP_WINDOW_MS;
      if (!fresh) {
        await this.#audit.record(ctx, { action: 'auth.device_approve', outcome: 'failure', resource: `device:${row.id}`, reason: 'a second factor within 15 minutes is required' });
        throw new ModelkeepError('mfa_required', 'confirm with your second factor to approve this login', { hint: 'step up with TOTP or a passkey, then approve again' });
      }
    }
    const status = approve ? 'approved' : 'denied';
    const done = await this.#tokens.db.transaction().execute(async (tx) => {
      const r = await tx
        .updateTable('device_authorizations')
        .set({
          status,
          user_id: p.id,
          amr: JSON.stringify(p.amr),
          auth_time: p.authTime.toISOString(),
          mfa_at: p.mfaAt?.toISOString() ?? null,
          decided_at: ctx.now.toISOString(),
        })
        .where('id', '=', row.id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await this.#audit.append(tx, ctx, {
        action: approve ? 'auth.device_approve' : 'auth.device_deny',
        outcome: 'success',
        resource: `device:${row.id}`,
        details: { clientId: row.client_id, scope: row.scope, requestIp: row.ip },
      });
      return true;
    });
    if (!done) throw new ModelkeepError('invalid_input', 'this code is not valid or has expired');
    return { status };
  }
}

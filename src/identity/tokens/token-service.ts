// OAuth 2.0 grants (RFC 6749, RFC 8628 device code, client_credentials), refresh-token
// rotation with reuse detection (RFC 9700 §4.14), revocation (RFC 7009), and the bearer
// authentication every API request with `Authorization: Bearer …` goes through.
import type { Kysely } from 'kysely';
import type { AuditLog, Executor } from '../../audit/index.ts';
import type { Clock, Principal, RequestContext, Scope } from '../../core/index.ts';
import { digestsEqual, newId, newSecret, sha256Hex } from '../../core/index.ts';
import type { Database, EventBus, TokenFamiliesTable } from '../../storage/index.ts';
import type { Throttle } from '../throttle.ts';
import { type AccessClaims, AccessTokens } from './access-tokens.ts';
import { OAuthError } from './oauth-error.ts';
import { RevocationCache } from './revocation.ts';
import { parseScope, scopeString, splitScope } from './scopes.ts';
import { SigningKeys } from './signing-keys.ts';

export const CLI_CLIENT_ID = 'modelkeep-cli';
export const REFRESH_PREFIX = 'mkr_';
export const API_KEY_PREFIX = 'mkp_';
export const CLIENT_SECRET_PREFIX = 'mks_';

export interface TokenConfig {
  issuer?: string | undefined;
  accessTokenMinutes: number;
  clockSkewSeconds: number;
  keyRotationHours: number;
  refreshIdleHours: number;
  refreshAbsoluteHours: number;
  deviceCodeMinutes: number;
  devicePollSeconds: number;
  cacheEntries: number;
  revocationCacheSeconds: number;
}

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

/** A user's grant, as it is recorded in its family (device approval, for instance). */
export interface Grant {
  userId: string;
  username: string;
  clientId: string;
  scopes: readonly Scope[];
  amr: readonly string[];
  authTime: Date;
  mfaAt: Date | null;
}

export type BearerResult = { ok: true; principal: Principal } | { ok: false; reason: string };

export function tokenHash(secret: string): string {
  return sha256Hex(secret);
}

export class TokenService {
  readonly db: Kysely<Database>;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly bus: EventBus;
  readonly cfg: TokenConfig;
  readonly keys: SigningKeys;
  readonly access: AccessTokens;
  readonly revocation: RevocationCache;
  /** The shared login throttle (per client id and per IP) for client authentication; set by the composition root. */
  throttle: Throttle | null = null;
  #issuer: string;

  constructor(deps: { db: Kysely<Database>; audit: AuditLog; clock: Clock; bus: EventBus; config: TokenConfig }) {
    this.db = deps.db;
    this.audit = deps.audit;
    this.clock = deps.clock;
    this.bus = deps.bus;
    this.cfg = deps.config;
    this.#issuer = deps.config.issuer?.replace(/\/+$/, '') ?? 'http://127.0.0.1';
    const skewMs = deps.config.clockSkewSeconds * 1000;
    const lifetime = Math.round(deps.config.accessTokenMinutes * 60);
    this.keys = new SigningKeys(deps.db, deps.clock, { rotationHours: deps.config.keyRotationHours, overlapMs: lifetime * 1000 + skewMs });
    this.access = new AccessTokens(this.keys, deps.clock, lifetime, {
      issuer: () => this.#issuer,
      clockSkewSeconds: deps.config.clockSkewSeconds,
      maxEntries: deps.config.cacheEntries,
    });
    this.revocation = new RevocationCache({
      db: deps.db,
      clock: deps.clock,
      bus: deps.bus,
      ttlMs: deps.config.revocationCacheSeconds * 1000,
      maxEntries: deps.config.cacheEntries,
    });
  }

  get issuer(): string {
    return this.#issuer;
  }

  /** Called once the server knows its own URL, unless `tokens.issuer` is configured. */
  setDefaultIssuer(url: string): void {
    if (this.cfg.issuer === undefined) this.#issuer = url.replace(/\/+$/, '');
  }

  metadata(): Record<string, unknown> {
    const i = this.#issuer;
    return {
      issuer: i,
      token_endpoint: `${i}/oauth/token`,
      device_authorization_endpoint: `${i}/oauth/device_authorization`,
      revocation_endpoint: `${i}/oauth/revoke`,
      jwks_uri: `${i}/.well-known/jwks.json`,
      grant_types_supported: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token', 'client_credentials'],
      response_types_supported: [],
      token_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['none', 'client_secret_basic', 'client_secret_post'],
      scopes_supported: ['read', 'download', 'write', 'release', 'trigger', 'admin'],
      token_endpoint_auth_signing_alg_values_supported: undefined,
      access_token_signing_alg_values_supported: ['EdDSA'],
    };
  }

  /** The audit context of a request made on behalf of `user` (token endpoint calls are anonymous HTTP). */
  static actingAs(ctx: RequestContext, user: { id: string; username: string }, sessionId: string | null, authMethod: 'access-token' | 'session' = 'access-token'): RequestContext {
    return {
      ...ctx,
      principal: { kind: 'user', id: user.id, username: user.username, sessionId, amr: [], authTime: ctx.now, mfaAt: null, authMethod, scopes: null },
    };
  }

  // ---- grants

  /** Starts a token family for `grant` and returns its first access and refresh tokens. */
  async startFamily(ex: Executor, ctx: RequestContext, grant: Grant): Promise<{ family: TokenFamiliesTable; refreshToken: string }> {
    const now = ctx.now;
    const family: TokenFamiliesTable = {
      id: newId('fam'),
      user_id: grant.userId,
      client_id: grant.clientId,
      scope: scopeString(grant.scopes),
      amr: JSON.stringify(grant.amr),
      auth_time: grant.authTime.toISOString(),
      mfa_at: grant.mfaAt?.toISOString() ?? null,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + this.cfg.refreshAbsoluteHours * 3600_000).toISOString(),
      revoked_at: null,
      revoked_reason: null,
    };
    await ex.insertInto('token_families').values(family).execute();
    const refreshToken = await this.#newRefreshToken(ex, family, now);
    return { family, refreshToken };
  }

  async #newRefreshToken(ex: Executor, family: TokenFamiliesTable, now: Date): Promise<string> {
    const token = `${REFRESH_PREFIX}${newSecret(32)}`;
    const idle = now.getTime() + this.cfg.refreshIdleHours * 3600_000;
    // Sliding renewal never extends past the family's absolute lifetime.
    const expires = Math.min(idle, Date.parse(family.expires_at));
    await ex
      .insertInto('refresh_tokens')
      .values({ id: newId('rt'), family_id: family.id, token_hash: tokenHash(token), created_at: now.toISOString(), expires_at: new Date(expires).toISOString(), used_at: null })
      .execute();
    return token;
  }

  async accessTokenFor(family: TokenFamiliesTable, scopes: readonly string[]): Promise<{ token: string; claims: AccessClaims }> {
    return this.access.issue({
      sub: family.user_id,
      mk_kind: 'user',
      client_id: family.client_id,
      scope: scopeString(scopes),
      amr: JSON.parse(family.amr) as string[],
      auth_time: Math.floor(Date.parse(family.auth_time) / 1000),
      sid: family.id,
      fid: family.id,
      ...(family.mfa_at ? { mfa_time: Math.floor(Date.parse(family.mfa_at) / 1000) } : {}),
    });
  }

  /** grant_type=refresh_token: rotation on every use; a spent token revokes its family. */
  async refresh(ctx: RequestContext, params: { refresh_token?: unknown; client_id?: unknown; scope?: unknown; resource?: unknown }): Promise<TokenResponse> {
    const raw = params.refresh_token;
    if (typeof raw !== 'string' || raw.length === 0 || raw.length > 200) throw new OAuthError('invalid_request', 'refresh_token is required');
    this.#checkResource(params.resource);
    const clientId = typeof params.client_id === 'string' ? params.client_id : '';
    const now = ctx.now;
    const row = await this.db
      .selectFrom('refresh_tokens')
      .innerJoin('token_families', 'token_families.id', 'refresh_tokens.family_id')
      .innerJoin('users', 'users.id', 'token_families.user_id')
      .select([
        'refresh_tokens.id as rt_id',
        'refresh_tokens.expires_at as rt_expires_at',
        'refresh_tokens.used_at as rt_used_at',
        'users.username as username',
        'users.status as user_status',
        'users.tokens_not_before as not_before',
      ])
      .selectAll('token_families')
      .where('refresh_tokens.token_hash', '=', tokenHash(raw))
      .executeTakeFirst();
    if (!row) {
      await this.audit.record(ctx, { action: 'auth.token_refresh', outcome: 'failure', reason: 'unknown refresh token' });
      throw new OAuthError('invalid_grant', 'the refresh token is not valid');
    }
    const family: TokenFamiliesTable = {
      id: row.id,
      user_id: row.user_id,
      client_id: row.client_id,
      scope: row.scope,
      amr: row.amr,
      auth_time: row.auth_time,
      mfa_at: row.mfa_at,
      created_at: row.created_at,
      expires_at: row.expires_at,
      revoked_at: row.revoked_at,
      revoked_reason: row.revoked_reason,
    };
    const uctx = TokenService.actingAs(ctx, { id: row.user_id, username: row.username }, family.id);
    const fail = async (reason: string, error: OAuthError = new OAuthError('invalid_grant', 'the refresh token is not valid')): Promise<never> => {
      await this.audit.record(uctx, { action: 'auth.token_refresh', outcome: 'failure', resource: `token-family:${family.id}`, reason, details: { familyId: family.id } });
      throw error;
    };
    if (row.rt_used_at !== null && family.revoked_at === null) await this.#reuse(uctx, family);
    if (family.revoked_at !== null) return fail(`token family revoked (${family.revoked_reason ?? 'revoked'})`);
    if (row.rt_used_at !== null) return fail('refresh token already used');
    if (!clientId || clientId !== family.client_id) return fail('refresh token presented by another client');
    if (now.getTime() >= Date.parse(family.expires_at)) return fail('token family reached its absolute lifetime');
    if (now.getTime() >= Date.parse(row.rt_expires_at)) return fail('refresh token idle expiry');
    if (row.user_status !== 'active') return fail('account deactivated');
    if (row.not_before && Date.parse(family.created_at) < Date.parse(row.not_before)) return fail('tokens revoked by logout-all');
    const granted = splitScope(family.scope);
    let asked: Scope[];
    try {
      asked = parseScope(params.scope, granted);
    } catch (err) {
      return fail('unknown scope asked', err as OAuthError);
    }
    if (asked.some((s) => !granted.includes(s))) return fail('wider scope asked', new OAuthError('invalid_scope', 'the scope exceeds what was granted'));

    const next = await this.db.transaction().execute(async (tx) => {
      const spent = await tx.updateTable('refresh_tokens').set({ used_at: now.toISOString() }).where('id', '=', row.rt_id).where('used_at', 'is', null).executeTakeFirst();
      // Lost a race with another redemption of the same token: that is reuse too.
      if (Number(spent.numUpdatedRows) !== 1) return null;
      const token = await this.#newRefreshToken(tx, family, now);
      await this.audit.append(tx, uctx, { action: 'auth.token_refresh', outcome: 'success', resource: `token-family:${family.id}`, details: { familyId: family.id, scope: scopeString(asked) } });
      return token;
    });
    if (next === null) {
      await this.#reuse(uctx, family);
      return fail('refresh token already used');
    }
    const at = await this.accessTokenFor(family, asked);
    return { access_token: at.token, token_type: 'Bearer', expires_in: this.access.lifetimeSeconds, refresh_token: next, scope: scopeString(asked) };
  }

  /** A spent refresh token came back: someone holds a copy. Kill the whole family, loudly. */
  async #reuse(ctx: RequestContext, family: TokenFamiliesTable): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await this.#revokeFamily(tx, family.id, ctx.now, 'refresh token reuse');
      await this.audit.append(tx, ctx, {
        action: 'auth.refresh_reuse',
        outcome: 'failure',
        resource: `token-family:${family.id}`,
        reason: 'a spent refresh token was presented again; the token family is revoked',
        details: { familyId: family.id, clientId: family.client_id, severity: 'high' },
      });
    });
    family.revoked_at = ctx.now.toISOString();
    family.revoked_reason = 'refresh token reuse';
    this.bus.publish({ type: 'token-family.revoked', familyId: family.id });
  }

  async #revokeFamily(ex: Executor, familyId: string, now: Date, reason: string): Promise<boolean> {
    const r = await ex
      .updateTable('token_families')
      .set({ revoked_at: now.toISOString(), revoked_reason: reason })
      .where('id', '=', familyId)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  #checkResource(resource: unknown): void {
    if (resource === undefined) return;
    if (typeof resource !== 'string' || resource.replace(/\/+$/, '') !== this.#issuer) throw new OAuthError('invalid_target', 'tokens of this server are only for this server');
  }

  /** grant_type=client_credentials: a service account; no refresh token. */
  async clientCredentials(ctx: RequestContext, client: { id: string; secret: string } | null, params: { scope?: unknown; resource?: unknown }): Promise<TokenResponse> {
    const now = ctx.now;
    // Secret guessing meets the same back-off as password guessing (429 + Retry-After).
    const keys = this.throttle?.keys('client', client?.id ?? '', ctx.ip) ?? [];
    if (this.throttle) await this.throttle.attempt(keys);
    const sa = client ? await this.db.selectFrom('service_accounts').selectAll().where('client_id', '=', client.id).executeTakeFirst() : undefined;
    // Hash either way: an unknown client id takes as long as a wrong secret.
    const presented = tokenHash(client?.secret ?? '');
    const ok = sa !== undefined && client !== null && digestsEqual(presented, sa.secret_hash) && sa.status === 'active';
    if (!ok || !sa) {
      await this.audit.record(ctx, { action: 'auth.client_credentials', outcome: 'failure', resource: `client:${(client?.id ?? '').slice(0, 64)}`, reason: !sa ? 'unknown client' : sa.status !== 'active' ? 'service account disabled' : 'wrong client secret' });
      throw new OAuthError('invalid_client', 'client authentication failed');
    }
    if (this.throttle) await this.throttle.succeeded(keys);
    this.#checkResource(params.resource);
    const allowed = splitScope(sa.scopes);
    const asked = parseScope(params.scope, allowed);
    const sctx: RequestContext = { ...ctx, principal: { kind: 'service', id: sa.id, username: sa.name, sessionId: null, amr: [], authTime: now, mfaAt: null, authMethod: 'service-token', scopes: asked } };
    if (asked.some((s) => !allowed.includes(s))) {
      await this.audit.record(sctx, { action: 'auth.client_credentials', outcome: 'failure', resource: `service:${sa.name}`, reason: 'wider scope asked' });
      throw new OAuthError('invalid_scope', 'the scope exceeds what the service account may ask for');
    }
    const at = await this.access.issue({ sub: sa.id, mk_kind: 'service', client_id: sa.client_id, scope: scopeString(asked), amr: [], auth_time: Math.floor(now.getTime() / 1000) });
    await this.audit.record(sctx, { action: 'auth.client_credentials', outcome: 'success', resource: `service:${sa.name}`, details: { jti: at.claims.jti, scope: scopeString(asked) } });
    return { access_token: at.token, token_type: 'Bearer', expires_in: this.access.lifetimeSeconds, scope: scopeString(asked) };
  }

  /** RFC 7009: a refresh token or access token revokes its whole family. Unknown tokens are not an error. */
  async revoke(ctx: RequestContext, params: { token?: unknown; client_id?: unknown }): Promise<void> {
    const token = params.token;
    if (typeof token !== 'string' || token.length === 0) throw new OAuthError('invalid_request', 'token is required');
    if (token.length > 4096) return;
    let familyId: string | null = null;
    if (token.startsWith(REFRESH_PREFIX)) {
      const r = await this.db
        .selectFrom('refresh_tokens')
        .innerJoin('token_families', 'token_families.id', 'refresh_tokens.family_id')
        .select(['token_families.id as fid', 'token_families.client_id as client_id'])
        .where('refresh_tokens.token_hash', '=', tokenHash(token))
        .executeTakeFirst();
      // A public client may only revoke its own tokens (RFC 7009 §2.1): another client's is ignored.
      if (r && (params.client_id === undefined || params.client_id === r.client_id)) familyId = r.fid;
    } else {
      const claims = await this.access.verify(token);
      if (claims?.fid && (params.client_id === undefined || params.client_id === claims.client_id)) familyId = claims.fid;
    }
    if (familyId) await this.revokeFamily(ctx, familyId, 'revoked by client');
  }

  async revokeFamily(ctx: RequestContext, familyId: string, reason: string): Promise<boolean> {
    const fam = await this.db.selectFrom('token_families').innerJoin('users', 'users.id', 'token_families.user_id').select(['token_families.user_id', 'users.username']).where('token_families.id', '=', familyId).executeTakeFirst();
    if (!fam) return false;
    const actx = ctx.principal.kind === 'anonymous' ? TokenService.actingAs(ctx, { id: fam.user_id, username: fam.username }, familyId) : ctx;
    const done = await this.db.transaction().execute(async (tx) => {
      const changed = await this.#revokeFamily(tx, familyId, ctx.now, reason);
      if (changed) await this.audit.append(tx, actx, { action: 'auth.token_revoke', outcome: 'success', resource: `token-family:${familyId}`, reason, details: { familyId } });
      return changed;
    });
    this.bus.publish({ type: 'token-family.revoked', familyId });
    return done;
  }

  /**
   * Logout-all for tokens: every family of the user is revoked and access tokens issued
   * before now are void (users.tokens_not_before), at the very next request.
   * The caller's transaction records its own audit event; this publishes after commit via `after`.
   */
  async revokeAllOfUser(ex: Executor, userId: string, now: Date, reason: string): Promise<{ families: string[]; publish: () => void }> {
    const fams = await ex.selectFrom('token_families').select('id').where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    await ex.updateTable('token_families').set({ revoked_at: now.toISOString(), revoked_reason: reason }).where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    await ex.updateTable('users').set({ tokens_not_before: now.toISOString() }).where('id', '=', userId).execute();
    const families = fams.map((f) => f.id);
    return {
      families,
      publish: () => {
        // The caller (logout-all, deactivation) announces the user-level change itself.
        for (const familyId of families) this.bus.publish({ type: 'token-family.revoked', familyId });
      },
    };
  }

  // ---- bearer authentication (the hot path)

  /** An access token (JWT) to a principal; the revocation check runs whether or not the token was cached. */
  async authenticateAccessToken(token: string): Promise<BearerResult> {
    const claims = await this.access.verify(token);
    if (!claims) return { ok: false, reason: 'invalid access token' };
    const scopes = splitScope(claims.scope);
    if (claims.mk_kind === 'service') {
      const sa = await this.revocation.service(claims.sub);
      if (!sa.active) return { ok: false, reason: 'service account disabled' };
      return {
        ok: true,
        principal: { kind: 'service', id: claims.sub, username: sa.name, sessionId: null, amr: [], authTime: new Date(claims.auth_time * 1000), mfaAt: null, authMethod: 'service-token', scopes },
      };
    }
    const user = await this.revocation.user(claims.sub);
    if (!user.active) return { ok: false, reason: 'account deactivated' };
    // iat has whole-second precision: a token from the very second of the logout-all is
    // judged by its family alone (revokeAllOfUser revoked every family of the user in the
    // same transaction), so a login right after logout-all is not void for its whole life.
    if (user.notBefore !== null && claims.iat < Math.floor(user.notBefore / 1000)) return { ok: false, reason: 'token issued before logout-all' };
    if (!claims.fid || !(await this.revocation.familyValid(claims.fid))) return { ok: false, reason: 'token family revoked' };
    return {
      ok: true,
      principal: {
        kind: 'user',
        id: claims.sub,
        username: user.username,
        sessionId: claims.sid ?? null,
        amr: claims.amr,
        authTime: new Date(claims.auth_time * 1000),
        mfaAt: claims.mfa_time !== undefined ? new Date(claims.mfa_time * 1000) : null,
        authMethod: 'access-token',
        scopes,
      },
    };
  }
}

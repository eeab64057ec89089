// Personal API keys: `mkp_` + 32 random bytes (base64url), so secret scanners can find
// them. Shown once, stored as SHA-256 (a 256-bit random secret needs no slow hash), with a
// mandatory expiry, optional project pin and scopes. Deleting a key publishes a bus event
// that the revocation cache applies before the next request.
import type { AuditLog, Work } from '../../audit/index.ts';
import { inTransaction } from '../../audit/index.ts';
import type { Principal, RequestContext, Scope } from '../../core/index.ts';
import { invalidInput, ModelkeepError, newId, newSecret, notFound, SCOPES } from '../../core/index.ts';
import type { ApiKeysTable, ProjectsTable } from '../../storage/index.ts';
import { splitScope } from './scopes.ts';
import { API_KEY_PREFIX, type BearerResult, type TokenService, tokenHash } from './token-service.ts';

const TOUCH_EVERY_MS = 60_000;
const NAME = /^[\p{L}\p{N} ._-]{1,64}$/u;
const KEY_FORMAT = /^mkp_[A-Za-z0-9_-]{43}$/;

export interface ApiKeyView {
  id: string;
  name: string;
  scopes: string[];
  project: string | null;
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
}

export class ApiKeys {
  readonly #tokens: TokenService;
  readonly #audit: AuditLog;
  readonly #maxDays: number;
  readonly #requireFreshMfa: (ctx: RequestContext) => void;
  readonly #projectOf: (ctx: RequestContext, name: unknown, work: Work) => Promise<ProjectsTable>;
  /** Verified key rows by token hash; revocation is checked apart on every use. */
  readonly #cache = new Map<string, { row: ApiKeysTable; until: number }>();

  constructor(deps: {
    tokens: TokenService;
    maxDays: number;
    projectOf: (ctx: RequestContext, name: unknown, work: Work) => Promise<ProjectsTable>;
    /** Throws 428 unless the caller passed a second factor within the fresh window (issue #3: step-up for key creation). */
    requireFreshMfa: (ctx: RequestContext) => void;
  }) {
    this.#requireFreshMfa = deps.requireFreshMfa;
    this.#tokens = deps.tokens;
    this.#audit = deps.tokens.audit;
    this.#maxDays = deps.maxDays;
    this.#projectOf = deps.projectOf;
  }

  #owner(ctx: RequestContext): Extract<Principal, { kind: 'user' }> {
    const p = ctx.principal;
    if (p.kind !== 'user') throw new ModelkeepError('forbidden', 'only users have API keys');
    return p;
  }

  async create(ctx: RequestContext, input: { name?: unknown; scopes?: unknown; project?: unknown; expiresInDays?: unknown }): Promise<ApiKeyView & { token: string }> {
    const p = this.#owner(ctx);
    // A key never mints keys: that would make revoking one key pointless.
    if (p.authMethod === 'api-key') throw new ModelkeepError('forbidden', 'an API key cannot create API keys');
    // A long-lived credential is minted only right after a second factor: a stolen session
    // (or a token approved long ago) cannot turn itself into a key that outlives it.
    try {
      this.#requireFreshMfa(ctx);
    } catch (err) {
      await this.#audit.record(ctx, { action: 'api_key.create', outcome: 'deny', resource: `user:${p.username}`, reason: 'needs a second factor within the fresh window' });
      throw err;
    }
    if (typeof input.name !== 'string' || !NAME.test(input.name)) throw invalidInput('name must be 1-64 letters, digits, spaces, . _ -');
    if (!Array.isArray(input.scopes) || input.scopes.length === 0 || !input.scopes.every((s) => typeof s === 'string' && (SCOPES as readonly string[]).includes(s))) {
      throw invalidInput(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
    }
    const scopes = SCOPES.filter((s) => (input.scopes as string[]).includes(s));
    // A scoped credential cannot hand out more than it holds.
    if (p.scopes !== null && scopes.some((s) => !p.scopes?.includes(s))) throw new ModelkeepError('forbidden', 'the key cannot have scopes your credential lacks');
    const days = input.expiresInDays;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > this.#maxDays) throw invalidInput(`expiresInDays must be a whole number from 1 to ${this.#maxDays}`);
    const token = `${API_KEY_PREFIX}${newSecret(32)}`;
    const now = ctx.now;
    return inTransaction(this.#tokens.db, this.#audit, ctx, async (w) => {
      const project = input.project === undefined || input.project === null ? null : await this.#projectOf(ctx, input.project, w);
      const row: ApiKeysTable = {
        id: newId('key'),
        user_id: p.id,
        name: input.name as string,
        token_hash: tokenHash(token),
        scopes: scopes.join(' '),
        project_id: project?.id ?? null,
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + days * 86_400_000).toISOString(),
        last_used_at: null,
        revoked_at: null,
      };
      await w.tx.insertInto('api_keys').values(row).execute();
      await this.#audit.append(w.tx, ctx, {
        action: 'api_key.create',
        outcome: 'success',
        resource: `api-key:${row.id}`,
        projectId: row.project_id,
        details: { keyId: row.id, name: row.name, scopes, expiresAt: row.expires_at, sensitive: true },
      });
      return { ...this.#view(row, project?.name ?? null), token };
    });
  }

  #view(r: ApiKeysTable, project: string | null): ApiKeyView {
    return { id: r.id, name: r.name, scopes: splitScope(r.scopes), project, createdAt: r.created_at, expiresAt: r.expires_at, lastUsedAt: r.last_used_at };
  }

  async list(ctx: RequestContext): Promise<ApiKeyView[]> {
    const p = this.#owner(ctx);
    const rows = await this.#tokens.db
      .selectFrom('api_keys')
      .leftJoin('projects', 'projects.id', 'api_keys.project_id')
      .selectAll('api_keys')
      .select('projects.name as project_name')
      .where('api_keys.user_id', '=', p.id)
      .where('api_keys.revoked_at', 'is', null)
      .orderBy('api_keys.created_at')
      .execute();
    return rows.map((r) => this.#view(r, r.project_name ?? null));
  }

  async revoke(ctx: RequestContext, id: unknown): Promise<void> {
    const p = this.#owner(ctx);
    if (typeof id !== 'string' || !/^key_[A-Za-z0-9_-]{1,64}$/.test(id)) throw notFound('API key');
    const done = await this.#tokens.db.transaction().execute(async (tx) => {
      const r = await tx.updateTable('api_keys').set({ revoked_at: ctx.now.toISOString() }).where('id', '=', id).where('user_id', '=', p.id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await this.#audit.append(tx, ctx, { action: 'api_key.revoke', outcome: 'success', resource: `api-key:${id}`, details: { keyId: id } });
      return true;
    });
    if (!done) {
      // Someone else's key answers like a missing one.
      await this.#audit.record(ctx, { action: 'api_key.revoke', outcome: 'deny', resource: `api-key:${id}`, reason: 'not found among the caller’s keys' });
      throw notFound('API key');
    }
    this.#tokens.bus.publish({ type: 'api-key.revoked', keyId: id });
  }

  /** `Authorization: Bearer mkp_…` to a principal. */
  async authenticate(token: string): Promise<BearerResult> {
    if (!KEY_FORMAT.test(token)) return { ok: false, reason: 'malformed API key' };
    const now = this.#tokens.clock.now().getTime();
    const h = tokenHash(token);
    let row = this.#cache.get(h);
    if (!row || now >= row.until) {
      const r = await this.#tokens.db.selectFrom('api_keys').selectAll().where('token_hash', '=', h).executeTakeFirst();
      if (!r) return { ok: false, reason: 'unknown API key' };
      row = { row: r, until: Math.min(Date.parse(r.expires_at), now + this.#tokens.cfg.revocationCacheSeconds * 1000) };
      if (this.#cache.size >= Math.max(1, this.#tokens.cfg.cacheEntries)) {
        const first = this.#cache.keys().next();
        if (!first.done) this.#cache.delete(first.value);
      }
      this.#cache.set(h, row);
    }
    const k = row.row;
    if (now >= Date.parse(k.expires_at)) return { ok: false, reason: 'API key expired' };
    if (k.revoked_at !== null || !(await this.#tokens.revocation.apiKeyValid(k.id))) return { ok: false, reason: 'API key revoked' };
    const user = await this.#tokens.revocation.user(k.user_id);
    if (!user.active) return { ok: false, reason: 'account deactivated' };
    if (user.notBefore !== null && Date.parse(k.created_at) < user.notBefore) return { ok: false, reason: 'API key created before logout-all' };
    const last = k.last_used_at ? Date.parse(k.last_used_at) : null;
    if (last === null || now - last >= TOUCH_EVERY_MS) {
      const at = new Date(now).toISOString();
      k.last_used_at = at;
      await this.#tokens.db.updateTable('api_keys').set({ last_used_at: at }).where('id', '=', k.id).execute();
    }
    return {
      ok: true,
      principal: {
        kind: 'user',
        id: k.user_id,
        username: user.username,
        sessionId: null,
        amr: [],
        authTime: new Date(k.created_at),
        mfaAt: null,
        authMethod: 'api-key',
        scopes: splitScope(k.scopes) as Scope[],
        projectId: k.project_id,
      },
    };
  }
}

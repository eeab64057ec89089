// Service accounts: machine identities with role bindings (principal_kind 'service') that
// authenticate with client_credentials. The client secret is shown once and stored hashed.
import type { AuditLog, Work } from '../../audit/index.ts';
import { inTransaction } from '../../audit/index.ts';
import { BindingStore } from '../../authz/binding-store.ts';
import type { Authorizer, RequestContext } from '../../core/index.ts';
import { invalidInput, ModelkeepError, newId, newSecret, PROJECT_ROLES, SCOPES } from '../../core/index.ts';
import type { ProjectsTable } from '../../storage/index.ts';
import { DEFAULT_CLI_SCOPES } from './scopes.ts';
import { CLIENT_SECRET_PREFIX, type TokenService, tokenHash } from './token-service.ts';

const NAME = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export class ServiceAccounts {
  readonly #tokens: TokenService;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #bindings: BindingStore;
  readonly #projectOf: (ctx: RequestContext, name: unknown, work: Work) => Promise<ProjectsTable>;

  constructor(deps: { tokens: TokenService; guard: Authorizer<Work>; projectOf: (ctx: RequestContext, name: unknown, work: Work) => Promise<ProjectsTable> }) {
    this.#tokens = deps.tokens;
    this.#audit = deps.tokens.audit;
    this.#guard = deps.guard;
    this.#bindings = new BindingStore(deps.tokens.db);
    this.#projectOf = deps.projectOf;
  }

  async create(ctx: RequestContext, input: { name?: unknown; project?: unknown; roles?: unknown; scopes?: unknown }): Promise<{ id: string; name: string; clientId: string; clientSecret: string; scopes: string[]; project: string }> {
    const secret = `${CLIENT_SECRET_PREFIX}${newSecret(32)}`;
    const id = newId('sa');
    const clientId = `sa-${newSecret(12)}`;
    return inTransaction(this.#tokens.db, this.#audit, ctx, async (w) => {
      // Decide first: a caller who may not create service accounts learns nothing from validation.
      const label = typeof input.name === 'string' ? input.name.slice(0, 63) : '(invalid)';
      await this.#guard.authorize(ctx, 'user:create', { type: 'service-account', path: label, projectId: null }, w);
      const name = input.name;
      if (typeof name !== 'string' || !NAME.test(name)) throw invalidInput("name must be 1-63 characters of lowercase letters, digits, '.', '_' and '-'");
      const roles = input.roles;
      if (!Array.isArray(roles) || roles.length === 0 || !roles.every((r) => typeof r === 'string' && (PROJECT_ROLES as readonly string[]).includes(r))) {
        throw invalidInput(`roles must be a non-empty list of ${PROJECT_ROLES.join(', ')}`);
      }
      let scopes: string[] = [...DEFAULT_CLI_SCOPES];
      if (input.scopes !== undefined) {
        if (!Array.isArray(input.scopes) || input.scopes.length === 0 || !input.scopes.every((s) => typeof s === 'string' && (SCOPES as readonly string[]).includes(s))) {
          throw invalidInput(`scopes must be a non-empty list of ${SCOPES.join(', ')}`);
        }
        scopes = SCOPES.filter((s) => (input.scopes as string[]).includes(s));
      }
      const project = await this.#projectOf(ctx, input.project, w);
      const taken = await w.tx.selectFrom('service_accounts').select('id').where('name', '=', name).executeTakeFirst();
      const takenByUser = await w.tx.selectFrom('users').select('id').where('username', '=', name).executeTakeFirst();
      if (taken || takenByUser) throw new ModelkeepError('conflict', 'a user or service account with this name exists');
      await w.tx
        .insertInto('service_accounts')
        .values({
          id,
          name,
          project_id: project.id,
          client_id: clientId,
          secret_hash: tokenHash(secret),
          scopes: scopes.join(' '),
          status: 'active',
          created_at: ctx.now.toISOString(),
          created_by: ctx.principal.kind === 'anonymous' ? 'anonymous' : ctx.principal.username,
          disabled_at: null,
        })
        .execute();
      const bindingIds: string[] = [];
      for (const role of new Set(roles as string[])) {
        const b = await this.#bindings.insert(w.tx, {
          scope: project.id,
          principalKind: 'service',
          principalId: id,
          role,
          expiresAt: null,
          createdBy: ctx.principal.kind === 'anonymous' ? 'anonymous' : ctx.principal.username,
          now: ctx.now,
        });
        bindingIds.push(b.id);
      }
      await this.#audit.append(w.tx, ctx, {
        action: 'service_account.create',
        outcome: 'success',
        resource: `service:${name}`,
        projectId: project.id,
        details: { serviceAccountId: id, clientId, roles, scopes, bindingIds },
      });
      return { id, name, clientId, clientSecret: secret, scopes, project: project.name };
    });
  }
}

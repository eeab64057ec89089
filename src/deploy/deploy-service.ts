// Deployment configurations per environment. A deployment names a finalized version and
// pins its artifact digests, so what is served is exactly what was promoted.
import type { Kysely } from 'kysely';
import { type AuditLog, inTransaction, type Work } from '../audit/index.ts';
import type { Authorizer, Environment, FlatValue, RequestContext } from '../core/index.ts';
import { ENVIRONMENTS, invalidInput, ModelkeepError, newId, notFound, validateFlatMap, validateName } from '../core/index.ts';
import { type Lookup, projectRef, versionRef } from '../registry/index.ts';
import type { Database, DeploymentsTable, EventBus } from '../storage/index.ts';

export interface DeploymentView {
  project: string;
  name: string;
  environment: Environment;
  model: string;
  version: number;
  artifacts: { path: string; sha256: string }[];
  config: Record<string, FlatValue>;
  updatedAt: string;
  updatedBy: string;
}

export class DeployService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #lookup: Lookup;
  readonly #bus: EventBus | undefined;
  constructor(deps: { db: Kysely<Database>; audit: AuditLog; guard: Authorizer<Work>; lookup: Lookup; bus?: EventBus }) {
    this.#bus = deps.bus;
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#lookup = deps.lookup;
  }

  async #view(ex: Kysely<Database> | Work['tx'], projectName: string, d: DeploymentsTable): Promise<DeploymentView> {
    const m = await ex.selectFrom('models').select('name').where('id', '=', d.model_id).executeTakeFirstOrThrow();
    const v = await ex.selectFrom('model_versions').select('version').where('id', '=', d.version_id).executeTakeFirstOrThrow();
    const stored = JSON.parse(d.config) as { artifacts: { path: string; sha256: string }[]; values: Record<string, FlatValue> };
    return {
      project: projectName,
      name: d.name,
      environment: d.environment,
      model: m.name,
      version: v.version,
      artifacts: stored.artifacts,
      config: stored.values,
      updatedAt: d.updated_at,
      updatedBy: d.updated_by,
    };
  }

  async set(ctx: RequestContext, project: unknown, name: unknown, input: { environment?: unknown; model?: unknown; version?: unknown; config?: unknown }): Promise<DeploymentView> {
    const dname = validateName(name, 'deployment name');
    const env = input.environment;
    if (typeof env !== 'string' || !(ENVIRONMENTS as readonly string[]).includes(env)) throw invalidInput(`environment must be one of ${ENVIRONMENTS.join(', ')}`);
    const environment = env as Environment;
    const values = validateFlatMap(input.config, 'config');
    const done = await inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const p = await this.#lookup.project(ctx, project, w);
      const existing = await w.tx.selectFrom('deployments').selectAll().where('project_id', '=', p.id).where('name', '=', dname).executeTakeFirst();
      // Moving a deployment into or out of production is a production change.
      const touched: Environment = existing?.environment === 'production' ? 'production' : environment;
      await this.#guard.authorize(ctx, 'deployment:update', { ...projectRef(p), type: 'deployment', path: `${p.name}/${dname}`, environment: touched }, w);
      const m = await this.#lookup.model(ctx, p, input.model, w);
      const v = await this.#lookup.version(ctx, p, m, input.version, w);
      await this.#guard.authorize(ctx, 'version:read', versionRef(p, m, v), w);
      if (v.state !== 'ready') throw new ModelkeepError('conflict', 'only a finalized version can be deployed');
      if (v.stage === 'archived') throw new ModelkeepError('conflict', 'an archived version cannot be deployed');
      if (environment === 'production' && v.stage !== 'production') {
        throw new ModelkeepError('conflict', 'only a version in the production stage can be deployed to production', { hint: 'promote the version to production first' });
      }
      const artifacts = await w.tx.selectFrom('artifacts').select(['path', 'sha256']).where('version_id', '=', v.id).orderBy('path').execute();
      const row: DeploymentsTable = {
        id: existing?.id ?? newId('dep'),
        project_id: p.id,
        name: dname,
        environment,
        model_id: m.id,
        version_id: v.id,
        config: JSON.stringify({ artifacts, values }),
        updated_at: ctx.now.toISOString(),
        updated_by: ctx.principal.kind === 'anonymous' ? 'anonymous' : ctx.principal.username,
      };
      if (existing) await w.tx.updateTable('deployments').set(row).where('id', '=', existing.id).execute();
      else await w.tx.insertInto('deployments').values(row).execute();
      await this.#audit.append(w.tx, ctx, {
        action: 'deployment.update',
        outcome: 'success',
        resource: `deployment:${p.name}/${dname}`,
        projectId: p.id,
        details: { environment, previousEnvironment: existing?.environment ?? null, model: m.name, version: v.version, artifacts },
      });
      return { view: await this.#view(w.tx, p.name, row), projectId: p.id };
    });
    // After the commit: a deployment's environment is an attribute policies read.
    this.#bus?.publish({ type: 'resource.changed', projectId: done.projectId, resource: `deployment:${done.view.project}/${done.view.name}` });
    return done.view;
  }

  async list(ctx: RequestContext, project: unknown): Promise<DeploymentView[]> {
    const p = await this.#lookup.project(ctx, project);
    await this.#guard.authorize(ctx, 'deployment:read', { ...projectRef(p), type: 'deployment', path: `${p.name}/*` });
    const rows = await this.#db.selectFrom('deployments').selectAll().where('project_id', '=', p.id).orderBy('name').execute();
    const out: DeploymentView[] = [];
    for (const d of rows) out.push(await this.#view(this.#db, p.name, d));
    return out;
  }

  async get(ctx: RequestContext, project: unknown, name: unknown): Promise<DeploymentView> {
    const dname = validateName(name, 'deployment name');
    const p = await this.#lookup.project(ctx, project);
    const d = await this.#db.selectFrom('deployments').selectAll().where('project_id', '=', p.id).where('name', '=', dname).executeTakeFirst();
    await this.#guard.authorize(ctx, 'deployment:read', { ...projectRef(p), type: 'deployment', path: `${p.name}/${dname}`, ...(d ? { environment: d.environment } : {}) });
    if (!d) throw notFound('deployment');
    return this.#view(this.#db, p.name, d);
  }
}

// Resolving names in a URL to rows. A name that does not exist, and a project the
// caller may not see, are recorded and answered with the same 404.
import type { Kysely } from 'kysely';
import { type AuditLog, type Work, withAudit } from '../audit/index.ts';
import type { Authorizer, RequestContext } from '../core/index.ts';
import { invalidInput, isValidName, notFound, validateName } from '../core/index.ts';
import { type Database, type ModelsTable, type ModelVersionsTable, type ProjectsTable, readFirst } from '../storage/index.ts';
import { projectRef } from './refs.ts';

export class Lookup {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  constructor(db: Kysely<Database>, audit: AuditLog, guard: Authorizer<Work>) {
    this.#db = db;
    this.#audit = audit;
    this.#guard = guard;
  }

  async #missing(ctx: RequestContext, what: string, path: string, work: Work | undefined): Promise<never> {
    const input = { action: `${what}:lookup`, outcome: 'deny' as const, resource: `${what}:${path}`, reason: 'not found' };
    // Inside a transaction the denial is written after the rollback (inTransaction).
    if (work) throw withAudit(notFound(what), input);
    await this.#audit.record(ctx, input);
    throw notFound(what);
  }

  async project(ctx: RequestContext, name: unknown, work?: Work): Promise<ProjectsTable> {
    const n = validateName(name, 'project');
    const ex = work?.tx ?? this.#db;
    const p = await readFirst(ex, 'lookup:project', () => ex.selectFrom('projects').selectAll().where('name', '=', n).compile(), [n]);
    if (!p) return this.#missing(ctx, 'project', n, work);
    // Before looking inside: a project the caller cannot see answers exactly like a
    // missing one, whatever is asked of it (no existence oracle, MC-AZ-01).
    if (!(await this.#guard.visible(ctx, projectRef(p), work))) return this.#missing(ctx, 'project', n, work);
    return p;
  }

  async model(ctx: RequestContext, p: ProjectsTable, name: unknown, work?: Work): Promise<ModelsTable> {
    const n = validateName(name, 'model');
    const ex = work?.tx ?? this.#db;
    const m = await readFirst(ex, 'lookup:model', () => ex.selectFrom('models').selectAll().where('project_id', '=', p.id).where('name', '=', n).compile(), [p.id, n]);
    return m ?? this.#missing(ctx, 'model', `${p.name}/${n}`, work);
  }

  /**
   * project() then model(), with both rows read in one statement: the same checks in the
   * same order (missing or invisible project, then missing model), the same answers and
   * the same audit events. Reads of a model pay for one statement instead of two.
   */
  async projectModel(ctx: RequestContext, project: unknown, model: unknown, work?: Work): Promise<{ p: ProjectsTable; m: ModelsTable }> {
    const pn = validateName(project, 'project');
    if (!isValidName(model)) {
      // A bad model name is judged after the project, as by project() then model().
      const p = await this.project(ctx, pn, work);
      return { p, m: await this.model(ctx, p, model, work) };
    }
    const mn = model;
    const ex = work?.tx ?? this.#db;
    const r = await readFirst(
      ex,
      'lookup:project+model',
      () =>
        ex
          .selectFrom('projects')
          .leftJoin('models', (j) => j.onRef('models.project_id', '=', 'projects.id').on('models.name', '=', mn))
          .select(['projects.id', 'projects.name', 'projects.description', 'projects.created_at', 'projects.created_by'])
          .select((eb) => MODEL_COLUMNS.map((c) => eb.ref(`models.${c}`).as(`m_${c}`)))
          .where('projects.name', '=', pn)
          .compile(),
      [mn, pn],
    );
    if (!r) return this.#missing(ctx, 'project', pn, work);
    const p: ProjectsTable = { id: r.id, name: r.name, description: r.description, created_at: r.created_at, created_by: r.created_by };
    if (!(await this.#guard.visible(ctx, projectRef(p), work))) return this.#missing(ctx, 'project', pn, work);
    if (r.m_id === null) return this.#missing(ctx, 'model', `${p.name}/${mn}`, work);
    const m = Object.fromEntries(MODEL_COLUMNS.map((c) => [c, r[`m_${c}`]])) as unknown as ModelsTable;
    return { p, m };
  }

  async version(ctx: RequestContext, p: ProjectsTable, m: ModelsTable, v: unknown, work?: Work): Promise<ModelVersionsTable> {
    const num = parseVersion(v);
    const ex = work?.tx ?? this.#db;
    const row = await readFirst(
      ex,
      'lookup:version',
      () => ex.selectFrom('model_versions').selectAll().where('model_id', '=', m.id).where('version', '=', num).compile(),
      [m.id, num],
    );
    return row ?? this.#missing(ctx, 'version', `${p.name}/${m.name}@${num}`, work);
  }
}

const MODEL_COLUMNS = ['id', 'project_id', 'name', 'description', 'sensitivity', 'next_version', 'created_at', 'created_by'] as const satisfies readonly (keyof ModelsTable)[];

export function parseVersion(v: unknown): number {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string' || !/^[1-9][0-9]{0,8}$/.test(s)) throw invalidInput('version must be a positive integer');
  return Number(s);
}

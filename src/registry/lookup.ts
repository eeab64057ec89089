// Resolving names in a URL to rows. A name that does not exist, and a project the
// caller may not see, are recorded and answered with the same 404.
import type { Kysely } from 'kysely';
import { type AuditLog, type Work, withAudit } from '../audit/index.ts';
import type { Authorizer, RequestContext } from '../core/index.ts';
import { invalidInput, notFound, validateName } from '../core/index.ts';
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

export function parseVersion(v: unknown): number {
  const s = typeof v === 'number' ? String(v) : v;
  if (typeof s !== 'string' || !/^[1-9][0-9]{0,8}$/.test(s)) throw invalidInput('version must be a positive integer');
  return Number(s);
}

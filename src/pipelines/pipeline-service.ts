// Retraining triggers: a run is recorded (202) for the pipeline runner to pick up.
import type { Kysely } from 'kysely';
import { type AuditLog, inTransaction, type Work } from '../audit/index.ts';
import type { Authorizer, FlatValue, RequestContext } from '../core/index.ts';
import { newId, validateFlatMap, validateName } from '../core/index.ts';
import { type Lookup, projectRef } from '../registry/index.ts';
import type { Database, PipelineRunsTable } from '../storage/index.ts';

export interface RunView {
  runId: string;
  project: string;
  pipeline: string;
  status: PipelineRunsTable['status'];
  parameters: Record<string, FlatValue>;
  createdAt: string;
  createdBy: string;
}

export class PipelineService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #lookup: Lookup;
  constructor(deps: { db: Kysely<Database>; audit: AuditLog; guard: Authorizer<Work>; lookup: Lookup }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#lookup = deps.lookup;
  }

  async trigger(ctx: RequestContext, project: unknown, pipeline: unknown, input: { parameters?: unknown }): Promise<RunView> {
    const name = validateName(pipeline, 'pipeline name');
    const parameters = validateFlatMap(input.parameters, 'parameters');
    return inTransaction(this.#db, this.#audit, ctx, async (w) => {
      const p = await this.#lookup.project(ctx, project, w);
      await this.#guard.authorize(ctx, 'pipeline:trigger', { ...projectRef(p), type: 'pipeline', path: `${p.name}/${name}` }, w);
      const row: PipelineRunsTable = {
        id: newId('run'),
        project_id: p.id,
        pipeline: name,
        parameters: JSON.stringify(parameters),
        status: 'queued',
        created_at: ctx.now.toISOString(),
        created_by: ctx.principal.kind === 'anonymous' ? 'anonymous' : ctx.principal.username,
      };
      await w.tx.insertInto('pipeline_runs').values(row).execute();
      await this.#audit.append(w.tx, ctx, { action: 'pipeline.trigger', outcome: 'success', resource: `pipeline:${p.name}/${name}`, projectId: p.id, details: { runId: row.id } });
      return view(p.name, row);
    });
  }

  async runs(ctx: RequestContext, project: unknown, pipeline: unknown): Promise<RunView[]> {
    const name = validateName(pipeline, 'pipeline name');
    const p = await this.#lookup.project(ctx, project);
    await this.#guard.authorize(ctx, 'pipeline:read', { ...projectRef(p), type: 'pipeline', path: `${p.name}/${name}` });
    const rows = await this.#db.selectFrom('pipeline_runs').selectAll().where('project_id', '=', p.id).where('pipeline', '=', name).orderBy('created_at', 'desc').limit(200).execute();
    return rows.map((r) => view(p.name, r));
  }
}

const view = (project: string, r: PipelineRunsTable): RunView => ({
  runId: r.id,
  project,
  pipeline: r.pipeline,
  status: r.status,
  parameters: JSON.parse(r.parameters) as Record<string, FlatValue>,
  createdAt: r.created_at,
  createdBy: r.created_by,
});

import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../core/index.ts';
import { invalidInput } from '../../core/index.ts';
import type { DeployService } from '../../deploy/index.ts';
import type { PipelineService } from '../../pipelines/index.ts';
import type { AuditReader } from '../../registry/index.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;

function intParam(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw invalidInput(`${name} must be a non-negative integer`);
  return Number(v);
}

export function operationsRoutes(app: FastifyInstance, deps: { deploy: DeployService; pipelines: PipelineService; auditReader: AuditReader; clock: Clock }): void {
  const { deploy, pipelines, auditReader, clock } = deps;
  const ctx = (r: Parameters<typeof ctxOf>[0]) => ctxOf(r, clock.now());

  app.put<{ Params: { p: string; d: string } }>('/v1/projects/:p/deployments/:d', async (request) => {
    const b = (request.body ?? {}) as Body;
    return deploy.set(ctx(request), request.params.p, request.params.d, { environment: b.environment, model: b.model, version: b.version, config: b.config });
  });
  app.get<{ Params: { p: string } }>('/v1/projects/:p/deployments', async (request) => ({ deployments: await deploy.list(ctx(request), request.params.p) }));
  app.get<{ Params: { p: string; d: string } }>('/v1/projects/:p/deployments/:d', async (request) => deploy.get(ctx(request), request.params.p, request.params.d));

  app.post<{ Params: { p: string; name: string } }>('/v1/projects/:p/pipelines/:name/runs', async (request, reply) => {
    const b = (request.body ?? {}) as Body;
    const run = await pipelines.trigger(ctx(request), request.params.p, request.params.name, { parameters: b.parameters });
    return reply.code(202).send(run);
  });
  app.get<{ Params: { p: string; name: string } }>('/v1/projects/:p/pipelines/:name/runs', async (request) => ({
    runs: await pipelines.runs(ctx(request), request.params.p, request.params.name),
  }));

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/audit/events', async (request) => {
    const q = request.query;
    for (const key of ['actor', 'action', 'outcome', 'project'] as const) {
      const v = q[key];
      // Filters are short printable strings; anything else is invalid input, not a database error.
      if (v !== undefined && (typeof v !== 'string' || v.length > 200 || !/^[\x21-\x7e]*$/.test(v))) throw invalidInput(`${key} is not a valid filter`);
    }
    const after = intParam(q.after, 'after');
    const limit = intParam(q.limit, 'limit');
    const events = await auditReader.events(ctx(request), {
      ...(after !== undefined ? { after } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.outcome ? { outcome: q.outcome } : {}),
      ...(q.project ? { project: q.project } : {}),
    });
    return { events };
  });
}

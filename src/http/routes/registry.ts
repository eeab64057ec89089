import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../core/index.ts';
import type { AccessService, RegistryService } from '../../registry/index.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;
type P = { p: string };
type PM = { p: string; m: string };
type PMV = { p: string; m: string; v: string };

export function registryRoutes(app: FastifyInstance, deps: { registry: RegistryService; access: AccessService; clock: Clock }): void {
  const { registry, access, clock } = deps;
  const ctx = (r: Parameters<typeof ctxOf>[0]) => ctxOf(r, clock.now());
  const body = (b: unknown) => (b ?? {}) as Body;

  app.post('/v1/projects', async (request, reply) => {
    const b = body(request.body);
    return reply.code(201).send(await registry.createProject(ctx(request), { name: b.name, description: b.description }));
  });
  app.get('/v1/projects', async (request) => ({ projects: await registry.listProjects(ctx(request)) }));
  app.get<{ Params: P }>('/v1/projects/:p', async (request) => registry.getProject(ctx(request), request.params.p));

  app.get<{ Params: P }>('/v1/projects/:p/bindings', async (request) => ({ bindings: await access.list(ctx(request), request.params.p) }));
  app.post<{ Params: P }>('/v1/projects/:p/bindings', async (request, reply) => {
    const b = body(request.body);
    return reply.code(201).send(await access.add(ctx(request), request.params.p, { principal: b.principal, role: b.role, expiresAt: b.expiresAt }));
  });
  app.delete<{ Params: P & { id: string } }>('/v1/projects/:p/bindings/:id', async (request, reply) => {
    await access.remove(ctx(request), request.params.p, request.params.id);
    return reply.code(204).send();
  });

  app.post<{ Params: P }>('/v1/projects/:p/models', async (request, reply) => {
    const b = body(request.body);
    return reply.code(201).send(await registry.createModel(ctx(request), request.params.p, { name: b.name, description: b.description, sensitivity: b.sensitivity }));
  });
  app.get<{ Params: P }>('/v1/projects/:p/models', async (request) => ({ models: await registry.listModels(ctx(request), request.params.p) }));
  app.get<{ Params: PM }>('/v1/projects/:p/models/:m', async (request) => registry.getModel(ctx(request), request.params.p, request.params.m));

  app.post<{ Params: PM }>('/v1/projects/:p/models/:m/versions', async (request, reply) => {
    const b = body(request.body);
    return reply.code(201).send(await registry.createVersion(ctx(request), request.params.p, request.params.m, { description: b.description, metadata: b.metadata }));
  });
  app.get<{ Params: PM }>('/v1/projects/:p/models/:m/versions', async (request) => ({
    versions: await registry.listVersions(ctx(request), request.params.p, request.params.m),
  }));
  app.get<{ Params: PMV }>('/v1/projects/:p/models/:m/versions/:v', async (request) =>
    registry.getVersion(ctx(request), request.params.p, request.params.m, request.params.v),
  );
  app.post<{ Params: PMV }>('/v1/projects/:p/models/:m/versions/:v/finalize', async (request) =>
    registry.finalizeVersion(ctx(request), request.params.p, request.params.m, request.params.v),
  );
  app.post<{ Params: PMV }>('/v1/projects/:p/models/:m/versions/:v/promote', async (request) =>
    registry.promote(ctx(request), request.params.p, request.params.m, request.params.v, body(request.body).stage),
  );
}

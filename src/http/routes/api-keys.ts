// Personal API keys, device-login approval (the console's /device page) and service accounts.
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../core/index.ts';
import type { ApiKeys, DeviceFlow, ServiceAccounts } from '../../identity/tokens/index.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;

export function apiKeyRoutes(app: FastifyInstance, deps: { apiKeys: ApiKeys; device: DeviceFlow; serviceAccounts: ServiceAccounts; clock: Clock }): void {
  const { apiKeys, device, serviceAccounts, clock } = deps;

  app.post('/v1/me/api-keys', async (request, reply) => {
    const b = (request.body ?? {}) as Body;
    const k = await apiKeys.create(ctxOf(request, clock.now()), { name: b.name, scopes: b.scopes, project: b.project, expiresInDays: b.expiresInDays });
    return reply.code(201).send(k);
  });
  app.get('/v1/me/api-keys', async (request) => ({ apiKeys: await apiKeys.list(ctxOf(request, clock.now())) }));
  app.delete<{ Params: { id: string } }>('/v1/me/api-keys/:id', async (request, reply) => {
    await apiKeys.revoke(ctxOf(request, clock.now()), request.params.id);
    return reply.code(204).send();
  });

  app.get<{ Querystring: { userCode?: string } }>('/v1/auth/device', async (request) => device.info(ctxOf(request, clock.now()), request.query.userCode));
  app.post('/v1/auth/device/approve', async (request) => {
    const b = (request.body ?? {}) as Body;
    return device.decide(ctxOf(request, clock.now()), b.userCode, true);
  });
  app.post('/v1/auth/device/deny', async (request) => {
    const b = (request.body ?? {}) as Body;
    return device.decide(ctxOf(request, clock.now()), b.userCode, false);
  });

  app.post('/v1/admin/service-accounts', async (request, reply) => {
    const b = (request.body ?? {}) as Body;
    const sa = await serviceAccounts.create(ctxOf(request, clock.now()), { name: b.name, project: b.project, roles: b.roles, scopes: b.scopes });
    return reply.code(201).send(sa);
  });
}

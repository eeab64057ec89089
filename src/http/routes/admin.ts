import type { FastifyInstance } from 'fastify';
import type { PolicyService } from '../../authz/index.ts';
import type { Clock } from '../../core/index.ts';
import type { IdentityService, User } from '../../identity/index.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;
const view = (u: User) => ({ id: u.id, username: u.username, email: u.email, status: u.status, createdAt: u.createdAt, deactivatedAt: u.deactivatedAt });

export function adminRoutes(app: FastifyInstance, deps: { identity: IdentityService; policies: PolicyService; clock: Clock }): void {
  const { identity, policies, clock } = deps;
  app.get('/v1/admin/policies', async (request) => policies.info(ctxOf(request, clock.now())));
  app.post('/v1/admin/policies/reload', async (request) => policies.reload(ctxOf(request, clock.now())));
  app.post('/v1/admin/users', async (request, reply) => {
    const b = (request.body ?? {}) as Body;
    const u = await identity.createUser(ctxOf(request, clock.now()), {
      username: b.username,
      ...(b.password !== undefined ? { password: b.password } : {}),
      ...(b.email !== undefined ? { email: b.email } : {}),
    });
    return reply.code(201).send(view(u));
  });
  app.get('/v1/admin/users', async (request) => {
    const users = await identity.listUsers(ctxOf(request, clock.now()));
    return { users: users.map(view) };
  });
  app.post<{ Params: { id: string } }>('/v1/admin/users/:id/deactivate', async (request) => {
    const r = await identity.deactivateUser(ctxOf(request, clock.now()), request.params.id);
    return { user: view(r.user), sessionsEnded: r.sessionsEnded };
  });
}

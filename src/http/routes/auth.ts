import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../core/index.ts';
import type { IdentityService } from '../../identity/index.ts';
import type { AccessService } from '../../registry/index.ts';
import { type CookieSettings, clearSessionCookie, setSessionCookie } from '../authn.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;

export function authRoutes(app: FastifyInstance, deps: { identity: IdentityService; access: AccessService; cookie: CookieSettings; clock: Clock }): void {
  const { identity, access, cookie, clock } = deps;

  app.post('/v1/auth/login', { config: { auth: false } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    const r = await identity.login(ctxOf(request, now), body.username, body.password);
    setSessionCookie(reply, cookie, r.token, (r.expiresAt.getTime() - now.getTime()) / 1000);
    return { status: 'ok', csrfToken: r.csrfToken };
  });

  app.post('/v1/auth/logout', async (request, reply) => {
    await identity.logout(ctxOf(request, clock.now()));
    clearSessionCookie(reply, cookie);
    return { status: 'ok' };
  });

  app.get<{ Querystring: { resource?: string } }>('/v1/me/permissions', async (request) => {
    return access.myPermissions(ctxOf(request, clock.now()), request.query.resource);
  });
  app.get('/v1/me', async (request) => {
    const ctx = ctxOf(request, clock.now());
    const me = await identity.me(ctx);
    return {
      user: { id: me.user.id, username: me.user.username, email: me.user.email },
      session: me.session
        ? { id: me.session.id, authTime: me.session.authTime, mfaAt: null, amr: me.session.amr, expiresAt: me.session.expiresAt, idleExpiresAt: me.session.idleExpiresAt }
        : null,
      roles: await access.myRoles(ctx),
    };
  });
}

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Clock } from '../../core/index.ts';
import { ModelkeepError } from '../../core/index.ts';
import type { IdentityService, LoginResult } from '../../identity/index.ts';
import { csrfTokenFor } from '../../identity/index.ts';
import type { AccessService } from '../../registry/index.ts';
import { type CookieSettings, clearSessionCookie, readCookie, setSessionCookie } from '../authn.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;

/** Routes an admin without a second factor can still reach (see authn.ts). */
const ENROLLMENT_OK = { config: { duringMfaEnrollment: true } } as const;

export function authRoutes(app: FastifyInstance, deps: { identity: IdentityService; access: AccessService; cookie: CookieSettings; clock: Clock }): void {
  const { identity, access, cookie, clock } = deps;

  /** Sets the cookie of a new (or rotated) session; the CSRF token goes in the body. */
  const startSession = (reply: FastifyReply, r: LoginResult, now: Date): { status: 'ok'; csrfToken: string } => {
    setSessionCookie(reply, cookie, r.token, (r.expiresAt.getTime() - now.getTime()) / 1000);
    return { status: 'ok', csrfToken: r.csrfToken };
  };

  app.post('/v1/auth/login', { config: { auth: false } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    const r = await identity.login(ctxOf(request, now), body.username, body.password);
    if (r.status === 'mfa_required') {
      // No session yet: the mfaToken is accepted by the second-factor endpoints only.
      return { status: 'mfa_required', mfaToken: r.mfaToken, methods: r.methods, expiresAt: r.expiresAt.toISOString() };
    }
    return { ...startSession(reply, r.session, now), ...(r.mfaEnrollmentRequired ? { mfaEnrollmentRequired: true } : {}) };
  });

  app.post('/v1/auth/mfa/totp', { config: { auth: false } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    return startSession(reply, await identity.loginTotp(ctxOf(request, now), body.mfaToken, body.code), now);
  });

  app.post('/v1/auth/mfa/recovery', { config: { auth: false } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    return startSession(reply, await identity.loginRecovery(ctxOf(request, now), body.mfaToken, body.code), now);
  });

  app.post('/v1/auth/step-up/totp', async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    const r = await identity.stepUpTotp(ctxOf(request, now), body.code);
    return { ...startSession(reply, r, now), mfaAt: now.toISOString() };
  });

  app.post('/v1/auth/logout', ENROLLMENT_OK, async (request, reply) => {
    await identity.logout(ctxOf(request, clock.now()));
    clearSessionCookie(reply, cookie);
    return { status: 'ok' };
  });

  // The console keeps the CSRF token in memory only; after a reload it asks for it here.
  // Same-origin only in effect: the session cookie is SameSite=Strict and no CORS header
  // lets another origin read the answer. See docs/security.md.
  // Enrollment-time too: an admin who reloads the enrollment page needs the token to confirm.
  app.get('/v1/auth/csrf', ENROLLMENT_OK, async (request) => {
    const token = readCookie(request.headers.cookie, cookie.name);
    if (!request.session || !token) throw new ModelkeepError('unauthenticated', 'a console session is required', { hint: 'sign in in the console' });
    const csrfToken = csrfTokenFor(token);
    // A session whose CSRF token was not derived this way (issued by an older server) signs in again.
    if (!identity.csrfMatches(request.session, csrfToken)) throw new ModelkeepError('unauthenticated', 'sign in again', { hint: 'sign in again' });
    return { csrfToken };
  });

  app.post('/v1/auth/logout-all', ENROLLMENT_OK, async (request, reply) => {
    const r = await identity.logoutAll(ctxOf(request, clock.now()));
    clearSessionCookie(reply, cookie);
    return { status: 'ok', sessionsEnded: r.sessionsEnded };
  });

  app.get<{ Querystring: { resource?: string } }>('/v1/me/permissions', async (request) => {
    return access.myPermissions(ctxOf(request, clock.now()), request.query.resource);
  });
  // The caller's own recent sensitive events (sign-ins, new keys and factors, promotions of their models).
  app.get<{ Querystring: { limit?: string } }>('/v1/me/notifications', async (request) => access.myNotifications(ctxOf(request, clock.now()), request.query.limit));
  app.get('/v1/me', ENROLLMENT_OK, async (request) => {
    const ctx = ctxOf(request, clock.now());
    const me = await identity.me(ctx);
    return {
      user: { id: me.user.id, username: me.user.username, email: me.user.email },
      session: me.session
        ? {
            id: me.session.id,
            authTime: me.session.authTime,
            mfaAt: me.session.mfaAt,
            amr: me.session.amr,
            expiresAt: me.session.expiresAt,
            idleExpiresAt: me.session.idleExpiresAt,
          }
        : null,
      roles: await access.myRoles(ctx),
      mfaEnrollmentRequired: request.session?.mfaEnrollmentRequired === true,
    };
  });

  app.get('/v1/me/sessions', ENROLLMENT_OK, async (request) => ({ sessions: await identity.listSessions(ctxOf(request, clock.now())) }));

  app.delete('/v1/me/sessions/:id', ENROLLMENT_OK, async (request, reply) => {
    const { id } = request.params as { id: string };
    const r = await identity.endSession(ctxOf(request, clock.now()), id);
    if (r.current) clearSessionCookie(reply, cookie);
    return { status: 'ok' };
  });

  app.get('/v1/me/mfa', ENROLLMENT_OK, async (request) => identity.mfaStatus(ctxOf(request, clock.now())));

  app.post('/v1/me/mfa/totp', ENROLLMENT_OK, async (request) => identity.beginTotp(ctxOf(request, clock.now())));

  app.post('/v1/me/mfa/totp/confirm', ENROLLMENT_OK, async (request) => {
    const body = (request.body ?? {}) as Body;
    return identity.confirmTotp(ctxOf(request, clock.now()), body.code);
  });

  app.delete('/v1/me/mfa/totp', ENROLLMENT_OK, async (request) => {
    await identity.removeTotp(ctxOf(request, clock.now()));
    return { status: 'ok' };
  });

  app.post('/v1/me/mfa/recovery-codes', ENROLLMENT_OK, async (request) => identity.regenerateRecoveryCodes(ctxOf(request, clock.now())));
}

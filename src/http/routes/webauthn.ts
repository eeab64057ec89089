// Passkeys: registration and management under /v1/me/passkeys, passwordless login and
// step-up under /v1/auth. The ceremonies' options are the WebAuthn JSON the browser's
// PublicKeyCredential.parse*OptionsFromJSON accepts; responses are the credential's toJSON().
import type { FastifyInstance } from 'fastify';
import type { Clock } from '../../core/index.ts';
import type { WebAuthnService } from '../../identity/index.ts';
import { type CookieSettings, setSessionCookie } from '../authn.ts';
import { ctxOf } from '../context.ts';

type Body = Record<string, unknown>;

export function webauthnRoutes(app: FastifyInstance, deps: { webauthn: WebAuthnService; cookie: CookieSettings; clock: Clock }): void {
  const { webauthn, cookie, clock } = deps;

  app.post('/v1/me/passkeys/options', async (request) => webauthn.registrationOptions(ctxOf(request, clock.now())));

  app.post('/v1/me/passkeys', async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const passkey = await webauthn.register(ctxOf(request, clock.now()), body.name, body.response);
    return reply.code(201).send(passkey);
  });

  app.get('/v1/me/passkeys', async (request) => ({ passkeys: await webauthn.list(ctxOf(request, clock.now())) }));

  app.delete<{ Params: { id: string } }>('/v1/me/passkeys/:id', async (request, reply) => {
    await webauthn.remove(ctxOf(request, clock.now()), request.params.id);
    return reply.code(204).send();
  });

  app.post('/v1/auth/passkey/options', { config: { auth: false } }, async (request) => {
    const body = (request.body ?? {}) as Body;
    return webauthn.loginOptions(ctxOf(request, clock.now()), body.username);
  });

  app.post('/v1/auth/passkey', { config: { auth: false } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    const r = await webauthn.login(ctxOf(request, now), body.response);
    setSessionCookie(reply, cookie, r.token, (r.expiresAt.getTime() - now.getTime()) / 1000);
    return { status: 'ok', csrfToken: r.csrfToken };
  });

  // A passkey as the second factor after a password (the mfaToken of the login answer).
  app.post('/v1/auth/mfa/passkey/options', { config: { auth: false } }, async (request) => {
    const body = (request.body ?? {}) as Body;
    return webauthn.pendingLoginOptions(ctxOf(request, clock.now()), body.mfaToken);
  });

  app.post('/v1/auth/mfa/passkey', { config: { auth: false } }, async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    const r = await webauthn.loginSecondFactor(ctxOf(request, now), body.mfaToken, body.response);
    setSessionCookie(reply, cookie, r.token, (r.expiresAt.getTime() - now.getTime()) / 1000);
    return { status: 'ok', csrfToken: r.csrfToken };
  });

  app.post('/v1/auth/step-up/passkey/options', async (request) => webauthn.stepUpOptions(ctxOf(request, clock.now())));

  app.post('/v1/auth/step-up/passkey', async (request, reply) => {
    const body = (request.body ?? {}) as Body;
    const now = clock.now();
    const r = await webauthn.stepUp(ctxOf(request, now), body.response);
    // The session id changed: the old cookie is dead, the new one replaces it.
    setSessionCookie(reply, cookie, r.token, (r.expiresAt.getTime() - now.getTime()) / 1000);
    return { status: 'ok', csrfToken: r.csrfToken };
  });
}

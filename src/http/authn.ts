// Layer 2: who is calling: a session cookie (console), or `Authorization: Bearer` with an
// access token (JWT) or an API key (mkp_…). Every credential is re-validated on every
// request (revocation, idle, absolute lifetime, user still active). A bearer credential
// that does not check out is a 401, never a silent fall back to anonymous (MC-JWT-01).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { AuditLog } from '../audit/index.ts';
import type { Clock } from '../core/index.ts';
import { ModelkeepError, mfaEnrollmentRequired } from '../core/index.ts';
import type { IdentityService } from '../identity/index.ts';
import type { BearerResult } from '../identity/tokens/index.ts';
import { checkBodyType } from './edge.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export interface CookieSettings {
  name: string;
  secure: boolean;
}

export function cookieSettings(tls: boolean): CookieSettings {
  // __Host- binds the cookie to this exact origin (Secure, Path=/, no Domain): only over HTTPS.
  return tls ? { name: '__Host-modelkeep_session', secure: true } : { name: 'modelkeep_session', secure: false };
}

export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name) return part.slice(i + 1).trim();
  }
  return null;
}

export function setSessionCookie(reply: FastifyReply, c: CookieSettings, token: string, maxAgeSeconds: number): void {
  reply.header(
    'set-cookie',
    `${c.name}=${token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${Math.floor(maxAgeSeconds)}${c.secure ? '; Secure' : ''}`,
  );
}

/**
 * Deletes the session cookie with the very name and attributes it was set with (a
 * __Host- cookie is only replaced by another __Host- one), and asks the browser to drop
 * every cookie of this origin (Clear-Site-Data, MC-SES-04).
 */
export function clearSessionCookie(reply: FastifyReply, c: CookieSettings): void {
  reply.header('set-cookie', `${c.name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${c.secure ? '; Secure' : ''}`);
  reply.header('clear-site-data', '"cookies"');
}

/** Routes an admin who has not enrolled a second factor may still call: /v1/me…, logout, enrollment. */
function allowedDuringEnrollment(request: FastifyRequest): boolean {
  if (request.routeOptions.config.duringMfaEnrollment === true) return true;
  // Enrollment routes of every factor live under /v1/me/mfa/ (TOTP here, passkeys elsewhere).
  const url = request.routeOptions.url ?? '';
  return url.startsWith('/v1/me/mfa/') || url.startsWith('/v1/me/passkeys') || url === '/v1/auth/csrf';
}

function expectedOrigin(request: FastifyRequest): string {
  return `${request.protocol}://${request.host}`;
}

export interface BearerAuthn {
  accessToken(token: string): Promise<BearerResult>;
  apiKey(token: string): Promise<BearerResult>;
  audit: AuditLog;
  clock: Clock;
}

// RFC 6750 §2.1: b64token; anything else (a second token, a comma) is malformed.
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

export function registerAuthn(app: FastifyInstance, identity: IdentityService, cookie: CookieSettings, bearer: BearerAuthn): void {
  app.decorateRequest('principal', null as never);
  app.decorateRequest('session', null);
  app.addHook('onRequest', async (request) => {
    request.principal = { kind: 'anonymous' };
    request.session = null;
    const authorization = request.headers.authorization;
    const token = readCookie(request.headers.cookie, cookie.name);
    if (authorization !== undefined && request.routeOptions.config.ownAuthorization !== true) {
      // A bearer credential decides alone: no cookie is read, so no CSRF token is needed.
      const m = BEARER.exec(authorization);
      const presented = m?.[1] ?? '';
      const r: BearerResult = !m
        ? { ok: false, reason: 'malformed Authorization header' }
        : presented.startsWith('mkp_')
          ? await bearer.apiKey(presented)
          : await bearer.accessToken(presented);
      if (!r.ok) {
        const ua = request.headers['user-agent'];
        await bearer.audit.record(
          { requestId: request.id, principal: { kind: 'anonymous' }, ip: request.ip ?? null, userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null, now: bearer.clock.now() },
          { action: 'auth.bearer', outcome: 'failure', resource: `route:${request.method} ${request.routeOptions.url ?? ''}`.slice(0, 200), reason: r.reason },
        );
        throw new ModelkeepError('unauthenticated', 'authentication required', { hint: 'the bearer credential is not valid; sign in again' });
      }
      request.principal = r.principal;
    } else if (token) {
      const ua = request.headers['user-agent'];
      const s = await identity.authenticateSession(token, {
        requestId: request.id,
        ip: request.ip ?? null,
        userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
      });
      if (s) {
        request.principal = s.principal;
        request.session = s;
      }
    }
    const config = request.routeOptions.config;
    if (config.auth !== false && request.principal.kind === 'anonymous') {
      throw new ModelkeepError('unauthenticated', 'authentication required', { hint: 'sign in first' });
    }
    if (!SAFE_METHODS.has(request.method)) {
      // CSRF defence in depth: browsers say where a request comes from; a cross-site
      // state change is refused before the token is even looked at (MC-SES-02).
      const site = request.headers['sec-fetch-site'];
      if (site === 'cross-site' || site === 'same-site') throw new ModelkeepError('csrf_failed', 'cross-site request refused');
      const origin = request.headers.origin;
      if (origin !== undefined && origin !== expectedOrigin(request)) throw new ModelkeepError('csrf_failed', 'cross-origin request refused');
      // A cookie rides along on any request the browser makes: require the token that
      // only our own page, having read the login response, can send.
      if (request.session) {
        const presented = request.headers['x-csrf-token'];
        if (typeof presented !== 'string' || !identity.csrfMatches(request.session, presented)) {
          throw new ModelkeepError('csrf_failed', 'missing or invalid CSRF token', { hint: 'send the csrfToken from login in the X-CSRF-Token header' });
        }
      }
    }
    // Mandatory MFA for admins, enforced here for every route (fail closed: a route must opt in).
    if (request.session?.mfaEnrollmentRequired && !allowedDuringEnrollment(request)) {
      throw mfaEnrollmentRequired();
    }
    if (config.formBody !== true) checkBodyType(request.method, request.headers, config.rawBody === true);
  });
}

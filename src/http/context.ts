import type { FastifyRequest } from 'fastify';
import type { Principal, RequestContext } from '../core/index.ts';
import type { AuthenticatedSession } from '../identity/index.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
    session: AuthenticatedSession | null;
  }
  interface FastifyContextConfig {
    /** false: the route answers without authentication (health, login). */
    auth?: boolean;
    /** true: the body is a raw stream handled by the route (artifact upload). */
    rawBody?: boolean;
    /** true: the route reads the Authorization header itself (metrics token, OAuth client authentication). */
    ownAuthorization?: boolean;
    /** true: the body is application/x-www-form-urlencoded (OAuth endpoints, no cookie read). */
    formBody?: boolean;
    /**
     * true: reachable by an admin who must still enroll a second factor (/v1/me, logout,
     * enrollment). Every other route answers 403 mfa_enrollment_required to such a user.
     */
    duringMfaEnrollment?: boolean;
  }
}

/** The RequestContext a domain service receives: built once per call, with the clock's now. */
export function ctxOf(request: FastifyRequest, now: Date): RequestContext {
  const ua = request.headers['user-agent'];
  return {
    requestId: request.id,
    principal: request.principal,
    ip: request.ip ?? null,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    now,
  };
}

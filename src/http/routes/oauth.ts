// OAuth 2.0 endpoints (RFC 6749, 8628, 7009, 8414, 7517). They take
// application/x-www-form-urlencoded bodies — a parser registered in this scope only, so the
// JSON API never accepts what a cross-site form can send — and answer RFC 6749 errors.
// No ambient credential (cookie) is read here.
import { parse as parseQs } from 'node:querystring';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Clock } from '../../core/index.ts';
import { ModelkeepError } from '../../core/index.ts';
import { type DeviceFlow, OAuthError, type TokenService } from '../../identity/tokens/index.ts';
import { ctxOf } from '../context.ts';

const FORM = /^application\/x-www-form-urlencoded(; ?charset=utf-8)?$/i;
const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

type Params = Record<string, string>;

function formParams(request: FastifyRequest): Params {
  const type = request.headers['content-type'];
  if (typeof type !== 'string' || !FORM.test(type)) throw new OAuthError('invalid_request', 'send the parameters as application/x-www-form-urlencoded');
  const body = request.body;
  if (typeof body !== 'object' || body === null) throw new OAuthError('invalid_request', 'send the parameters as application/x-www-form-urlencoded');
  return body as Params;
}

/** client_secret_basic (RFC 6749 §2.3.1), else client_secret_post. */
function clientCredentials(request: FastifyRequest, p: Params): { id: string; secret: string } | null {
  const h = request.headers.authorization;
  if (h !== undefined) {
    const m = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(h);
    if (!m?.[1]) throw new OAuthError('invalid_client', 'client authentication failed');
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw new OAuthError('invalid_client', 'client authentication failed');
    return { id: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) };
  }
  if (typeof p.client_id === 'string' && typeof p.client_secret === 'string') return { id: p.client_id, secret: p.client_secret };
  return null;
}

function sendOAuthError(err: unknown, reply: FastifyReply): FastifyReply | null {
  if (!(err instanceof OAuthError)) return null;
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  if (err.status === 401) reply.header('www-authenticate', 'Basic realm="modelkeep"');
  return reply.code(err.status).send({ error: err.error, error_description: err.message });
}

export function oauthRoutes(app: FastifyInstance, deps: { tokens: TokenService; device: DeviceFlow; clock: Clock }): void {
  const { tokens, device, clock } = deps;

  app.get('/.well-known/oauth-authorization-server', { config: { auth: false } }, async () => tokens.metadata());
  app.get('/.well-known/jwks.json', { config: { auth: false } }, async (_request, reply) => {
    reply.header('cache-control', 'public, max-age=300');
    return tokens.keys.jwks();
  });

  app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      const parsed = parseQs(text);
      const out: Params = Object.create(null) as Params;
      for (const [k, v] of Object.entries(parsed)) {
        // RFC 6749 §3.2: a parameter sent twice is an invalid request.
        if (Array.isArray(v)) return done(new OAuthError('invalid_request', `parameter '${k.slice(0, 32)}' is repeated`), undefined);
        if (v !== undefined) out[k] = v;
      }
      done(null, out);
    });
    scope.setErrorHandler((err, _request, reply) => {
      if (sendOAuthError(err, reply)) return;
      const code = (err as { code?: string }).code;
      if (code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || (err instanceof ModelkeepError && err.code === 'unsupported_media_type')) {
        sendOAuthError(new OAuthError('invalid_request', 'send the parameters as application/x-www-form-urlencoded'), reply);
        return;
      }
      throw err;
    });
    // The authn hook's JSON-only body check does not apply: these routes take forms.
    const cfg = { auth: false, ownAuthorization: true, formBody: true } as const;

    scope.post('/oauth/token', { config: cfg }, async (request, reply) => {
      const p = formParams(request);
      const ctx = ctxOf(request, clock.now());
      let result: unknown;
      switch (p.grant_type) {
        case DEVICE_GRANT:
          result = await device.poll(ctx, p);
          break;
        case 'refresh_token':
          result = await tokens.refresh(ctx, p);
          break;
        case 'client_credentials':
          result = await tokens.clientCredentials(ctx, clientCredentials(request, p), p);
          break;
        case undefined:
          throw new OAuthError('invalid_request', 'grant_type is required');
        default:
          await tokens.audit.record(ctx, { action: 'auth.token', outcome: 'failure', reason: `unsupported grant type ${String(p.grant_type).slice(0, 64)}` });
          throw new OAuthError('unsupported_grant_type', 'this server supports the device_code, refresh_token and client_credentials grants');
      }
      reply.header('pragma', 'no-cache');
      return result;
    });

    scope.post('/oauth/device_authorization', { config: cfg }, async (request) => {
      const p = formParams(request);
      return device.authorize(ctxOf(request, clock.now()), p);
    });

    scope.post('/oauth/revoke', { config: cfg }, async (request) => {
      const p = formParams(request);
      await tokens.revoke(ctxOf(request, clock.now()), p);
      return {};
    });
  });
}

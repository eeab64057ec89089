// The Fastify app: one hook per layer (edge, authn), then routes per module.
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import Fastify, { type FastifyInstance, type FastifyLoggerOptions, type FastifyRequest } from 'fastify';
import sjson from 'secure-json-parse';
import type { AlertStore, AuditTree, MetricsExporter } from '../audit/index.ts';
import type { PolicyService } from '../authz/index.ts';
import type { Clock, Config } from '../core/index.ts';
import { ModelkeepError, newRequestId } from '../core/index.ts';
import type { DeployService } from '../deploy/index.ts';
import type { IdentityService, WebAuthnService } from '../identity/index.ts';
import type { ApiKeys, DeviceFlow, ServiceAccounts, TokenService } from '../identity/tokens/index.ts';
import type { PipelineService } from '../pipelines/index.ts';
import type { AccessService, AlertReader, AuditReader, RegistryService } from '../registry/index.ts';
import type { Db } from '../storage/index.ts';
import { cookieSettings, registerAuthn } from './authn.ts';
import { registerEdge, setResponseHeaders } from './edge.ts';
import { sendError } from './errors.ts';
import { adminRoutes } from './routes/admin.ts';
import { alertRoutes } from './routes/alerts.ts';
import { apiKeyRoutes } from './routes/api-keys.ts';
import { artifactRoutes } from './routes/artifacts.ts';
import { auditRoutes } from './routes/audit.ts';
import { authRoutes } from './routes/auth.ts';
import { consoleRoutes, DEFAULT_WEB_DIR } from './routes/console.ts';
import { oauthRoutes } from './routes/oauth.ts';
import { operationsRoutes } from './routes/operations.ts';
import { registryRoutes } from './routes/registry.ts';
import { webauthnRoutes } from './routes/webauthn.ts';

export interface AppServices {
  db: Db;
  auditTree: AuditTree;
  alerts: AlertStore;
  clock: Clock;
  identity: IdentityService;
  webauthn: WebAuthnService;
  registry: RegistryService;
  access: AccessService;
  auditReader: AuditReader;
  alertReader: AlertReader;
  metrics: MetricsExporter;
  deploy: DeployService;
  pipelines: PipelineService;
  tokens: TokenService;
  apiKeys: ApiKeys;
  device: DeviceFlow;
  serviceAccounts: ServiceAccounts;
  policies: PolicyService;
}

export interface RouteInfo {
  method: string;
  url: string;
  /** false: declared to answer without authentication (health, login, public audit proofs). */
  auth: boolean;
}

const ROUTES = new WeakMap<FastifyInstance, RouteInfo[]>();

/** Every route the app registered, as Fastify saw it (the route walk test enumerates them). */
export function registeredRoutes(app: FastifyInstance): readonly RouteInfo[] {
  return ROUTES.get(app) ?? [];
}

/** Never log credentials: the logger sees no headers (redacted if it ever does) and no query strings. */
function loggerOptions(level: Config['logLevel']): false | (FastifyLoggerOptions & { level: string; redact: string[] }) {
  if (level === 'silent') return false;
  return {
    level,
    redact: ['req.headers.cookie', 'req.headers.authorization', 'req.headers["x-csrf-token"]', 'res.headers["set-cookie"]'],
    serializers: {
      // Query strings can carry one-time values (a device login's user code in
      // /device?user_code= and /v1/auth/device?userCode=): the log keeps the path only.
      req: (req: FastifyRequest) => ({ method: req.method, url: req.url.split('?', 1)[0] ?? '', reqId: req.id, remoteAddress: req.ip }),
    },
  };
}

export function buildApp(services: AppServices, config: Config): FastifyInstance {
  const tls = config.tls !== undefined;
  const t = config.timeouts;
  const app = Fastify({
    logger: loggerOptions(config.logLevel),
    genReqId: newRequestId,
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    bodyLimit: config.limits.maxJsonBytes,
    // Slowloris and idle-connection defences (MC-API-01).
    connectionTimeout: t.idleSocketMs,
    keepAliveTimeout: t.keepAliveMs,
    requestTimeout: 0,
    return503OnClosing: true,
    // A URL the router cannot decode (overlong UTF-8 such as '..%c0%af', MC-ART-01) or an
    // over-long parameter is invalid input: answered in the contract's error shape with a
    // request id, not Fastify's default body (which echoes the URL back).
    frameworkErrors: (_err, request, reply) => {
      setResponseHeaders(reply, request.id, tls);
      sendError(new ModelkeepError('invalid_input', 'the request URL is not valid'), request, reply);
    },
    serverFactory: (handler) => {
      const options = {
        headersTimeout: t.headersMs,
        requestTimeout: 0,
        keepAliveTimeout: t.keepAliveMs,
        connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(t.headersMs / 4))),
        maxHeaderSize: 16 * 1024,
      };
      const server = config.tls
        ? createHttpsServer({ ...options, cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile), minVersion: 'TLSv1.2' }, handler)
        : createHttpServer(options, handler);
      // Fastify applies connectionTimeout only to servers it creates itself. Without this an
      // upload whose body stalls (no byte, no close) would hold its connection forever (MC-API-01).
      server.setTimeout(t.idleSocketMs);
      return server;
    },
  });
  const routes: RouteInfo[] = [];
  ROUTES.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) routes.push({ method, url: r.url, auth: r.config?.auth !== false });
  });
  // text/plain is what a cross-site form can send without a preflight: no parser for it.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    // A bodyless POST (finalize, logout) may still carry the JSON content type.
    if (text.trim() === '') return done(null, undefined);
    try {
      // Drops __proto__ and constructor.prototype keys (prototype poisoning).
      done(null, sjson.parse(text, null, { protoAction: 'remove', constructorAction: 'remove' }));
    } catch {
      done(new ModelkeepError('invalid_input', 'the request body is not valid JSON'), undefined);
    }
  });
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => sendError(new ModelkeepError('not_found', 'no such route'), request, reply));

  registerEdge(app, { bodyMs: t.bodyMs, tls });
  const cookie = cookieSettings(tls);

  app.get('/healthz', { config: { auth: false } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { auth: false } }, async (_request, reply) => {
    try {
      await services.db.kysely.selectFrom('audit_head').select('id').executeTakeFirst();
      return { status: 'ok' };
    } catch {
      return reply.code(503).send({ status: 'unavailable' });
    }
  });

  const { clock } = services;
  registerAuthn(app, services.identity, cookie, {
    accessToken: (t) => services.tokens.authenticateAccessToken(t),
    apiKey: (t) => services.apiKeys.authenticate(t),
    audit: services.tokens.audit,
    clock,
  });
  oauthRoutes(app, { tokens: services.tokens, device: services.device, clock });
  apiKeyRoutes(app, { apiKeys: services.apiKeys, device: services.device, serviceAccounts: services.serviceAccounts, clock });
  authRoutes(app, { identity: services.identity, access: services.access, cookie, clock });
  webauthnRoutes(app, { webauthn: services.webauthn, cookie, clock });
  adminRoutes(app, { identity: services.identity, policies: services.policies, clock });
  registryRoutes(app, { registry: services.registry, access: services.access, clock });
  artifactRoutes(app, {
    registry: services.registry,
    clock,
    rate: { minBytesPerSecond: config.limits.minUploadBytesPerSecond, windowSeconds: config.limits.minUploadWindowSeconds },
  });
  operationsRoutes(app, { deploy: services.deploy, pipelines: services.pipelines, auditReader: services.auditReader, clock });
  auditRoutes(app, { auditReader: services.auditReader, tree: services.auditTree, clock });
  alertRoutes(app, { alertReader: services.alertReader, metrics: services.metrics, clock });
  consoleRoutes(app, { dir: DEFAULT_WEB_DIR });
  return app;
}

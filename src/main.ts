// The composition root: parse config once → open storage → build modules → start HTTP.
// The only place that wires modules together.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import {
  AlertStore,
  AlertWebhooks,
  AuditLog,
  AuditTree,
  DetectorEngine,
  FileWitness,
  LocationResolver,
  loadSigningKey,
  MetricsExporter,
  WebhookWitness,
  type Witness,
} from './audit/index.ts';
import { Guard, PolicyHolder, PolicyLoadError, PolicyService } from './authz/index.ts';
import type { Clock, Config, ConfigInput, RequestContext } from './core/index.ts';
import { ModelkeepError, newId, parseConfig, systemClock } from './core/index.ts';
import { DeployService } from './deploy/index.ts';
import { buildApp } from './http/index.ts';
import { IdentityService, Throttle, WebAuthnService } from './identity/index.ts';
import { ApiKeys, DeviceFlow, ServiceAccounts, TokenService } from './identity/tokens/index.ts';
import { PipelineService } from './pipelines/index.ts';
import { AccessService, AlertReader, AuditReader, BindingExpiry, projectNames, RegistryService } from './registry/index.ts';
import { type Db, FsBlobStore, InProcessEventBus, openDatabase } from './storage/index.ts';

/** The policy folder shipped with Modelkeep (used unless `policiesDir` / `--policies` names another). */
export const DEFAULT_POLICIES_DIR = join(import.meta.dirname, '..', 'policies');

export interface Services {
  config: Config;
  policyHolder: PolicyHolder;
  policies: PolicyService;
  clock: Clock;
  db: Db;
  blobs: FsBlobStore;
  bus: InProcessEventBus;
  audit: AuditLog;
  auditTree: AuditTree;
  alerts: AlertStore;
  guard: Guard;
  identity: IdentityService;
  webauthn: WebAuthnService;
  registry: RegistryService;
  access: AccessService;
  bindingExpiry: BindingExpiry;
  auditReader: AuditReader;
  alertReader: AlertReader;
  detectors: DetectorEngine;
  alertWebhooks: AlertWebhooks;
  metrics: MetricsExporter;
  deploy: DeployService;
  pipelines: PipelineService;
  tokens: TokenService;
  apiKeys: ApiKeys;
  device: DeviceFlow;
  serviceAccounts: ServiceAccounts;
  close(): Promise<void>;
}

export async function buildServices(config: Config, clock: Clock = systemClock): Promise<Services> {
  // Read before anything opens: a bad GeoIP file fails the start cleanly.
  const resolver = LocationResolver.fromConfig(config.detectors);
  // Refused policies stop the start here, with every error named by file and line.
  const policyHolder = loadPolicies(config, clock);
  const db = await openDatabase({ dataDir: config.dataDir, databaseUrl: config.databaseUrl });
  const blobs = await FsBlobStore.open(join(config.dataDir, 'blobs'));
  const bus = new InProcessEventBus();
  const k = db.kysely;
  const audit = new AuditLog(k);
  const alerts = new AlertStore(k);
  const witnesses: Witness[] = [
    ...config.audit.witnessDirs.map((d) => new FileWitness(d)),
    ...config.audit.witnessWebhooks.map((w) => new WebhookWitness(w.url, w.secret)),
  ];
  const auditTree = new AuditTree({
    db: k,
    key: loadSigningKey({ dataDir: config.dataDir, keyFile: config.audit.signingKeyFile }),
    clock,
    alerts,
    options: { intervalMs: config.audit.treeHeadIntervalMs, witnesses },
  });
  // Network zones for the decision context: the configured CIDR zones of the detectors only
  // (GeoIP countries are not a zone a policy should name).
  const zoneOf = (ip: string | null): string => {
    const loc = resolver.resolve(ip);
    return loc?.source === 'zone' ? loc.zone : 'unknown';
  };
  const guard = new Guard({
    db: k,
    audit,
    policies: policyHolder,
    bus,
    // One freshness window for step-up, in the guard's context and in identity's own checks.
    options: { mfaFreshMinutes: config.mfa.freshMinutes, cacheSize: config.authz.decisionCacheSize, bindingsCacheSeconds: config.authz.bindingsCacheSeconds, zoneOf },
  });
  const policies = new PolicyService({ holder: policyHolder, guard, audit, bus });
  const throttle = new Throttle({ db: k, dialect: db.dialect, policy: config.throttle, clock });
  const identity = new IdentityService({ db: k, audit, guard, sessions: config.sessions, clock, bus, mfa: config.mfa, throttle });
  const webauthn = new WebAuthnService({ db: k, audit, identity, config: config.webauthn });
  const registry = new RegistryService({ db: k, audit, guard, blobs, bus, limits: { maxArtifactBytes: config.limits.maxArtifactBytes } });
  const lookup = registry.lookup;
  const access = new AccessService({ db: k, audit, guard, identity, lookup, bus, maxBindingDays: config.authz.maxBindingDays });
  const bindingExpiry = new BindingExpiry({ db: k, audit, bus, clock, intervalMs: config.authz.bindingExpiryIntervalMs });
  const auditReader = new AuditReader({ db: k, audit, guard, lookup });
  const deploy = new DeployService({ db: k, audit, guard, lookup, bus });
  const pipelines = new PipelineService({ db: k, audit, guard, lookup });
  const alertReader = new AlertReader({ db: k, audit, guard, alerts });
  const tokens = new TokenService({ db: k, audit, clock, bus, config: config.tokens });
  const projectOf = (ctx: RequestContext, name: unknown, w: Parameters<typeof lookup.project>[2]) => lookup.project(ctx, name, w);
  const apiKeys = new ApiKeys({ tokens, maxDays: config.apiKeys.maxDays, projectOf, requireFreshMfa: (ctx) => identity.requireFreshMfa(ctx) });
  tokens.throttle = throttle;
  const device = new DeviceFlow(tokens);
  // Approving a device login needs a fresh MFA from anyone who has a second factor.
  device.mfaEnrolled = async (userId) => (await identity.factorCount(userId)) > 0;
  // logout-all and deactivation end token families too, in the same transaction.
  identity.revokeCredentialsWith(async (tx, userId, now, reason) => (await tokens.revokeAllOfUser(tx, userId, now, reason)).publish);
  const serviceAccounts = new ServiceAccounts({ tokens, guard, projectOf });
  const detectors = new DetectorEngine({
    db: k,
    alerts,
    clock,
    config: config.detectors,
    resolver,
    projectName: projectNames(k),
  });
  const a = config.alerts;
  const alertWebhooks = new AlertWebhooks(a.webhooks, {
    retries: a.webhookRetries,
    backoffMs: a.webhookBackoffMs,
    timeoutMs: a.webhookTimeoutMs,
    queueMax: a.webhookQueueMax,
  });
  // Every stored alert (detectors, witnesses) goes out; enqueue never blocks the caller.
  alerts.onAlert((alert) => alertWebhooks.enqueue(alert));
  const metrics = new MetricsExporter(k, config.metrics.token);
  return {
    config,
    policyHolder,
    policies,
    clock,
    db,
    blobs,
    bus,
    audit,
    auditTree,
    alerts,
    guard,
    identity,
    webauthn,
    registry,
    access,
    bindingExpiry,
    auditReader,
    alertReader,
    detectors,
    alertWebhooks,
    metrics,
    deploy,
    pipelines,
    tokens,
    apiKeys,
    device,
    serviceAccounts,
    close: async () => {
      // Judge what was committed before shutdown, then stop; stored alerts survive undelivered webhooks.
      await bindingExpiry.stop();
      await detectors.stop();
      await alertWebhooks.stop();
      // A last signed tree head covers everything written before shutdown.
      await auditTree.stop();
      await blobs.close();
      await db.close();
    },
  };
}

function loadPolicies(config: Config, clock: Clock): PolicyHolder {
  try {
    return new PolicyHolder(config.authz.engine, config.policiesDir ?? DEFAULT_POLICIES_DIR, clock);
  } catch (err) {
    if (err instanceof PolicyLoadError) {
      throw new ModelkeepError('invalid_input', err.message, { hint: 'fix the policy files named above, or point --policies at a valid folder' });
    }
    if (err instanceof Error && 'code' in err && err.code === 'ENOENT') {
      throw new ModelkeepError('invalid_input', `the policy folder ${config.policiesDir ?? DEFAULT_POLICIES_DIR} does not exist`);
    }
    throw err;
  }
}

/**
 * SIGHUP re-reads the policy folder (validated; a refused set leaves the active one in
 * place). Both outcomes are audited as `policy.reload` by the local operator. Returns a
 * function that removes the handler.
 */
export function reloadPoliciesOnSighup(server: RunningServer, report: (line: string) => void): () => void {
  const handler = () => {
    const { policies, clock } = server.services;
    const ctx: RequestContext = {
      requestId: newId('sig'),
      principal: { kind: 'operator', id: 'operator', username: 'operator' },
      ip: null,
      userAgent: 'SIGHUP',
      now: clock.now(),
    };
    policies.reloadFromSignal(ctx).then(
      (info) => report(`policies reloaded from ${info.dir}: version ${info.version}${info.changed ? '' : ' (unchanged)'}`),
      (err: unknown) => report(err instanceof Error ? err.message : String(err)),
    );
  };
  process.on('SIGHUP', handler);
  return () => process.off('SIGHUP', handler);
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  services: Services;
  close(): Promise<void>;
}

export async function startServer(input: ConfigInput, opts: { clock?: Clock } = {}): Promise<RunningServer> {
  const config = parseConfig(input);
  const services = await buildServices(config, opts.clock);
  const app = buildApp(services, config);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    await services.close();
    throw err;
  }
  services.auditTree.start();
  services.bindingExpiry.onError = (err) => app.log.error({ err }, 'binding expiry sweep failed; retrying');
  services.bindingExpiry.start();
  services.detectors.onError = (err) => app.log.error({ err }, 'anomaly detection failed; retrying');
  services.alertWebhooks.onError = (target, err) => app.log.warn({ err, target }, 'alert webhook delivery failed');
  try {
    await services.detectors.start();
  } catch (err) {
    await app.close();
    await services.close();
    throw err;
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  // WebAuthn's default origin needs the port actually bound (port 0 in tests).
  services.webauthn.listening({ host: config.host, port, tls: config.tls !== undefined });
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `${config.tls ? 'https' : 'http'}://${host}:${port}`;
  // Tokens name this server as issuer and audience unless tokens.issuer says otherwise.
  services.tokens.setDefaultIssuer(url);
  let closing: Promise<void> | null = null;
  return {
    url,
    app,
    services,
    close: () => {
      closing ??= (async () => {
        await app.close();
        await services.close();
      })();
      return closing;
    },
  };
}

/** Offline bootstrap of an account by the local operator (who holds the data directory). */
export async function bootstrapUser(
  store: { dataDir: string; databaseUrl?: string },
  user: { username: string; password: string; email?: string; platformAdmin: boolean },
): Promise<{ id: string; username: string }> {
  const config = parseConfig({ dataDir: store.dataDir, ...(store.databaseUrl ? { databaseUrl: store.databaseUrl } : {}) });
  const services = await buildServices(config);
  try {
    const ctx: RequestContext = {
      requestId: newId('cli'),
      principal: { kind: 'operator', id: 'operator', username: 'operator' },
      ip: null,
      userAgent: 'modelkeep-cli',
      now: services.clock.now(),
    };
    const u = await services.access.bootstrapUser(ctx, user);
    return { id: u.id, username: u.username };
  } finally {
    await services.close();
  }
}

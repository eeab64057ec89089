// One configuration schema, parsed and frozen at start. Domain modules receive their
// slice; nothing below http/ and cli/ reads process.env.
import { isIP } from 'node:net';
import { z } from 'zod';
import { ModelkeepError } from './errors.ts';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

// ---- anomaly detection, alerts and metrics (see docs/alerts.md)

const SEVERITY = z.enum(['low', 'medium', 'high']);
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
const HHMM = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

/** `ADDRESS/PREFIX`, IPv4 (prefix 0-32) or IPv6 (prefix 0-128). */
export function isCidr(value: string): boolean {
  const slash = value.lastIndexOf('/');
  if (slash < 1) return false;
  const family = isIP(value.slice(0, slash));
  const prefix = value.slice(slash + 1);
  if (family === 0 || !/^[0-9]{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (family === 4 ? 32 : 128);
}

const workingHoursSchema = z
  .object({
    /** IANA time zone the hours are read in, e.g. Europe/Paris. */
    timeZone: z.string().min(1).refine(isTimeZone, 'not an IANA time zone').default('UTC'),
    days: z.array(z.enum(WEEKDAYS)).min(1).default(['mon', 'tue', 'wed', 'thu', 'fri']),
    /** HH:MM local; start after end means an overnight shift (22:00-06:00). */
    start: z.string().regex(HHMM, 'use HH:MM').default('08:00'),
    end: z.string().regex(HHMM, 'use HH:MM').default('19:00'),
  })
  .strict()
  .refine((h) => h.start !== h.end, 'start and end must differ');

const zoneSchema = z
  .object({
    name: z.string().min(1).max(64),
    cidrs: z.array(z.string().refine(isCidr, 'not an IPv4 or IPv6 CIDR (ADDRESS/PREFIX)')).min(1),
    country: z.string().min(2).max(64).optional(),
    lat: z.number().min(-90).max(90).optional(),
    lon: z.number().min(-180).max(180).optional(),
  })
  .strict()
  .refine((zone) => (zone.lat === undefined) === (zone.lon === undefined), 'give both lat and lon, or neither');

const detectorsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** Committed events are read every pollMs, at most batchSize at a time. */
    pollMs: z.number().int().min(10).max(60_000).default(200),
    batchSize: z.number().int().min(1).max(10_000).default(500),
    /** At start, the last warmupEvents events refill the windows (no alert is raised for them). */
    warmupEvents: z.number().int().min(0).max(100_000).default(2000),
    /** How far back (in events) a user's earlier zones and last location are looked up. */
    historyEvents: z.number().int().min(0).max(10_000_000).default(200_000),
    /** Named networks; the longest matching prefix wins. */
    zones: z.array(zoneSchema).default([]),
    /** A MaxMind GeoIP2/GeoLite2 City or Country .mmdb file for addresses outside every zone. */
    geoipFile: z.string().min(1).optional(),
    offHours: z
      .object({
        enabled: z.boolean().default(false),
        severity: SEVERITY.default('medium'),
        /** One alert per user per this many minutes of off-hours activity. */
        dedupeMinutes: z.number().positive().max(7 * 24 * 60).default(60),
        /** Hours by username (first), by project name (second), else `default`; none: not checked. */
        users: z.record(z.string().min(1), workingHoursSchema).default({}),
        projects: z.record(z.string().min(1), workingHoursSchema).default({}),
        default: workingHoursSchema.optional(),
      })
      .strict()
      .prefault({}),
    newZone: z
      .object({
        enabled: z.boolean().default(true),
        severity: SEVERITY.default('medium'),
        /** Successful events of these actions are logins. */
        loginActions: z.array(z.string().min(1)).min(1).default(['auth.login']),
      })
      .strict()
      .prefault({}),
    impossibleTravel: z
      .object({
        enabled: z.boolean().default(true),
        severity: SEVERITY.default('high'),
        maxKmh: z.number().positive().default(900),
        /** Hops shorter than this never count (zone coordinates are approximate). */
        minDistanceKm: z.number().nonnegative().default(100),
        dedupeMinutes: z.number().positive().max(7 * 24 * 60).default(60),
      })
      .strict()
      .prefault({}),
    massDownload: z
      .object({
        enabled: z.boolean().default(true),
        severity: SEVERITY.default('high'),
        count: z.number().int().min(1).default(100),
        bytes: z.number().int().min(1).default(10 * 1024 ** 3),
        windowMinutes: z.number().positive().max(24 * 60).default(10),
      })
      .strict()
      .prefault({}),
    denialBurst: z
      .object({
        enabled: z.boolean().default(true),
        severity: SEVERITY.default('medium'),
        count: z.number().int().min(1).default(20),
        windowMinutes: z.number().positive().max(24 * 60).default(5),
        outcomes: z.array(z.enum(['deny', 'failure', 'error'])).min(1).default(['deny']),
      })
      .strict()
      .prefault({}),
    refreshReuse: z
      .object({ enabled: z.boolean().default(true), severity: SEVERITY.default('high'), action: z.string().min(1).default('auth.refresh_reuse') })
      .strict()
      .prefault({}),
    breakGlass: z
      .object({ enabled: z.boolean().default(true), severity: SEVERITY.default('high'), action: z.string().min(1).default('governance.break_glass') })
      .strict()
      .prefault({}),
    passkeyClone: z
      .object({ enabled: z.boolean().default(true), severity: SEVERITY.default('high'), action: z.string().min(1).default('auth.passkey_clone_suspected') })
      .strict()
      .prefault({}),
  })
  .strict();

const alertsSchema = z
  .object({
    /** Every stored alert is POSTed here, signed like the witness webhooks. */
    webhooks: z
      .array(z.object({ url: z.string().url(), secret: z.string().min(16), minSeverity: SEVERITY.default('low') }).strict())
      .default([]),
    webhookRetries: z.number().int().min(0).max(10).default(4),
    /** First retry after this, doubling each time. */
    webhookBackoffMs: z.number().int().min(1).max(600_000).default(1000),
    webhookTimeoutMs: z.number().int().min(100).max(60_000).default(5000),
    /** Deliveries waiting beyond this are dropped (the alert stays stored). */
    webhookQueueMax: z.number().int().min(1).max(100_000).default(1000),
  })
  .strict();

const metricsSchema = z
  .object({
    /** Bearer token for GET /metrics; unset: /metrics answers 404. */
    token: z.string().min(16).optional(),
  })
  .strict();

export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('./data'),
    /** postgres://… selects PostgreSQL; absent means SQLite in dataDir. */
    databaseUrl: z.string().url().optional(),
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(7470),
    tls: z.object({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
    /** Accept X-Forwarded-For from these proxy addresses only. Empty: trust no proxy. */
    trustedProxies: z.array(z.string().min(1)).default([]),
    sessions: z
      .object({
        idleMinutes: z.number().positive().max(24 * 60).default(30),
        absoluteHours: z.number().positive().max(24 * 30).default(12),
        /** A verified session is trusted from memory this long; revocations in this process apply at once, another process's after at most this. */
        cacheSeconds: z.number().min(0).max(300).default(30),
      })
      .prefault({}),
    tokens: z
      .object({
        /** The issuer (iss) and audience (aud) of access tokens; default: the server's own origin per request. */
        issuer: z.string().url().optional(),
        accessTokenMinutes: z.number().positive().max(60).default(5),
        /** Tolerated clock difference when checking exp/nbf/iat. */
        clockSkewSeconds: z.number().int().min(0).max(60).default(60),
        /** A new signing key is used after this many hours; old keys stay published until their tokens expired. */
        keyRotationHours: z.number().positive().max(24 * 365).default(24),
        /** A refresh token unused this long is dead. */
        refreshIdleHours: z.number().positive().max(24 * 90).default(7 * 24),
        /** A token family (one login) ends this long after the login, whatever the refreshes. */
        refreshAbsoluteHours: z.number().positive().max(24 * 365).default(30 * 24),
        /** Device codes are valid this long (RFC 8628 expires_in). */
        deviceCodeMinutes: z.number().positive().max(60).default(10),
        /** Minimum polling interval announced to devices. */
        devicePollSeconds: z.number().int().min(1).max(60).default(5),
        /** Bounded caches of verified tokens and of revocation state. */
        cacheEntries: z.number().int().min(0).max(1_000_000).default(10_000),
        /** Revocation state learnt from the DB is re-read after this (bounds staleness across processes). */
        revocationCacheSeconds: z.number().min(0).max(300).default(30),
      })
      .strict()
      .prefault({}),
    apiKeys: z
      .object({ maxDays: z.number().int().min(1).max(3650).default(90) })
      .strict()
      .prefault({}),
    mfa: z
      .object({
        /** platform-admin and project-admin must enroll a second factor before doing anything else. */
        requiredForAdmins: z.boolean().default(true),
        /** A step-up (second factor) counts as fresh for this long (sensitive operations answer 428 after). */
        freshMinutes: z.number().positive().max(60).default(15),
        /** How long the mfaToken of a password login waiting for its second factor lives. */
        pendingMinutes: z.number().positive().max(15).default(5),
        /** Wrong codes for one pending login before it is discarded (the login starts over). */
        maxFailuresPerLogin: z.number().int().min(1).max(10).default(5),
      })
      .strict()
      .prefault({}),
    throttle: z
      .object({
        /** Failures per account (login, or second factor) before back-off starts. */
        accountFreeFailures: z.number().int().min(1).max(100).default(5),
        /** Failures per client IP (all accounts) before back-off starts. */
        ipFreeFailures: z.number().int().min(1).max(10_000).default(50),
        /** The wait doubles per further failure (1 s, 2 s, 4 s, ...) up to this. */
        maxDelaySeconds: z.number().int().min(1).max(3600).default(900),
        /** A counter with no failure for this long starts again from zero. */
        forgetAfterMinutes: z.number().positive().max(7 * 24 * 60).default(24 * 60),
      })
      .strict()
      .prefault({}),
    limits: z
      .object({
        /** Largest artifact accepted; larger bodies answer 413 before or while streaming. */
        maxArtifactBytes: z.number().int().positive().default(64 * 1024 ** 3),
        maxJsonBytes: z.number().int().positive().default(1024 * 1024),
        /** Uploads slower than this, averaged over the window, are aborted (slow-body defence). */
        minUploadBytesPerSecond: z.number().int().nonnegative().default(16 * 1024),
        minUploadWindowSeconds: z.number().positive().default(30),
      })
      .prefault({}),
    timeouts: z
      .object({
        /** Whole request head must arrive within this (slowloris defence). */
        headersMs: z.number().int().positive().default(10_000),
        /** A JSON body must arrive within this after the head. */
        bodyMs: z.number().int().positive().default(15_000),
        /** An idle socket is closed after this. */
        idleSocketMs: z.number().int().positive().default(60_000),
        keepAliveMs: z.number().int().positive().default(5_000),
      })
      .prefault({}),
    audit: z
      .object({
        /** Operator-supplied Ed25519 PEM; by default a key is created in the data folder. */
        signingKeyFile: z.string().min(1).optional(),
        /** A tree head is signed this often while events arrive, and at shutdown. */
        treeHeadIntervalMs: z.number().int().positive().default(2000),
        /** Folders (outside the data folder) that keep an append-only copy of every tree head. */
        witnessDirs: z.array(z.string().min(1)).default([]),
        /** Webhooks that receive every tree head, signed with HMAC-SHA256. */
        witnessWebhooks: z.array(z.object({ url: z.string().url(), secret: z.string().min(16) }).strict()).default([]),
      })
      .strict()
      .prefault({}),
    /**
     * WebAuthn relying party (passkeys). Unset values are derived when the server listens:
     * on loopback rpId 'localhost' and origin http(s)://localhost:PORT; elsewhere rpId = host
     * and origin https://host[:PORT]. Behind a proxy, set both explicitly.
     */
    webauthn: z
      .object({
        /** A registrable domain (no scheme, no port); browsers reject IP addresses. */
        rpId: z
          .string()
          .min(1)
          .max(253)
          .regex(/^[a-z0-9.-]+$/, 'a lowercase domain name without scheme or port')
          .optional(),
        rpName: z.string().min(1).max(64).default('Modelkeep'),
        /** Exact origins (scheme://host[:port]) the console is served from. */
        origins: z
          .array(z.string().regex(/^https?:\/\/[^/\s?#]+$/, 'an origin such as https://models.example.com'))
          .min(1)
          .optional(),
        })
        .strict()
        .prefault({}),
    /** Folder with schema.cedarschema and *.cedar policies; default: the policies/ folder shipped with Modelkeep. */
    policiesDir: z.string().min(1).optional(),
    authz: z
      .object({
        /** The policy decision point. Only Cedar ships; the seam is for another engine later. */
        engine: z.enum(['cedar']).default('cedar'),
        /** Most authorization decisions kept in the exact decision cache (least recently used go first). */
        decisionCacheSize: z.number().int().min(1).max(10_000_000).default(100_000),
        /**
         * A principal's role bindings (and the decisions made from them) are trusted from memory
         * this long: changes through this process apply at once, another process's within this bound.
         */
        bindingsCacheSeconds: z.number().min(0).max(300).default(30),
        /** The longest a role binding may be granted for (POST …/bindings with expiresAt). */
        maxBindingDays: z.number().positive().max(3650).default(365),
        /** How often expired bindings are swept: each one is audited (binding.expired) once and dropped. */
        bindingExpiryIntervalMs: z.number().int().min(100).max(3_600_000).default(60_000),
      })
      .strict()
      .prefault({}),
    detectors: detectorsSchema.prefault({}),
    alerts: alertsSchema.prefault({}),
    metrics: metricsSchema.prefault({}),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
  })
  .strict();

export type Config = Readonly<z.infer<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;

export function parseConfig(input: ConfigInput): Config {
  const r = configSchema.safeParse(input);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new ModelkeepError('invalid_input', `invalid configuration: ${first?.path.join('.') ?? ''} ${first?.message ?? ''}`.trim());
  }
  const cfg = r.data;
  // Embedded mode binds loopback. Any other address must be protected by TLS or by a
  // trusted proxy that terminates it: session cookies must never cross a network in clear.
  if (!LOOPBACK.has(cfg.host) && !cfg.tls && cfg.trustedProxies.length === 0) {
    throw new ModelkeepError(
      'invalid_input',
      `refusing to listen on ${cfg.host} without TLS: pass --tls-cert and --tls-key, or --trusted-proxy ADDR when a proxy terminates TLS`,
    );
  }
  return deepFreeze(cfg);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

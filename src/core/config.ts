// One configuration schema, parsed and frozen at start. Domain modules receive their
// slice; nothing below http/ and cli/ reads process.env.
import { z } from 'zod';
import { ModelkeepError } from './errors.ts';

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

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
      })
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

// Test harness: a real server on loopback over a real database (a fresh SQLite data dir,
// or a fresh PostgreSQL database on the local server), and a small HTTP client.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Secret, TOTP } from 'otpauth';
import pg from 'pg';
import type { Clock, ConfigInput } from '../../src/core/index.ts';
import { bootstrapUser, type RunningServer, startServer } from '../../src/main.ts';

export const BACKENDS = ['sqlite', 'postgres'] as const;
export type Backend = (typeof BACKENDS)[number];

/** The PostgreSQL server tests use; `.ci/run` makes sure it is up. */
export const PG_ADMIN_URL = process.env.MODELKEEP_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `mk_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  try {
    await admin.connect();
  } catch (err) {
    throw new Error(`PostgreSQL is not reachable at ${PG_ADMIN_URL}: start it (see .ci/run) or set MODELKEEP_TEST_DATABASE_URL`, { cause: err });
  }
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface TestServer extends RunningServer {
  backend: Backend;
  dataDir: string;
  databaseUrl: string | undefined;
}

export interface TestServerOptions {
  config?: Omit<ConfigInput, 'dataDir' | 'databaseUrl'>;
  clock?: Clock;
  /** Reuse an existing data dir / database (restart scenarios). */
  dataDir?: string;
  databaseUrl?: string;
}

export async function startTestServer(backend: Backend, opts: TestServerOptions = {}): Promise<TestServer> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mk-test-'));
  const pgdb = backend === 'postgres' && !opts.databaseUrl ? await createPgDatabase() : null;
  const databaseUrl = opts.databaseUrl ?? pgdb?.url;
  const server = await startServer(
    // Mandatory MFA for admins is off unless a test turns it on (mfa.test.ts does): the
    // fixture's admins sign in with a password only, as before that feature.
    { port: 0, logLevel: 'silent', mfa: { requiredForAdmins: false }, ...opts.config, dataDir, ...(databaseUrl ? { databaseUrl } : {}) },
    opts.clock ? { clock: opts.clock } : {},
  );
  const close = server.close;
  return {
    ...server,
    backend,
    dataDir,
    databaseUrl,
    close: async () => {
      await close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
      await pgdb?.drop();
    },
  };
}

export const PASSWORD = 'a long test password 1';

/** A signed-in HTTP client that sends the session cookie and CSRF token like the console does. */
export class Client {
  readonly base: string;
  cookie: string | null = null;
  csrf: string | null = null;
  constructor(base: string) {
    this.base = base;
  }

  async login(username: string, password = PASSWORD): Promise<Response> {
    const r = await fetch(`${this.base}/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password }),
    });
    if (r.ok) {
      this.cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] ?? null;
      this.csrf = ((await r.clone().json()) as { csrfToken: string }).csrfToken;
    }
    return r;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...(this.cookie ? { cookie: this.cookie } : {}),
      ...(this.csrf ? { 'x-csrf-token': this.csrf } : {}),
      ...extra,
    };
  }

  req(method: string, path: string, body?: unknown, extra: Record<string, string> = {}): Promise<Response> {
    const init: RequestInit = { method, headers: this.headers(body === undefined ? extra : { 'content-type': 'application/json', ...extra }) };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(`${this.base}${path}`, init);
  }
  get(path: string, extra?: Record<string, string>) {
    return this.req('GET', path, undefined, extra);
  }
  post(path: string, body?: unknown, extra?: Record<string, string>) {
    return this.req('POST', path, body, extra);
  }
  put(path: string, body?: unknown) {
    return this.req('PUT', path, body);
  }
  del(path: string) {
    return this.req('DELETE', path);
  }
  upload(path: string, data: Uint8Array | string, extra: Record<string, string> = {}): Promise<Response> {
    return fetch(`${this.base}${path}`, {
      method: 'PUT',
      headers: this.headers({ 'content-type': 'application/octet-stream', ...extra }),
      body: typeof data === 'string' ? data : new Uint8Array(data),
    });
  }
}

export async function json<T = Record<string, unknown>>(r: Response): Promise<T> {
  return (await r.json()) as T;
}

export const ROLES = ['viewer', 'data-scientist', 'ml-engineer', 'release-manager', 'auditor', 'project-admin'] as const;

export interface World {
  server: TestServer;
  admin: Client;
  /** One signed-in client per project role in project `fraud`, plus `outsider` (no role anywhere). */
  as: Record<(typeof ROLES)[number] | 'outsider', Client>;
  /** Signs in a fresh client for an existing user (second factor given just now, like the role clients). */
  client(username: string): Promise<Client>;
  /** Signs in a fresh client with a password only: no second factor in its session. */
  passwordOnly(username: string): Promise<Client>;
}

/**
 * Marks every live session of `username` as having passed a second factor at the server's
 * `now` (amr pwd+otp+mfa). This stands for a TOTP step-up (POST /v1/auth/step-up/totp) until
 * the identity layer ships one; policies need a fresh MFA for production changes and
 * restricted downloads, so the role clients of `world` sign in like careful users do.
 */
export async function markMfa(server: RunningServer, username: string, at: Date = server.services.clock.now()): Promise<void> {
  const k = server.services.db.kysely;
  const u = await k.selectFrom('users').select('id').where('username', '=', username).executeTakeFirstOrThrow();
  await k
    .updateTable('sessions')
    .set({ mfa_at: at.toISOString(), amr: JSON.stringify(['mfa', 'otp', 'pwd']) })
    .where('user_id', '=', u.id)
    .where('revoked_at', 'is', null)
    .execute();
  // The rows changed behind the identity service's back: it reads them again.
  server.services.identity.rereadSessions(u.id);
}

/**
 * Builds the common fixture: platform admin `admin`, project `fraud` with one user per
 * role (named after the role), project `other`, and user `outsider` with no role.
 */
export async function world(backend: Backend, opts: TestServerOptions = {}): Promise<World> {
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mk-test-'));
  const pgdb = backend === 'postgres' && !opts.databaseUrl ? await createPgDatabase() : null;
  const databaseUrl = opts.databaseUrl ?? pgdb?.url;
  await bootstrapUser({ dataDir, ...(databaseUrl ? { databaseUrl } : {}) }, { username: 'admin', password: PASSWORD, platformAdmin: true });
  const started = await startTestServer(backend, { ...opts, dataDir, ...(databaseUrl ? { databaseUrl } : {}) });
  const server: TestServer = {
    ...started,
    close: async () => {
      await started.close();
      if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
      await pgdb?.drop();
    },
  };
  const admin = new Client(server.url);
  await expectOk(await admin.login('admin'));
  await markMfa(server, 'admin');
  await expectOk(await admin.post('/v1/projects', { name: 'fraud' }));
  await expectOk(await admin.post('/v1/projects', { name: 'other' }));
  const as = {} as World['as'];
  for (const role of [...ROLES, 'outsider'] as const) {
    await expectOk(await admin.post('/v1/admin/users', { username: role, password: PASSWORD }));
    if (role !== 'outsider') await expectOk(await admin.post('/v1/projects/fraud/bindings', { principal: `user:${role}`, role }));
    const c = new Client(server.url);
    await expectOk(await c.login(role));
    await markMfa(server, role);
    as[role] = c;
  }
  return {
    server,
    admin,
    as,
    client: async (username: string) => {
      const c = new Client(server.url);
      await expectOk(await c.login(username));
      await markMfa(server, username);
      return c;
    },
    passwordOnly: async (username: string) => {
      const c = new Client(server.url);
      await expectOk(await c.login(username));
      return c;
    },
  };
}

/** The current TOTP code (RFC 6238, SHA-1, 6 digits, 30 s) of a base32 secret, at `at`. */
export function totpCode(secret: string, at: Date | number): string {
  return new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate({ timestamp: typeof at === 'number' ? at : at.getTime() });
}

/**
 * Enrolls TOTP for the client's user (begin + confirm at `at`) and returns the secret and
 * the recovery codes. The confirming code uses up the step of `at`.
 */
export async function enrollTotp(c: Client, at: Date | number): Promise<{ secret: string; recoveryCodes: string[] }> {
  const { secret } = await json<{ secret: string }>(await expectOk(await c.post('/v1/me/mfa/totp')));
  const { recoveryCodes } = await json<{ recoveryCodes: string[] }>(await expectOk(await c.post('/v1/me/mfa/totp/confirm', { code: totpCode(secret, at) })));
  return { secret, recoveryCodes };
}

/**
 * A signed-in admin passes a real second factor through the API, for servers in another
 * process (end-to-end tests), where markMfa cannot reach: enrolls an authenticator app
 * (confirmed with the previous 30 s step's code, accepted within the ±1 step window) and
 * steps up with the current step's code. The session is rotated; `c` adopts the new one.
 */
export async function stepUpWithNewTotp(c: Client): Promise<{ secret: string; recoveryCodes: string[] }> {
  const now = Date.now();
  const enrolled = await enrollTotp(c, now - 30_000);
  const r = await c.post('/v1/auth/step-up/totp', { code: totpCode(enrolled.secret, now) });
  await expectOk(r);
  await adoptSession(c, r);
  return enrolled;
}

/** Signs in with the password and a single-use recovery code (no 30 s TOTP step to wait for). */
export async function loginWithRecoveryCode(base: string, username: string, code: string): Promise<Client> {
  const step = await passwordStep(base, username);
  if (step.body.status !== 'mfa_required') throw new Error(`expected mfa_required, got ${JSON.stringify(step.body)}`);
  const c = new Client(base);
  const r = await expectOk(await c.post('/v1/auth/mfa/recovery', { mfaToken: step.body.mfaToken, code }));
  await adoptSession(c, r);
  return c;
}

/** The password step of a login, without touching any client: status, body, Set-Cookie. */
export async function passwordStep(
  base: string,
  username: string,
  password = PASSWORD,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; setCookie: string | null; res: Response }> {
  const res = await fetch(`${base}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ username, password }),
  });
  return { status: res.status, body: (await res.clone().json()) as Record<string, unknown>, setCookie: res.headers.get('set-cookie'), res };
}

/** Signs in a user who has TOTP: password step, then the code of `at`; returns a ready client. */
export async function loginWithTotp(base: string, username: string, secret: string, at: Date | number): Promise<Client> {
  const step = await passwordStep(base, username);
  if (step.body.status !== 'mfa_required') throw new Error(`expected mfa_required, got ${JSON.stringify(step.body)}`);
  const c = new Client(base);
  const r = await expectOk(await c.post('/v1/auth/mfa/totp', { mfaToken: step.body.mfaToken, code: totpCode(secret, at) }));
  await adoptSession(c, r);
  return c;
}

/** Reads the session cookie and CSRF token of a response that started a session into the client. */
export async function adoptSession(c: Client, r: Response): Promise<void> {
  c.cookie = (r.headers.get('set-cookie') ?? '').split(';')[0] ?? null;
  c.csrf = ((await r.clone().json()) as { csrfToken: string }).csrfToken;
}

export async function expectOk(r: Response): Promise<Response> {
  if (!r.ok) throw new Error(`expected success, got ${r.status}: ${await r.text()}`);
  return r;
}

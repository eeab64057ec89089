// The authentication section of the benchmark (see bench/README.md, "Authentication"), each
// figure beside its baseline from the same run:
//   (j) authentication cost per request, in process: TokenService.authenticateAccessToken
//       (what the authn hook calls for `Bearer <JWT>`) for a first-seen token (full jose
//       verify) and for a repeated one (verified-token cache), p50/p99 µs, vs a bare SHA-256
//       of the token timed the same way; token verification throughput, first-seen vs
//       repeated tokens/s (AccessTokens.verify)
//   (k) GET /v1/me with a bearer token, req/s (autocannon) vs a bare Fastify route
//   (l) login latency (POST /v1/auth/login, argon2id) p50/p99 vs a bare route round trip
//   (m) time-to-revoke p50/p99: a client loops GET /v1/me with a credential while the
//       revoking call (admin deactivation, DELETE of an API key, /oauth/revoke of the token
//       family) runs; from its return to the first 401, and every request sent after that
//       return and still accepted is counted (must be 0)
// The HTTP figures run against a server in its own process (server-child.ts); (j) runs
// in this process over the real services (SQLite), without HTTP.
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigInput, RequestContext } from '../src/core/index.ts';
import { parseConfig } from '../src/core/index.ts';
import { bootstrapUser, buildServices } from '../src/main.ts';
import { CLI, deviceLogin, form } from '../test/helpers/oauth.ts';
import { Client, expectOk, json, PASSWORD, stepUpWithNewTotp } from '../test/helpers/server.ts';
import { engineerInFraud } from './lib/fixture.ts';
import { forkScript, type ServerReady } from './lib/proc.ts';
import { fmt, median, type Section, verdict } from './lib/report.ts';

type Log = (msg: string) => void;

export const AUTHN_GOALS = {
  /** Requests sent after the revoking call returned and still accepted. */
  acceptedAfterRevoke: 0,
} as const;

export interface AuthnSettings {
  quick: boolean;
  /** Distinct tokens for the first-seen figures, and calls for the repeated ones. */
  tokens: number;
  logins: number;
  /** Time-to-revoke trials, split evenly over the three revoking calls. */
  revokeTrials: number;
}

export function authnSettings(o: { quick: boolean; tokens?: number | undefined; logins?: number | undefined; revokeTrials?: number | undefined }): AuthnSettings {
  return {
    quick: o.quick,
    tokens: o.tokens ?? (o.quick ? 500 : 5000),
    logins: o.logins ?? (o.quick ? 10 : 60),
    revokeTrials: o.revokeTrials ?? (o.quick ? 30 : 210),
  };
}

/** The autocannon runner and its settings, from run.ts. */
export interface LoadGen {
  run(url: string, headers: string[], durationS: number): Promise<{ requests: { average: number }; latency: { p50: number; p99: number } }>;
  durationS: number;
  warmupS: number;
  rounds: number;
}

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const us = (ms: number) => `${(ms * 1000).toFixed(1)} µs`;
const ms = (v: number) => `${v.toFixed(2)} ms`;

// ---- (j) in-process cost ---------------------------------------------------------------

export interface CostResult {
  tokens: number;
  firstSeen: { p50Us: number; p99Us: number };
  repeated: { p50Us: number; p99Us: number };
  baselineSha256: { p50Us: number; p99Us: number };
  baselineEmptyCall: { p50Us: number; p99Us: number };
  verifyFirstSeenPerSec: number;
  verifyRepeatedPerSec: number;
  baselineSha256PerSec: number;
}

async function timeEach(n: number, fn: (i: number) => Promise<unknown> | unknown): Promise<number[]> {
  const out: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    out[i] = performance.now() - t0;
  }
  return out;
}

const pq = (xs: number[]) => ({ p50Us: percentile(xs, 50) * 1000, p99Us: percentile(xs, 99) * 1000 });

async function inProcessCost(s: AuthnSettings, tmp: string, log: Log): Promise<CostResult> {
  const dataDir = join(tmp, 'authn-inproc');
  await bootstrapUser({ dataDir }, { username: 'admin', password: PASSWORD, platformAdmin: true });
  const services = await buildServices(parseConfig({ dataDir, logLevel: 'silent', tokens: { accessTokenMinutes: 60, cacheEntries: s.tokens * 3 } }));
  try {
    const tokens = services.tokens;
    const admin = await services.identity.users.byUsername('admin');
    if (!admin) throw new Error('no admin user');
    const ctx: RequestContext = { requestId: 'bench', principal: { kind: 'anonymous' }, ip: '127.0.0.1', userAgent: 'bench', now: new Date() };
    const { family } = await tokens.startFamily(services.db.kysely, ctx, {
      userId: admin.id,
      username: admin.username,
      clientId: CLI,
      scopes: ['read'],
      amr: ['pwd'],
      authTime: new Date(),
      mfaAt: null,
    });
    log(`  issuing ${fmt.int(s.tokens * 2)} access tokens`);
    const mint = async (n: number) => {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push((await tokens.accessTokenFor(family, ['read'])).token);
      return out;
    };
    const fresh = await mint(s.tokens);
    const fresh2 = await mint(s.tokens);
    const check = (r: Awaited<ReturnType<typeof tokens.authenticateAccessToken>>) => {
      if (!r.ok) throw new Error(`authentication failed: ${r.reason}`);
    };
    // Warm the JIT and the revocation cache on tokens not measured.
    for (const t of await mint(200)) check(await tokens.authenticateAccessToken(t));
    const sha = (t: string) => createHash('sha256').update(t).digest();
    const empty = async (_t: string) => {};
    for (let i = 0; i < 1000; i++) {
      sha(fresh[0]!);
      await empty(fresh[0]!);
    }
    log('  authenticateAccessToken: first-seen, repeated, baselines');
    const firstSeen = await timeEach(s.tokens, async (i) => check(await tokens.authenticateAccessToken(fresh[i]!)));
    const one = fresh[0]!;
    const repeated = await timeEach(s.tokens, async () => check(await tokens.authenticateAccessToken(one)));
    const shaT = await timeEach(s.tokens, (i) => sha(fresh[i]!));
    const emptyT = await timeEach(s.tokens, (i) => empty(fresh[i]!));

    log('  verification throughput: first-seen vs repeated');
    let t0 = performance.now();
    for (const t of fresh2) if (!(await tokens.access.verify(t))) throw new Error('verify failed');
    const firstSeenPerSec = s.tokens / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (let i = 0; i < s.tokens; i++) if (!(await tokens.access.verify(one))) throw new Error('verify failed');
    const repeatedPerSec = s.tokens / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (const t of fresh2) sha(t);
    const shaPerSec = s.tokens / ((performance.now() - t0) / 1000);
    return {
      tokens: s.tokens,
      firstSeen: pq(firstSeen),
      repeated: pq(repeated),
      baselineSha256: pq(shaT),
      baselineEmptyCall: pq(emptyT),
      verifyFirstSeenPerSec: firstSeenPerSec,
      verifyRepeatedPerSec: repeatedPerSec,
      baselineSha256PerSec: shaPerSec,
    };
  } finally {
    await services.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- the server (child process) and its fixture ---------------------------------------

const SERVER_CONFIG: ConfigInput = { tokens: { accessTokenMinutes: 60 } };

interface Fixture {
  url: string;
  admin: Client;
  eng: Client;
}

async function fixture(url: string): Promise<Fixture> {
  const { admin, eng } = await engineerInFraud(url);
  return { url, admin, eng };
}

// ---- (k) req/s ---------------------------------------------------------------------------

export interface RateResult {
  reqPerSec: number;
  runs: number[];
  latencyP50Ms: number;
  latencyP99Ms: number;
  baselineBareFastify: { reqPerSec: number; runs: number[]; latencyP50Ms: number; latencyP99Ms: number };
  ratio: number;
}

async function requestRate(f: Fixture, bareUrl: string, ac: LoadGen, log: Log): Promise<RateResult> {
  const t = await deviceLogin(f.url, f.eng, 'read');
  const headers = [`authorization:Bearer ${t.access_token}`];
  await expectOk(await fetch(`${f.url}/v1/me`, { headers: { authorization: `Bearer ${t.access_token}` } }));
  if (ac.warmupS > 0) {
    log(`  autocannon warm-up, ${ac.warmupS} s per target`);
    await ac.run(`${f.url}/v1/me`, headers, ac.warmupS);
    await ac.run(`${bareUrl}/v1/me`, [], ac.warmupS);
  }
  const mk: Awaited<ReturnType<LoadGen['run']>>[] = [];
  const bare: Awaited<ReturnType<LoadGen['run']>>[] = [];
  for (let i = 1; i <= ac.rounds; i++) {
    log(`  autocannon round ${i}/${ac.rounds}, ${ac.durationS} s per target`);
    mk.push(await ac.run(`${f.url}/v1/me`, headers, ac.durationS));
    bare.push(await ac.run(`${bareUrl}/v1/me`, [], ac.durationS));
  }
  const sum = (rs: typeof mk) => ({
    reqPerSec: median(rs.map((r) => r.requests.average)),
    runs: rs.map((r) => r.requests.average),
    latencyP50Ms: median(rs.map((r) => r.latency.p50)),
    latencyP99Ms: median(rs.map((r) => r.latency.p99)),
  });
  const m = sum(mk);
  const b = sum(bare);
  return { ...m, baselineBareFastify: b, ratio: m.reqPerSec / b.reqPerSec };
}

// ---- (l) login latency -------------------------------------------------------------------

export interface LoginResult {
  logins: number;
  p50Ms: number;
  p99Ms: number;
  baselineBareRoundTrip: { p50Ms: number; p99Ms: number };
}

async function loginLatency(s: AuthnSettings, f: Fixture, bareUrl: string): Promise<LoginResult> {
  const body = JSON.stringify({ username: 'ml-engineer', password: PASSWORD });
  const login = async () => {
    const r = await fetch(`${f.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`login answered ${r.status}`);
  };
  const bare = async () => {
    const r = await fetch(`${bareUrl}/v1/me`);
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`bare route answered ${r.status}`);
  };
  for (let i = 0; i < 3; i++) {
    await login();
    await bare();
  }
  const mk: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < s.logins; i++) {
    mk.push((await timeEach(1, login))[0]!);
    b.push((await timeEach(1, bare))[0]!);
  }
  return { logins: s.logins, p50Ms: percentile(mk, 50), p99Ms: percentile(mk, 99), baselineBareRoundTrip: { p50Ms: percentile(b, 50), p99Ms: percentile(b, 99) } };
}

// ---- (m) time to revoke ------------------------------------------------------------------

type Mechanism = 'deactivate' | 'api-key' | 'oauth-revoke';

export interface RevokeResult {
  trials: number;
  byMechanism: Record<Mechanism, { trials: number; p50Ms: number; p99Ms: number; maxMs: number }>;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Requests sent after the revoking call returned that were still answered 200. */
  acceptedAfterRevoke: number;
  /** Requests in flight when the revoking call returned that were answered 200 (allowed). */
  acceptedInFlight: number;
  requests: number;
  baselineBareRoundTrip: { p50Ms: number; p99Ms: number };
  pass: boolean;
}

interface Trial {
  ttrMs: number;
  acceptedAfter: number;
  acceptedInFlight: number;
  requests: number;
}

/** Loops GET /v1/me with `credential` while `revoke` runs (after a few accepted requests). */
async function trial(url: string, credential: string, revoke: () => Promise<Response>): Promise<Trial> {
  const seen: { t0: number; t1: number; status: number }[] = [];
  let returned = Number.POSITIVE_INFINITY;
  let warm: () => void = () => {};
  const warmed = new Promise<void>((resolve) => {
    warm = resolve;
  });
  const loop = (async () => {
    const deadline = performance.now() + 15_000;
    let okCount = 0;
    let after401 = -1;
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const r = await fetch(`${url}/v1/me`, { headers: { authorization: `Bearer ${credential}` } });
      await r.arrayBuffer();
      const t1 = performance.now();
      seen.push({ t0, t1, status: r.status });
      if (r.status !== 200 && r.status !== 401) throw new Error(`GET /v1/me answered ${r.status}`);
      if (r.status === 200 && ++okCount === 3) warm();
      // A few more requests after the first refusal sent past the return: a refusal must stick.
      if (r.status === 401 && t0 > returned && after401 < 0) after401 = 0;
      if (after401 >= 0 && ++after401 > 5) return;
    }
    throw new Error('no 401 within 15 s of the revoking call');
  })();
  await Promise.race([warmed, loop]);
  const r = await revoke();
  returned = performance.now();
  await r.arrayBuffer();
  if (r.status >= 300) throw new Error(`the revoking call answered ${r.status}`);
  await loop;
  const first401 = seen.find((e) => e.status === 401);
  if (!first401) throw new Error('no 401 seen');
  return {
    ttrMs: Math.max(0, first401.t1 - returned),
    acceptedAfter: seen.filter((e) => e.t0 > returned && e.status === 200).length,
    acceptedInFlight: seen.filter((e) => e.t0 <= returned && e.t1 > returned && e.status === 200).length,
    requests: seen.length,
  };
}

async function timeToRevoke(s: AuthnSettings, f: Fixture, bareUrl: string, log: Log): Promise<RevokeResult> {
  const per = Math.ceil(s.revokeTrials / 3);
  const out: Record<Mechanism, Trial[]> = { deactivate: [], 'api-key': [], 'oauth-revoke': [] };
  let userN = 0;
  for (let i = 0; i < per; i++) {
    if (i % 20 === 0) log(`  trials ${i * 3}/${per * 3}`);
    // DELETE of an API key.
    const k = await json<{ id: string; token: string }>(await expectOk(await f.eng.post('/v1/me/api-keys', { name: `ttr-${i}`, scopes: ['read'], expiresInDays: 1 })));
    out['api-key'].push(await trial(f.url, k.token, () => f.eng.del(`/v1/me/api-keys/${k.id}`)));
    // /oauth/revoke of the token family (by its refresh token).
    const t = await deviceLogin(f.url, f.eng, 'read');
    out['oauth-revoke'].push(await trial(f.url, t.access_token, () => form(f.url, '/oauth/revoke', { token: t.refresh_token, client_id: CLI })));
    // Admin deactivation of the user holding the access token.
    const username = `ttr-user-${++userN}`;
    const u = await json<{ id: string }>(await expectOk(await f.admin.post('/v1/admin/users', { username, password: PASSWORD })));
    const c = new Client(f.url);
    await expectOk(await c.login(username));
    const ut = await deviceLogin(f.url, c, 'read');
    out.deactivate.push(await trial(f.url, ut.access_token, () => f.admin.post(`/v1/admin/users/${u.id}/deactivate`, {})));
  }
  const bare: number[] = [];
  for (let i = 0; i < 200; i++) {
    bare.push(
      (
        await timeEach(1, async () => {
          await (await fetch(`${bareUrl}/v1/me`)).arrayBuffer();
        })
      )[0]!,
    );
  }
  const all = Object.values(out).flat();
  const ttr = all.map((x) => x.ttrMs);
  const stat = (xs: Trial[]) => ({ trials: xs.length, p50Ms: percentile(xs.map((x) => x.ttrMs), 50), p99Ms: percentile(xs.map((x) => x.ttrMs), 99), maxMs: Math.max(...xs.map((x) => x.ttrMs)) });
  const acceptedAfterRevoke = all.reduce((a, x) => a + x.acceptedAfter, 0);
  return {
    trials: all.length,
    byMechanism: { deactivate: stat(out.deactivate), 'api-key': stat(out['api-key']), 'oauth-revoke': stat(out['oauth-revoke']) },
    p50Ms: percentile(ttr, 50),
    p99Ms: percentile(ttr, 99),
    maxMs: Math.max(...ttr),
    acceptedAfterRevoke,
    acceptedInFlight: all.reduce((a, x) => a + x.acceptedInFlight, 0),
    requests: all.reduce((a, x) => a + x.requests, 0),
    baselineBareRoundTrip: { p50Ms: percentile(bare, 50), p99Ms: percentile(bare, 99) },
    pass: acceptedAfterRevoke === AUTHN_GOALS.acceptedAfterRevoke,
  };
}

// ---- the section -------------------------------------------------------------------------

export interface AuthnResults {
  settings: AuthnSettings;
  cost: CostResult;
  meGet: RateResult;
  login: LoginResult;
  timeToRevoke: RevokeResult;
}

export async function runAuthn(s: AuthnSettings, tmp: string, log: Log, ac: LoadGen): Promise<Section<AuthnResults>> {
  log(`(j) authentication cost in process: ${fmt.int(s.tokens)} first-seen tokens, ${fmt.int(s.tokens)} repeated calls`);
  const cost = await inProcessCost(s, tmp, log);

  const dataDir = join(tmp, 'authn-server');
  await bootstrapUser({ dataDir }, { username: 'admin', password: PASSWORD, platformAdmin: true });
  const proc = forkScript<ServerReady>('server-child.ts', [dataDir, JSON.stringify(SERVER_CONFIG)]);
  const bareProc = forkScript<ServerReady>('bare-child.ts', []);
  let meGet: RateResult;
  let login: LoginResult;
  let revoke: RevokeResult;
  try {
    const { url } = await proc.ready;
    const { url: bareUrl } = await bareProc.ready;
    const f = await fixture(url);
    log('(k) GET /v1/me with a bearer token vs a bare Fastify route');
    meGet = await requestRate(f, bareUrl, ac, log);
    log(`(l) login latency: ${s.logins} logins`);
    login = await loginLatency(s, f, bareUrl);
    log(`(m) time to revoke: ${s.revokeTrials} trials`);
    // Minting API keys needs a fresh second factor: the engineer enrolls one and steps up
    // (after the login-latency figure, which measures password logins of this account).
    await stepUpWithNewTotp(f.eng);
    revoke = await timeToRevoke(s, f, bareUrl, log);
  } finally {
    await bareProc.stop();
    await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }

  const ratio = (a: number, b: number) => fmt.times(a / b);
  const sha = `bare SHA-256 of the token: ${us(cost.baselineSha256.p50Us / 1000)} / ${us(cost.baselineSha256.p99Us / 1000)}`;
  const rows: string[][] = [
    [`(j) Authn cost, first-seen token, p50 / p99`, `${us(cost.firstSeen.p50Us / 1000)} / ${us(cost.firstSeen.p99Us / 1000)}`, sha, ratio(cost.firstSeen.p50Us, cost.baselineSha256.p50Us), 'none set', 'info'],
    [`(j) Authn cost, repeated token, p50 / p99`, `${us(cost.repeated.p50Us / 1000)} / ${us(cost.repeated.p99Us / 1000)}`, sha, ratio(cost.repeated.p50Us, cost.baselineSha256.p50Us), 'none set', 'info'],
    [
      `(j) Token verification, first-seen vs repeated`,
      fmt.perSec(cost.verifyFirstSeenPerSec, 'tokens'),
      `repeated: ${fmt.perSec(cost.verifyRepeatedPerSec, 'tokens')}`,
      fmt.pct(cost.verifyFirstSeenPerSec / cost.verifyRepeatedPerSec),
      'none set',
      'info',
    ],
    [`(k) GET /v1/me, bearer JWT, median of ${meGet.runs.length}`, fmt.rps(meGet.reqPerSec), `bare Fastify route: ${fmt.rps(meGet.baselineBareFastify.reqPerSec)}`, fmt.pct(meGet.ratio), 'none set', 'info'],
    [
      `(l) Login (argon2id), ${login.logins} logins, p50 / p99`,
      `${ms(login.p50Ms)} / ${ms(login.p99Ms)}`,
      `bare route round trip: ${ms(login.baselineBareRoundTrip.p50Ms)} / ${ms(login.baselineBareRoundTrip.p99Ms)}`,
      ratio(login.p50Ms, login.baselineBareRoundTrip.p50Ms),
      'none set',
      'info',
    ],
    [
      `(m) Time to revoke, ${revoke.trials} trials, p50 / p99`,
      `${ms(revoke.p50Ms)} / ${ms(revoke.p99Ms)}`,
      `bare route round trip: ${ms(revoke.baselineBareRoundTrip.p50Ms)} / ${ms(revoke.baselineBareRoundTrip.p99Ms)}`,
      ratio(revoke.p50Ms, revoke.baselineBareRoundTrip.p50Ms),
      'none set',
      'info',
    ],
    [`(m) Requests accepted after the revoking call returned`, fmt.int(revoke.acceptedAfterRevoke), `of ${fmt.int(revoke.requests)} requests`, '', '0', verdict(revoke.pass)],
  ];
  const m = revoke.byMechanism;
  const mech = (k: Mechanism) => `${k} ${ms(m[k].p50Ms)} / ${ms(m[k].p99Ms)} (max ${ms(m[k].maxMs)}, ${m[k].trials} trials)`;
  const notes = [
    `authn cost (p50 / p99): empty async call ${us(cost.baselineEmptyCall.p50Us / 1000)} / ${us(cost.baselineEmptyCall.p99Us / 1000)}; SHA-256 of the token ${fmt.perSec(cost.baselineSha256PerSec, 'tokens')}`,
    `runs (req/s): GET /v1/me ${fmt.list(meGet.runs)} (p50 ${meGet.latencyP50Ms} ms, p99 ${meGet.latencyP99Ms} ms) | bare Fastify ${fmt.list(meGet.baselineBareFastify.runs)} (p50 ${meGet.baselineBareFastify.latencyP50Ms} ms, p99 ${meGet.baselineBareFastify.latencyP99Ms} ms)`,
    `time to revoke by call (p50 / p99): ${mech('deactivate')}; ${mech('api-key')}; ${mech('oauth-revoke')}; ${revoke.acceptedInFlight} requests in flight at the return were accepted (allowed)`,
  ];
  return { results: { settings: s, cost, meGet, login, timeToRevoke: revoke }, rows, notes };
}

// Figures (g)-(i): the guard and the full authorized request (bench/README.md).
//   (g) guard latency p50/p99 — cache hit, miss (new decision: one Cedar call) and cold
//       miss (the principal's bindings re-read from the database, then Cedar) — with 1k,
//       10k and 100k role bindings in the database (must not grow with the bindings)
//   (h) hit rate of the guard's decision cache in the repeated-read workload
//   (i) requests/s of the full authenticated + authorized + audited metadata GET as a
//       ratio to a bare Fastify route, repeated-read and all-distinct-resources workloads
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { AuditLog } from '../src/audit/index.ts';
import { Guard, PolicyHolder } from '../src/authz/index.ts';
import type { Principal, RequestContext, ResourceRef } from '../src/core/index.ts';
import { systemClock } from '../src/core/index.ts';
import { bootstrapUser, DEFAULT_POLICIES_DIR } from '../src/main.ts';
import { type Database, InProcessEventBus, openDatabase, type RoleBindingsTable } from '../src/storage/index.ts';
import { expectOk, PASSWORD, } from '../test/helpers/server.ts';
import { engineerInFraud } from './lib/fixture.ts';
import { type Forked, forkScript, processCpuUs, type ServerReady } from './lib/proc.ts';
import { fmt, median, type Section, verdict } from './lib/report.ts';

export interface AuthzSettings {
  bindingCounts: number[];
  hitSamples: number;
  missSamples: number;
  coldSamples: number;
  distinctModels: number;
  /** Guard checks (new resources) before each size's measurements, not counted. */
  warmupChecks: number;
  durationS: number;
  warmupS: number;
  rounds: number;
  connections: number;
}

export function authzSettings(o: { quick: boolean; durationS: number; warmupS: number; rounds: number; connections: number }): AuthzSettings {
  return {
    bindingCounts: o.quick ? [1000, 10_000] : [1000, 10_000, 100_000],
    hitSamples: o.quick ? 5000 : 50_000,
    missSamples: o.quick ? 500 : 5000,
    coldSamples: o.quick ? 200 : 2000,
    distinctModels: o.quick ? 50 : 300,
    warmupChecks: o.quick ? 200 : 2000,
    durationS: o.durationS,
    warmupS: o.warmupS,
    rounds: o.rounds,
    connections: o.connections,
  };
}

const GOALS = { hitP99Us: 10, missP99Us: 500, repeatedRatio: 0.35, distinctRps: 1500 } as const;

function pct(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

interface Latency {
  p50Us: number;
  p99Us: number;
}
const lat = (xs: number[]): Latency => {
  const s = xs.sort((a, b) => a - b);
  return { p50Us: pct(s, 50) * 1000, p99Us: pct(s, 99) * 1000 };
};

/** N role bindings for many principals over 200 projects, plus the measured principal's own two. */
async function seedBindings(db: Kysely<Database>, n: number): Promise<void> {
  const now = new Date().toISOString();
  const roles = ['viewer', 'data-scientist', 'ml-engineer', 'release-manager', 'auditor', 'project-admin'];
  const rows: RoleBindingsTable[] = [];
  for (let i = 0; i < n - 2; i++) {
    rows.push({
      id: `bnd_${i}`,
      scope: `prj_${i % 200}`,
      principal_kind: 'user',
      principal_id: `usr_${Math.floor(i / 6)}`,
      role: roles[i % 6] as string,
      expires_at: i % 3 === 0 ? new Date(Date.now() + 86_400_000).toISOString() : null,
      created_at: now,
      created_by: 'bench',
    });
  }
  rows.push(
    { id: 'bnd_me_1', scope: 'prj_0', principal_kind: 'user', principal_id: 'usr_bench', role: 'viewer', expires_at: null, created_at: now, created_by: 'bench' },
    { id: 'bnd_me_2', scope: 'prj_0', principal_kind: 'user', principal_id: 'usr_bench', role: 'ml-engineer', expires_at: null, created_at: now, created_by: 'bench' },
  );
  await db.transaction().execute(async (tx) => {
    for (let i = 0; i < rows.length; i += 500) await tx.insertInto('role_bindings').values(rows.slice(i, i + 500)).execute();
  });
}

async function guardLatency(n: number, s: AuthzSettings, tmp: string) {
  const dir = mkdtempSync(join(tmp, `guard-${n}-`));
  const db = await openDatabase({ dataDir: dir });
  try {
    await seedBindings(db.kysely, n);
    const bus = new InProcessEventBus();
    const guard = new Guard({ db: db.kysely, audit: new AuditLog(db.kysely), policies: new PolicyHolder('cedar', DEFAULT_POLICIES_DIR, systemClock), bus });
    const principal: Principal = {
      kind: 'user',
      id: 'usr_bench',
      username: 'bench',
      sessionId: 'ses_bench',
      amr: ['pwd'],
      authTime: new Date(),
      mfaAt: null,
      authMethod: 'session',
      scopes: null,
    };
    const ctx: RequestContext = { requestId: 'req', principal, ip: '127.0.0.1', userAgent: null, now: new Date() };
    const ref = (i: number): ResourceRef => ({ type: 'version', path: `fraud/churn@${i}`, projectId: 'prj_0', projectName: 'fraud', sensitivity: 'internal', stage: 'none' });
    // Warm up the engine and the JIT, not counted: with 200 calls the first size measured
    // (1k bindings) still had a miss p50 ~30 % above the later sizes for the same work.
    for (let i = 0; i < s.warmupChecks; i++) await guard.check(ctx, 'version:read', ref(1_000_000 + i));
    const miss: number[] = [];
    for (let i = 0; i < s.missSamples; i++) {
      const r = ref(i);
      const t = performance.now();
      const d = await guard.check(ctx, 'version:read', r);
      miss.push(performance.now() - t);
      if (d.decision !== 'allow') throw new Error(`bench principal denied: ${d.reason}`);
    }
    const cold: number[] = [];
    for (let i = 0; i < s.coldSamples; i++) {
      bus.publish({ type: 'bindings.changed', scope: 'prj_0', principalId: 'usr_bench' });
      const r = ref(2_000_000 + i);
      const t = performance.now();
      await guard.check(ctx, 'version:read', r);
      cold.push(performance.now() - t);
    }
    const hit: number[] = [];
    const hot = ref(7);
    await guard.check(ctx, 'version:read', hot);
    for (let i = 0; i < s.hitSamples; i++) {
      const t = performance.now();
      await guard.check(ctx, 'version:read', hot);
      hit.push(performance.now() - t);
    }
    return { bindings: n, hit: lat(hit), miss: lat(miss), coldMiss: lat(cold) };
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface LoadResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number };
  errors: number;
  timeouts: number;
  non2xx: number;
}

/**
 * Drives `base` for `durationS`; with the server's pid, also the server's CPU time per
 * request (all its threads, µs) and the cores it kept busy — steadier on a shared VM than
 * requests/s, and what says whether the server or the load generator was the limit.
 */
async function load(base: string, cookie: string, paths: string[], durationS: number, connections: number, serverPid?: number): Promise<LoadResult & { cpuUsPerRequest: number; cores: number }> {
  const cpu0 = serverPid === undefined ? null : processCpuUs(serverPid);
  const child = forkScript<{ type: 'result'; result: LoadResult }>('load-child.ts', [base, cookie, String(durationS), String(connections), JSON.stringify(paths)]);
  const { result } = await child.ready;
  const cpu1 = serverPid === undefined ? null : processCpuUs(serverPid);
  await child.exited;
  if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
    throw new Error(`load against ${base}${paths[0]}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  }
  const used = cpu0 !== null && cpu1 !== null ? cpu1 - cpu0 : Number.NaN;
  return { ...result, cpuUsPerRequest: used / Math.max(1, result.requests.total), cores: used / 1e6 / durationS };
}

async function startServer(tmp: string, name: string, config: Record<string, unknown>, models: number) {
  const dataDir = join(tmp, name);
  await bootstrapUser({ dataDir }, { username: 'admin', password: PASSWORD, platformAdmin: true });
  const proc: Forked<ServerReady> = forkScript<ServerReady>('server-child.ts', [dataDir, JSON.stringify(config)]);
  const { url } = await proc.ready;
  const { eng } = await engineerInFraud(url);
  await expectOk(await eng.post('/v1/projects/fraud/models', { name: 'churn' }));
  for (let i = 0; i < models; i++) await expectOk(await eng.post('/v1/projects/fraud/models', { name: `m-${i}` }));
  return { proc, url, eng, dataDir };
}

function guardStats(proc: Forked<ServerReady>): Promise<{ hits: number; misses: number }> {
  return new Promise((resolve) => {
    const on = (m: { type?: string; hits?: number; misses?: number }) => {
      if (m.type !== 'guard-stats') return;
      proc.child.off('message', on);
      resolve({ hits: m.hits ?? 0, misses: m.misses ?? 0 });
    };
    proc.child.on('message', on);
    proc.child.send({ type: 'guard-stats' });
  });
}

export async function runAuthz(s: AuthzSettings, tmp: string, log: (m: string) => void) {
  const guard: Awaited<ReturnType<typeof guardLatency>>[] = [];
  for (const n of s.bindingCounts) {
    log(`(g) guard latency with ${n.toLocaleString('en-US')} role bindings`);
    guard.push(await guardLatency(n, s, tmp));
  }

  log('(h, i) starting Modelkeep (repeated-read) and the bare Fastify baseline');
  const mk = await startServer(tmp, 'authz-repeated', { detectors: { enabled: false } }, 0);
  log(`(i) starting Modelkeep with a one-entry decision cache and ${s.distinctModels} models (all-distinct)`);
  const mkDistinct = await startServer(tmp, 'authz-distinct', { detectors: { enabled: false }, authz: { decisionCacheSize: 1 } }, s.distinctModels);
  const bare = forkScript<ServerReady>('bare-child.ts', []);
  const bareUrl = (await bare.ready).url;
  const one = ['/v1/projects/fraud/models/churn'];
  const distinct = Array.from({ length: s.distinctModels }, (_, i) => `/v1/projects/fraud/models/m-${i}`);
  const cookie = mk.eng.cookie ?? '';
  const cookieD = mkDistinct.eng.cookie ?? '';
  if (s.warmupS > 0) {
    log(`autocannon warm-up, ${s.warmupS} s per target`);
    await load(mk.url, cookie, one, s.warmupS, s.connections);
    await load(mkDistinct.url, cookieD, distinct, s.warmupS, s.connections);
    await load(bareUrl, '', one, s.warmupS, s.connections);
  }
  const rep: number[] = [];
  const dis: number[] = [];
  const bar: number[] = [];
  // Server CPU µs per request, and cores busy, per run.
  const cpu = { rep: [] as number[], dis: [] as number[], bar: [] as number[], repCores: [] as number[], barCores: [] as number[] };
  let hitRate = Number.NaN;
  for (let i = 1; i <= s.rounds; i++) {
    log(`(i) round ${i}/${s.rounds}: ${s.connections} connections, ${s.durationS} s per target`);
    const before = await guardStats(mk.proc);
    const r = await load(mk.url, cookie, one, s.durationS, s.connections, mk.proc.pid);
    rep.push(r.requests.average);
    cpu.rep.push(r.cpuUsPerRequest);
    cpu.repCores.push(r.cores);
    const after = await guardStats(mk.proc);
    const lookups = after.hits + after.misses - before.hits - before.misses;
    hitRate = lookups > 0 ? (after.hits - before.hits) / lookups : Number.NaN;
    const d = await load(mkDistinct.url, cookieD, distinct, s.durationS, s.connections, mkDistinct.proc.pid);
    dis.push(d.requests.average);
    cpu.dis.push(d.cpuUsPerRequest);
    const b = await load(bareUrl, '', one, s.durationS, s.connections, bare.pid);
    bar.push(b.requests.average);
    cpu.bar.push(b.cpuUsPerRequest);
    cpu.barCores.push(b.cores);
  }
  const distinctStats = await guardStats(mkDistinct.proc);
  await bare.stop();
  await mk.proc.stop();
  await mkDistinct.proc.stop();
  rmSync(mk.dataDir, { recursive: true, force: true });
  rmSync(mkDistinct.dataDir, { recursive: true, force: true });

  const repeated = median(rep);
  const allDistinct = median(dis);
  const bareRps = median(bar);
  const worst = (k: 'hit' | 'miss' | 'coldMiss') => Math.max(...guard.map((g) => g[k].p99Us));
  const results = {
    guard,
    repeatedReadHitRate: hitRate,
    allDistinctHitRate: distinctStats.hits / Math.max(1, distinctStats.hits + distinctStats.misses),
    fullStack: {
      repeatedReadRps: repeated,
      allDistinctRps: allDistinct,
      bareFastifyRps: bareRps,
      repeatedRatio: repeated / bareRps,
      allDistinctRatio: allDistinct / bareRps,
      runs: { repeated: rep, allDistinct: dis, bare: bar },
      serverCpuUsPerRequest: { repeated: median(cpu.rep), allDistinct: median(cpu.dis), bare: median(cpu.bar) },
      serverCores: { repeated: median(cpu.repCores), bare: median(cpu.barCores) },
    },
    pass: {
      hitP99: worst('hit') <= GOALS.hitP99Us,
      missP99: worst('miss') <= GOALS.missP99Us,
      repeated: repeated / bareRps >= GOALS.repeatedRatio,
      distinct: allDistinct >= GOALS.distinctRps,
    },
  };
  const us = (v: number) => `${v.toFixed(1)} µs`;
  const rows: string[][] = [
    ...guard.flatMap((g) => [
      [`(g) guard hit p50/p99, ${fmt.int(g.bindings)} bindings`, `${us(g.hit.p50Us)} / ${us(g.hit.p99Us)}`, '', '', `p99 <= ${GOALS.hitP99Us} µs`, verdict(g.hit.p99Us <= GOALS.hitP99Us)],
      [`(g) guard miss p50/p99, ${fmt.int(g.bindings)} bindings`, `${us(g.miss.p50Us)} / ${us(g.miss.p99Us)}`, '', '', `p99 <= ${GOALS.missP99Us} µs`, verdict(g.miss.p99Us <= GOALS.missP99Us)],
      [`(g) guard cold miss p50/p99, ${fmt.int(g.bindings)} bindings`, `${us(g.coldMiss.p50Us)} / ${us(g.coldMiss.p99Us)}`, '', '', 'information', ''],
    ]),
    ['(h) decision-cache hit rate, repeated-read', fmt.pct(hitRate), '', '', 'information', ''],
    ['(i) authorized metadata GET, repeated-read', fmt.rps(repeated), fmt.rps(bareRps), fmt.pct(repeated / bareRps), `>= ${fmt.pct(GOALS.repeatedRatio)} of bare`, verdict(results.pass.repeated)],
    ['(i) authorized metadata GET, all-distinct', fmt.rps(allDistinct), fmt.rps(bareRps), fmt.pct(allDistinct / bareRps), `>= ${fmt.int(GOALS.distinctRps)} req/s`, verdict(results.pass.distinct)],
    ['(i) server CPU per request, repeated-read', us(median(cpu.rep)), us(median(cpu.bar)), `${(median(cpu.rep) / median(cpu.bar)).toFixed(1)} x`, 'information', ''],
    ['(i) server CPU per request, all-distinct', us(median(cpu.dis)), us(median(cpu.bar)), `${(median(cpu.dis) / median(cpu.bar)).toFixed(1)} x`, 'information', ''],
  ];
  const notes = [
    `(g) in-process Guard.check on SQLite: hit = the same request again; miss = a new resource (one Cedar call, bindings slice cached); cold = the principal's epoch bumped first (bindings re-read, then Cedar). ${s.hitSamples} hits, ${s.missSamples} misses, ${s.coldSamples} cold per size`,
    `(i) all-distinct: ${s.distinctModels} models in rotation against a server whose decision cache holds one entry, so every guard decision is computed (hit rate ${fmt.pct(results.allDistinctHitRate)}); runs (req/s): repeated ${fmt.list(rep)} | all-distinct ${fmt.list(dis)} | bare ${fmt.list(bar)}`,
    `(i) server CPU = user + system time of the server process (all threads) over a run / requests served; cores busy: Modelkeep repeated ${fmt.list(cpu.repCores, 2)} | bare ${fmt.list(cpu.barCores, 2)} (a server below ~0.9 was waiting on the load generator, which shares the machine)`,
  ];
  return { results, rows, notes } satisfies Section<unknown>;
}

export type AuthzResults = Awaited<ReturnType<typeof runAuthz>>['results'];

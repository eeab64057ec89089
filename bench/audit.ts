// The audit section of the benchmark (see bench/README.md, "Audit"), each figure beside
// its baseline from the same run:
//   (d) audit appends/s (Merkle leaf, stored nodes, counter row, heads signed every 2 s)
//       vs plain inserts of the same rows into a table with the same columns and keys,
//       one per transaction, same database and connection; SQLite, and PostgreSQL when
//       a server is reachable
//   (e) verifier events/s over a generated log vs hashing its canonical leaves alone
//   (f) time-to-detect p50/p99 of real alerts on a real server vs the detector poll interval
// runAudit() returns the rows for run.ts's table and the figures for --json.
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import {
  AlertStore,
  type AuditEvent,
  type AuditInput,
  AuditLog,
  AuditTree,
  eventLeafHash,
  eventRow,
  keyIdOf,
  loadSigningKey,
  readDatabaseLog,
  signHeadsOver,
  timeToDetect,
  verifyLog,
} from '../src/audit/index.ts';
import { type ConfigInput, newId, parseConfig, type RequestContext, systemClock } from '../src/core/index.ts';
import { bootstrapUser } from '../src/main.ts';
import { type AuditEventsTable, type Db, openDatabase, sql } from '../src/storage/index.ts';
import { Client, expectOk, json, PASSWORD, } from '../test/helpers/server.ts';
import { engineerInFraud } from './lib/fixture.ts';
import { forkScript, type ServerReady } from './lib/proc.ts';
import { fmt, median, type Section, verdict } from './lib/report.ts';

export const AUDIT_GOALS = {
  /** Audit appends/s at least this share of plain inserts/s. */
  appendRatio: 0.5,
  verifierEventsPerSec: 200_000,
  ttdP99Seconds: 2,
} as const;

export interface AuditSettings {
  quick: boolean;
  /** Events appended per backend (and rows inserted by the baseline). */
  appendEvents: number;
  /** Interleaved rounds the appends and the baseline are split into; median reported. */
  appendRounds: number;
  /** The tree-head schedule during the appends (AuditTree intervalMs). */
  treeHeadIntervalMs: number;
  verifyEvents: number;
  verifyHeadEvery: number;
  verifyReps: number;
  /** Users who each produce a burst (time-to-detect). */
  ttdUsers: number;
  /** Upper bound on the wait for the alerts to appear. */
  ttdTimeoutMs: number;
  /** Where a fresh PostgreSQL database is created (and dropped) for the appends. */
  pgAdminUrl: string;
  pgUrlFrom: 'MODELKEEP_BENCH_DATABASE_URL' | 'default';
}

export function auditSettings(o: { quick: boolean; appendEvents?: number | undefined; verifyEvents?: number | undefined; ttdUsers?: number | undefined }): AuditSettings {
  const env = process.env.MODELKEEP_BENCH_DATABASE_URL;
  return {
    quick: o.quick,
    appendEvents: o.appendEvents ?? (o.quick ? 500 : 5000),
    appendRounds: 5,
    treeHeadIntervalMs: 2000,
    verifyEvents: o.verifyEvents ?? (o.quick ? 20_000 : 200_000),
    verifyHeadEvery: 10_000,
    verifyReps: 3,
    ttdUsers: o.ttdUsers ?? (o.quick ? 10 : 30),
    ttdTimeoutMs: 30_000,
    pgAdminUrl: env ?? 'postgres://postgres@127.0.0.1:5432/test',
    pgUrlFrom: env ? 'MODELKEEP_BENCH_DATABASE_URL' : 'default',
  };
}

type Log = (msg: string) => void;

// ---------------------------------------------------------------------------------------
// (d) audit appends vs plain inserts

/** What one request of a signed-in user records, cycling (reads, downloads, a denial). */
const INPUTS: readonly AuditInput[] = [
  { action: 'model:read', outcome: 'allow', resource: 'model:fraud/churn', projectId: 'prj_bench', reason: 'role ml-engineer', policyVersion: 'bench-1' },
  {
    action: 'artifact:download',
    outcome: 'allow',
    resource: 'artifact:fraud/churn/1/model.bin',
    projectId: 'prj_bench',
    reason: 'role ml-engineer',
    policyVersion: 'bench-1',
    details: { sha256: 'ab'.repeat(32), size: 536_870_912 },
  },
  { action: 'version:read', outcome: 'allow', resource: 'version:fraud/churn/1', projectId: 'prj_bench', reason: 'role ml-engineer', policyVersion: 'bench-1' },
  {
    action: 'version:promote',
    outcome: 'deny',
    resource: 'version:fraud/churn/1',
    projectId: 'prj_bench',
    reason: 'changing the production stage needs the release-manager role in project fraud',
    policyVersion: 'bench-1',
    details: { targetStage: 'production' },
  },
];

const AUTH_TIME = new Date();
const BENCH_USER = { id: newId('usr'), username: 'bench-user', sessionId: newId('ses') };

/** A request's context as the HTTP layer builds it (cf. bootstrapUser in src/main.ts), for a signed-in user. */
function userContext(): RequestContext {
  return {
    requestId: newId('req'),
    principal: { kind: 'user', id: BENCH_USER.id, username: BENCH_USER.username, sessionId: BENCH_USER.sessionId, amr: ['pwd'], authTime: AUTH_TIME, mfaAt: null, authMethod: 'session', scopes: null },
    ip: '127.0.0.1',
    userAgent: 'modelkeep-bench/1',
    now: new Date(),
  };
}


/**
 * The baseline's table: a copy of audit_events as the migrations made it (columns, primary
 * key, indexes), so the ratio isolates the audit machinery (counter row, leaf hash, tree
 * nodes, head signing), not the cost of storing and indexing the row, which both sides
 * pay. Copied from the live schema, it follows any later change to audit_events.
 */
async function createPlainTable(db: Db): Promise<void> {
  const k = db.kysely;
  if (db.dialect === 'postgres') {
    await sql`CREATE TABLE bench_plain (LIKE audit_events INCLUDING ALL)`.execute(k);
    return;
  }
  const ddl = await sql<{ sql: string }>`SELECT sql FROM sqlite_master WHERE tbl_name = 'audit_events' AND sql IS NOT NULL ORDER BY type DESC`.execute(k);
  if (ddl.rows.length === 0) throw new Error('audit_events has no schema to copy');
  // The table first ("table" sorts after "index": DESC), then its indexes, renamed.
  for (const r of ddl.rows) await sql.raw(r.sql.replace(/\baudit_events/g, 'bench_plain')).execute(k);
}

export interface AppendResult {
  backend: 'sqlite' | 'postgres';
  serverVersion: string | null;
  events: number;
  rounds: number;
  warmupEvents: number;
  eventsPerSec: number;
  runs: number[];
  baselinePlainInserts: { rowsPerSec: number; runs: number[] };
  ratio: number;
  /** Tree heads the AuditTree schedule signed while the appends ran (plus one at stop). */
  treeHeadsDuringRun: number;
  treeHeadsTotal: number;
  /** The appended log, read back and checked with verifyLog against its signed heads. */
  logVerified: boolean;
  goal: string;
  pass: boolean;
}

const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Splits n into `parts` near-equal positive chunks. */
function chunks(n: number, parts: number): number[] {
  const k = Math.max(1, Math.min(parts, n));
  return Array.from({ length: k }, (_, i) => Math.floor((n * (i + 1)) / k) - Math.floor((n * i) / k));
}

async function appendPair(s: AuditSettings, db: Db, dataDir: string, serverVersion: string | null, log: Log): Promise<AppendResult> {
  const k = db.kysely;
  const key = loadSigningKey({ dataDir });
  const alerts = new AlertStore(k);
  let signFailures = 0;
  // Created like buildServices does (src/main.ts), without witnesses.
  const tree = new AuditTree({
    db: k,
    key,
    clock: systemClock,
    alerts,
    options: { intervalMs: s.treeHeadIntervalMs, witnesses: [], onWitnessError: () => signFailures++ },
  });
  const audit = new AuditLog(k);
  await createPlainTable(db);
  const plain = k.withTables<{ bench_plain: AuditEventsTable }>();
  // Both sides cycle through the same inputs: row for row, the same data.
  let appended = 0;
  let plainSeq = 0;
  const appendOne = () => audit.record(userContext(), INPUTS[appended++ % INPUTS.length]!);
  const insertOne = () => {
    const row = eventRow(plainSeq + 1, userContext(), INPUTS[plainSeq++ % INPUTS.length]!);
    return plain.transaction().execute((tx) => tx.insertInto('bench_plain').values(row).execute());
  };
  const timed = async (count: number, one: () => Promise<unknown>): Promise<number> => {
    const t = performance.now();
    for (let i = 0; i < count; i++) {
      await one();
      // node:sqlite is synchronous: awaited queries settle as microtasks and never let
      // timers run, so without this the tree-head schedule would starve for the whole
      // loop. A server yields between requests the same way (each is its own I/O event).
      await yieldToEventLoop();
    }
    return count / ((performance.now() - t) / 1000);
  };

  tree.start();
  // Warm-up (JIT, statement caches, the first pages of both tables), not counted.
  const warmup = Math.min(200, Math.max(20, Math.round(s.appendEvents / 10)));
  await timed(warmup, insertOne);
  await timed(warmup, appendOne);
  const runs = { audit: [] as number[], plain: [] as number[] };
  const parts = chunks(s.appendEvents, s.appendRounds);
  for (const [i, c] of parts.entries()) {
    // Interleaved, alternating which goes first: a slow moment of the machine hits both.
    if (i % 2 === 0) {
      runs.plain.push(await timed(c, insertOne));
      runs.audit.push(await timed(c, appendOne));
    } else {
      runs.audit.push(await timed(c, appendOne));
      runs.plain.push(await timed(c, insertOne));
    }
  }
  const headsDuringRun = (await tree.heads()).length;
  await tree.stop();
  const heads = await tree.heads();
  if (signFailures > 0) throw new Error(`the tree-head signer failed ${signFailures} times during the appends`);

  // The appended log must be sound: every event covered by a valid signed head.
  const stored = await readDatabaseLog(k);
  const check = await verifyLog({ ...stored, publicKey: key.publicKey, keyId: key.keyId });
  const expected = warmup + s.appendEvents;
  if (!check.ok || check.events !== expected || check.verifiedSize !== expected) {
    throw new Error(`the appended audit log does not verify: ${check.ok ? `${check.verifiedSize} of ${check.events} events verified, ${expected} appended` : check.message}`);
  }
  const plainCount = Number((await plain.selectFrom('bench_plain').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
  if (plainCount !== expected) throw new Error(`bench_plain holds ${plainCount} rows, ${expected} inserted`);

  const eps = median(runs.audit);
  const rps = median(runs.plain);
  log(`  ${db.dialect}: appends ${fmt.list(runs.audit)} events/s, plain ${fmt.list(runs.plain)} rows/s, ${heads.length} heads`);
  return {
    backend: db.dialect,
    serverVersion,
    events: s.appendEvents,
    rounds: parts.length,
    warmupEvents: warmup,
    eventsPerSec: eps,
    runs: runs.audit,
    baselinePlainInserts: { rowsPerSec: rps, runs: runs.plain },
    ratio: eps / rps,
    treeHeadsDuringRun: headsDuringRun,
    treeHeadsTotal: heads.length,
    logVerified: true,
    goal: `>= ${AUDIT_GOALS.appendRatio * 100} % of plain inserts`,
    pass: eps / rps >= AUDIT_GOALS.appendRatio,
  };
}

/** The URL without its password, for messages. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

interface PgDatabase {
  url: string;
  version: string;
  drop(): Promise<void>;
}

/** A fresh database on the server at `adminUrl` (cf. createPgDatabase in test/helpers/server.ts). */
async function freshPgDatabase(adminUrl: string): Promise<PgDatabase> {
  const name = `mk_bench_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
  admin.on('error', () => {});
  let version: string;
  try {
    await admin.connect();
    // "15.20 (Debian 15.20-0+deb12u1)": the number is enough for the table.
    version = ((await admin.query<{ server_version: string }>('SHOW server_version')).rows[0]?.server_version ?? '?').split(' ')[0] ?? '?';
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end().catch(() => {});
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    version,
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 3000 });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

async function appendsSqlite(s: AuditSettings, tmp: string, log: Log): Promise<AppendResult> {
  const dataDir = join(tmp, 'audit-sqlite');
  mkdirSync(dataDir, { recursive: true });
  const db = await openDatabase({ dataDir });
  try {
    return await appendPair(s, db, dataDir, null, log);
  } finally {
    await db.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function appendsPostgres(s: AuditSettings, tmp: string, log: Log): Promise<AppendResult | { skipped: string }> {
  let pgdb: PgDatabase;
  try {
    pgdb = await freshPgDatabase(s.pgAdminUrl);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return { skipped: `PostgreSQL not usable at ${redact(s.pgAdminUrl)} (${s.pgUrlFrom}): ${why}` };
  }
  const dataDir = join(tmp, 'audit-pg'); // the signing key
  mkdirSync(dataDir, { recursive: true });
  try {
    const db = await openDatabase({ dataDir, databaseUrl: pgdb.url });
    try {
      return await appendPair(s, db, dataDir, pgdb.version, log);
    } finally {
      await db.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
    await pgdb.drop();
  }
}

// ---------------------------------------------------------------------------------------
// (e) the verifier

/** A log as a busy server writes it: many users and projects, reads, downloads, denials, logins. */
export function syntheticEvents(n: number): AuditEvent[] {
  const users = Array.from({ length: 64 }, (_, i) => ({ id: newId('usr'), name: `user-${i}`, session: newId('ses') }));
  const projects = Array.from({ length: 8 }, (_, i) => ({ id: newId('prj'), name: `project-${i}` }));
  const t0 = Date.UTC(2025, 0, 1);
  const events: AuditEvent[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const u = users[seq % users.length]!;
    const p = projects[(seq >> 3) % projects.length]!;
    const kind = seq % 5;
    const base = {
      seq,
      time: new Date(t0 + seq * 37).toISOString(),
      actor: u.name,
      actorId: u.id,
      sessionId: u.session,
      ip: `10.1.${(seq >> 8) & 255}.${seq & 255}`,
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) modelkeep-console/0.1',
      requestId: `req_${seq.toString(36).padStart(16, '0')}`,
      policyVersion: 'rm-5f2c9e1a',
    };
    if (kind === 0) {
      events.push({ ...base, action: 'auth.login', resource: null, projectId: null, outcome: 'success', reason: null, details: { amr: ['pwd'] } });
    } else if (kind === 1) {
      events.push({
        ...base,
        action: 'artifact:download',
        resource: `artifact:${p.name}/churn/${seq % 9}/model.bin`,
        projectId: p.id,
        outcome: 'allow',
        reason: 'role ml-engineer',
        details: { sha256: (seq * 2654435761).toString(16).padStart(64, '0').slice(-64), size: 1024 * (seq % 100_000) },
      });
    } else if (kind === 2) {
      events.push({
        ...base,
        action: 'version:promote',
        resource: `version:${p.name}/churn/${seq % 9}`,
        projectId: p.id,
        outcome: 'deny',
        reason: `changing the production stage needs the release-manager role in project ${p.name}`,
        details: { targetStage: 'production' },
      });
    } else {
      events.push({ ...base, action: 'model:read', resource: `model:${p.name}/churn`, projectId: p.id, outcome: 'allow', reason: 'role viewer', details: {} });
    }
  }
  return events;
}

export interface VerifierResult {
  events: number;
  heads: number;
  reps: number;
  eventsPerSec: number;
  runsMs: number[];
  baselineLeafHashing: { eventsPerSec: number; runsMs: number[] };
  ratio: number;
  goal: string;
  pass: boolean;
}

async function verifier(s: AuditSettings, log: Log): Promise<VerifierResult> {
  const n = s.verifyEvents;
  log(`  generating ${fmt.int(n)} events and signing heads every ${fmt.int(s.verifyHeadEvery)}`);
  const events = syntheticEvents(n);
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const keyId = keyIdOf(publicKey);
  const heads = signHeadsOver(events, { privateKey, keyId }, s.verifyHeadEvery);

  const verifyOnce = async (): Promise<number> => {
    const t = performance.now();
    const r = await verifyLog({ events, heads, publicKey, keyId });
    const ms = performance.now() - t;
    if (!r.ok || r.events !== n || r.verifiedSize !== n) throw new Error(`the generated log does not verify: ${r.ok ? `${r.verifiedSize} of ${n} verified` : r.message}`);
    return ms;
  };
  let sink = 0;
  const hashOnce = (): number => {
    const t = performance.now();
    for (const e of events) sink ^= eventLeafHash(e)[0]!;
    return performance.now() - t;
  };
  // Warm-up of both paths, not counted; then interleaved rounds.
  await verifyOnce();
  hashOnce();
  const runsMs = { verify: [] as number[], hash: [] as number[] };
  for (let i = 0; i < s.verifyReps; i++) {
    runsMs.verify.push(await verifyOnce());
    runsMs.hash.push(hashOnce());
  }
  if (sink < 0) log('unreachable'); // keeps the hashing observable
  const eps = n / (median(runsMs.verify) / 1000);
  const hps = n / (median(runsMs.hash) / 1000);
  log(`  verifyLog ${fmt.list(runsMs.verify)} ms, leaf hashing ${fmt.list(runsMs.hash)} ms`);
  return {
    events: n,
    heads: heads.length,
    reps: s.verifyReps,
    eventsPerSec: eps,
    runsMs: runsMs.verify,
    baselineLeafHashing: { eventsPerSec: hps, runsMs: runsMs.hash },
    ratio: eps / hps,
    goal: `>= ${fmt.int(AUDIT_GOALS.verifierEventsPerSec)} events/s`,
    pass: eps >= AUDIT_GOALS.verifierEventsPerSec,
  };
}

// ---------------------------------------------------------------------------------------
// (f) time-to-detect on a real server

const DENIALS = 3;
const DOWNLOADS = 3;
/** Detectors as the brief for this figure sets them: small thresholds, real windows. */
const TTD_CONFIG: Omit<ConfigInput, 'dataDir'> = {
  // Each user comes from its own address (X-Forwarded-For from the loopback client), so
  // every burst is that actor's alone and no per-address alert doubles it.
  trustedProxies: ['127.0.0.1'],
  detectors: { denialBurst: { count: DENIALS, windowMinutes: 5 }, massDownload: { count: DOWNLOADS, windowMinutes: 10 } },
};

interface AlertView {
  rule: string;
  actor: string | null;
  createdAt: string;
  eventTime: string;
  eventSeq: number | null;
}

export interface TimeToDetectResult {
  users: number;
  /** Burst requests (denials and downloads), sent by all users at once. */
  requests: number;
  burstSeconds: number;
  alertsExpected: number;
  alertsByRule: Record<string, number>;
  /** From timeToDetect() (src/audit/detectors/metrics.ts): createdAt - eventTime, nearest rank. */
  alertsMeasured: number;
  p50Seconds: number | null;
  p99Seconds: number | null;
  maxSeconds: number | null;
  /** Until every expected alert was listed by GET /v1/alerts, from the end of the burst. */
  allSeenAfterSeconds: number | null;
  baselinePollMs: number;
  ratioP50: number | null;
  ratioP99: number | null;
  goal: string;
  pass: boolean;
  note: string | null;
}

const ipOf = (i: number) => `10.77.${(i >> 8) & 255}.${i & 255}`;

async function timeToDetectRun(s: AuditSettings, tmp: string, log: Log): Promise<TimeToDetectResult> {
  const dataDir = join(tmp, 'audit-ttd');
  const pollMs = parseConfig({ ...TTD_CONFIG, dataDir }).detectors.pollMs;
  await bootstrapUser({ dataDir }, { username: 'admin', password: PASSWORD, platformAdmin: true });
  const proc = forkScript<ServerReady>('server-child.ts', [dataDir, JSON.stringify(TTD_CONFIG)]);
  try {
    const { url } = await proc.ready;
    log(`  server up; fixture: project, artifact, ${s.ttdUsers} data-scientists`);
    const { admin, eng } = await engineerInFraud(url);
    const V = '/v1/projects/fraud/models/churn/versions/1';
    await expectOk(await eng.post('/v1/projects/fraud/models', { name: 'churn' }));
    await expectOk(await eng.post('/v1/projects/fraud/models/churn/versions', {}));
    await expectOk(await eng.upload(`${V}/artifacts/model.bin`, new Uint8Array(64 * 1024)));
    await expectOk(await eng.post(`${V}/finalize`));
    const users: { i: number; client: Client }[] = [];
    for (let i = 1; i <= s.ttdUsers; i++) {
      const username = `burst-${i}`;
      await expectOk(await admin.post('/v1/admin/users', { username, password: PASSWORD }));
      await expectOk(await admin.post('/v1/projects/fraud/bindings', { principal: `user:${username}`, role: 'data-scientist' }));
      const c = new Client(url);
      await expectOk(await c.login(username));
      users.push({ i, client: c });
    }
    const downloaders = users.filter((u) => u.i % 3 === 0).length;
    const alertsExpected = users.length + downloaders;

    // Every user at once: DENIALS refusals (a data-scientist may not read the audit log:
    // 403, recorded as deny), and every third user DOWNLOADS downloads of the artifact.
    log(`  ${users.length} users burst at once: ${DENIALS} denials each, ${DOWNLOADS} downloads for ${downloaders} of them`);
    const since = new Date().toISOString();
    const t0 = performance.now();
    let requests = 0;
    await Promise.all(
      users.map(async ({ i, client }) => {
        const h = { 'x-forwarded-for': ipOf(i) };
        for (let k = 0; k < DENIALS; k++) {
          const r = await client.get('/v1/audit/events?limit=1', h);
          await r.arrayBuffer();
          if (r.status !== 403) throw new Error(`a data-scientist reading the audit log got ${r.status}, not 403`);
          requests++;
        }
        if (i % 3 !== 0) return;
        for (let k = 0; k < DOWNLOADS; k++) {
          const r = await client.get(`${V}/artifacts/model.bin`, h);
          await r.arrayBuffer();
          if (r.status !== 200) throw new Error(`a data-scientist's download got ${r.status}, not 200`);
          requests++;
        }
      }),
    );
    const burstEnd = performance.now();

    // Bounded polling, as the console would: until every expected alert is listed.
    const ours = (a: AlertView) => (a.rule === 'denial-burst' || a.rule === 'mass-download') && (a.actor ?? '').startsWith('burst-');
    let seen: AlertView[] = [];
    let allSeenAfterSeconds: number | null = null;
    const deadline = burstEnd + s.ttdTimeoutMs;
    for (;;) {
      const r = await expectOk(await admin.get('/v1/alerts?limit=1000'));
      seen = (await json<{ alerts: AlertView[] }>(r)).alerts.filter(ours);
      if (seen.length >= alertsExpected) {
        allSeenAfterSeconds = (performance.now() - burstEnd) / 1000;
        break;
      }
      if (performance.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await proc.stop();

    // The figure itself: the function /metrics reports, over this run's detector alerts.
    const db = await openDatabase({ dataDir });
    let ttd: Awaited<ReturnType<typeof timeToDetect>>;
    let maxSeconds: number | null;
    try {
      ttd = await timeToDetect(db.kysely, { since });
      const rows = await db.kysely.selectFrom('audit_alerts').select(['created_at', 'event_time']).where('created_at', '>=', since).where('event_seq', 'is not', null).execute();
      maxSeconds = rows.length === 0 ? null : Math.max(...rows.map((a) => (Date.parse(a.created_at) - Date.parse(a.event_time)) / 1000));
    } finally {
      await db.close();
    }
    const alertsByRule: Record<string, number> = {};
    for (const a of seen) alertsByRule[a.rule] = (alertsByRule[a.rule] ?? 0) + 1;
    const missing = alertsExpected - seen.length;
    const note =
      missing > 0 ? `${missing} of ${alertsExpected} expected alerts were not raised within ${s.ttdTimeoutMs / 1000} s of the burst` : ttd.count !== alertsExpected ? `timeToDetect counted ${ttd.count} alerts, ${alertsExpected} expected` : null;
    const p99 = ttd.p99Seconds;
    return {
      users: users.length,
      requests,
      burstSeconds: (burstEnd - t0) / 1000,
      alertsExpected,
      alertsByRule,
      alertsMeasured: ttd.count,
      p50Seconds: ttd.p50Seconds,
      p99Seconds: p99,
      maxSeconds,
      allSeenAfterSeconds,
      baselinePollMs: pollMs,
      ratioP50: ttd.p50Seconds === null ? null : ttd.p50Seconds / (pollMs / 1000),
      ratioP99: p99 === null ? null : p99 / (pollMs / 1000),
      goal: `p99 < ${AUDIT_GOALS.ttdP99Seconds} s`,
      pass: missing === 0 && p99 !== null && p99 < AUDIT_GOALS.ttdP99Seconds,
      note,
    };
  } finally {
    await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------
// The section

export interface AuditResults {
  settings: AuditSettings;
  appends: { sqlite: AppendResult; postgres: AppendResult | { skipped: string } };
  verifier: VerifierResult;
  timeToDetect: TimeToDetectResult;
}

export async function runAudit(s: AuditSettings, tmp: string, log: Log): Promise<Section<AuditResults>> {
  log(`(d) audit appends vs plain inserts: ${fmt.int(s.appendEvents)} events, one per transaction, heads every ${s.treeHeadIntervalMs} ms`);
  const sqlite = await appendsSqlite(s, tmp, log);
  const postgres = await appendsPostgres(s, tmp, log);
  if ('skipped' in postgres) log(`  postgres skipped: ${postgres.skipped}`);
  log(`(e) verifier: ${fmt.int(s.verifyEvents)} events, median of ${s.verifyReps}`);
  const ver = await verifier(s, log);
  log(`(f) time-to-detect: ${s.ttdUsers} users on a real server`);
  const ttd = await timeToDetectRun(s, tmp, log);

  const appendRow = (label: string, r: AppendResult) => [
    label,
    fmt.perSec(r.eventsPerSec),
    `plain inserts, same rows: ${fmt.perSec(r.baselinePlainInserts.rowsPerSec, 'rows')}`,
    fmt.pct(r.ratio),
    `>= ${AUDIT_GOALS.appendRatio * 100} %`,
    verdict(r.pass),
  ];
  const med = `median of ${sqlite.rounds}`;
  const rows: string[][] = [appendRow(`(d) Audit appends, SQLite, ${fmt.int(s.appendEvents)} x 1 tx, ${med}`, sqlite)];
  if ('skipped' in postgres) rows.push([`(d) Audit appends, PostgreSQL`, 'skipped', 'PostgreSQL not reachable (see below)', '', `>= ${AUDIT_GOALS.appendRatio * 100} %`, 'skip']);
  else rows.push(appendRow(`(d) Audit appends, PostgreSQL ${postgres.serverVersion ?? ''}, ${med}`.replace('  ', ' '), postgres));
  rows.push([
    `(e) Verifier, ${fmt.int(ver.events)} events, ${ver.heads} heads, median of ${ver.reps}`,
    fmt.perSec(ver.eventsPerSec),
    `leaf hashing alone: ${fmt.perSec(ver.baselineLeafHashing.eventsPerSec)}`,
    fmt.pct(ver.ratio),
    `>= ${fmt.int(AUDIT_GOALS.verifierEventsPerSec)} events/s`,
    verdict(ver.pass),
  ]);
  const secs = (v: number | null) => (v === null ? 'n/a' : fmt.secs(v));
  const ratio = (v: number | null) => (v === null ? '' : fmt.times(v));
  const poll = `detector poll interval: ${fmt.secs(ttd.baselinePollMs / 1000)}`;
  rows.push([`(f) Time to detect, ${ttd.alertsMeasured} alerts, p50`, secs(ttd.p50Seconds), poll, ratio(ttd.ratioP50), 'none set', 'info']);
  rows.push([`(f) Time to detect, p99`, secs(ttd.p99Seconds), poll, ratio(ttd.ratioP99), `p99 < ${AUDIT_GOALS.ttdP99Seconds} s`, verdict(ttd.pass)]);

  const appendNote = (r: AppendResult) =>
    `${r.backend}: audit ${fmt.list(r.runs)} | plain ${fmt.list(r.baselinePlainInserts.runs)} (${r.treeHeadsDuringRun} heads signed during the run, ${r.treeHeadsTotal} in all; log verified)`;
  const notes = [
    `runs (events/s, ${sqlite.rounds} interleaved rounds after ${sqlite.warmupEvents} warm-up rows each): ${appendNote(sqlite)}${'skipped' in postgres ? '' : ` || ${appendNote(postgres)}`}`,
    ...('skipped' in postgres ? [`(d) PostgreSQL skipped: ${postgres.skipped}`] : []),
    `runs (ms): verifyLog ${fmt.list(ver.runsMs)} | leaf hashing ${fmt.list(ver.baselineLeafHashing.runsMs)}`,
    `time to detect: ${ttd.users} users sent ${ttd.requests} requests in ${ttd.burstSeconds.toFixed(2)} s; alerts ${Object.entries(ttd.alertsByRule)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} of ${ttd.alertsExpected} expected, all listed ${ttd.allSeenAfterSeconds === null ? 'never' : `${ttd.allSeenAfterSeconds.toFixed(2)} s`} after the burst; max ${secs(ttd.maxSeconds)}${ttd.note ? `; ${ttd.note}` : ''}`,
  ];
  return { results: { settings: s, appends: { sqlite, postgres }, verifier: ver, timeToDetect: ttd }, rows, notes };
}

// `npm run bench [-- --quick] [-- --json] [-- --only audit|transfer|authz|authn|all] [-- --size-mib N] …`
//
// Measures Modelkeep side by side with a plain-Node baseline in one run and prints one
// table (see bench/README.md for what each figure means):
//   transfer
//   (a) artifact download and upload MiB/s vs createReadStream / read+sha256+write
//   (b) authenticated, authorized metadata GET req/s vs a bare Fastify route (autocannon)
//   (c) server RSS growth during a large upload
//   audit (bench/audit.ts)
//   (d) audit appends/s vs plain inserts of the same rows (SQLite, and PostgreSQL if reachable)
//   (e) audit log verifier events/s vs hashing the canonical leaves alone
//   (f) time-to-detect p50/p99 of real alerts vs the detector poll interval
//   authz (bench/authz.ts)
//   (g) guard hit / miss / cold-miss p50/p99 at 1k, 10k and 100k role bindings
//   (h) decision-cache hit rate of the repeated-read workload
//   (i) authorized metadata GET req/s vs bare Fastify, repeated-read and all-distinct
//   authn (bench/authn.ts)
//   (j) bearer authentication cost per request (first-seen vs cached token) vs a bare SHA-256
//   (k) GET /v1/me with a bearer token req/s vs a bare Fastify route (autocannon)
//   (l) login latency (argon2id) vs a bare route round trip
//   (m) time-to-revoke p50/p99 and requests accepted after the revoking call returned
// The servers, the baselines and the load generator each run in their own process; the
// harness (this process) only drives them and samples. Progress goes to stderr, the
// table (or with --json the results) to stdout.
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { bootstrapUser } from '../src/main.ts';
import { type Client, expectOk, json, PASSWORD, } from '../test/helpers/server.ts';
import { type AuditResults, auditSettings, runAudit } from './audit.ts';
import { type AuthnResults, authnSettings, runAuthn } from './authn.ts';
import { type AuthzResults, authzSettings, runAuthz } from './authz.ts';
import type { DiskResult } from './disk-child.ts';
import { engineerInFraud } from './lib/fixture.ts';
import { cleanupNow, type Forked, forkScript, machineLoad, onCleanup, readHwm, readRss, resetHwm, type ServerReady, spawnTracked } from './lib/proc.ts';
import { fmt, MiB, median, mibPerSec, type Section, table, verdict } from './lib/report.ts';
import { download, upload } from './lib/transfer.ts';

// ---- settings

const ONLY = ['all', 'transfer', 'audit', 'authz', 'authn'] as const;

const HELP = `usage: npm run bench -- [options]
  --only PART        all (default), transfer (figures a-c), audit (figures d-f), authz (figures g-i) or authn (figures j-m)
  --size-mib N       artifact size for the download/upload figures (default 512; --quick 32)
  --upload-gib N     upload size for the server-RSS figure (default 1; --quick 0.0625)
  --reps N           repetitions of each throughput measurement, median reported (default 3)
  --duration S       seconds of each measured autocannon run (default 5; --quick 1)
  --warmup S         seconds of the autocannon warm-up run per target (default 2; --quick 1)
  --rounds N         measured autocannon rounds per target, alternating, median reported (default 3; --quick 1)
  --connections N    autocannon connections (default 10)
  --audit-events N   audit appends (and plain inserts) per database (default 5000; --quick 500)
  --verify-events N  events in the generated log the verifier checks (default 200000; --quick 20000)
  --ttd-users N      users bursting at once for the time-to-detect figure (default 30; --quick 10)
  --authn-tokens N   distinct access tokens for the first-seen authn figures (default 5000; --quick 500)
  --logins N         logins timed for the login-latency figure (default 60; --quick 10)
  --revoke-trials N  time-to-revoke trials over the three revoking calls (default 210; --quick 30)
  --quick            small sizes and short runs: a smoke test, not a measurement
  --json             print machine-readable results instead of the table
`;

const { values: opt } = parseArgs({
  options: {
    'size-mib': { type: 'string' },
    'upload-gib': { type: 'string' },
    reps: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    rounds: { type: 'string' },
    connections: { type: 'string' },
    only: { type: 'string', default: 'all' },
    'audit-events': { type: 'string' },
    'verify-events': { type: 'string' },
    'ttd-users': { type: 'string' },
    'authn-tokens': { type: 'string' },
    logins: { type: 'string' },
    'revoke-trials': { type: 'string' },
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}

function num(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min) {
    process.stderr.write(`--${name} must be a number >= ${min}\n${HELP}`);
    process.exit(2);
  }
  return v;
}

const quick = opt.quick;
const only = ONLY.find((o) => o === opt.only);
if (only === undefined) {
  process.stderr.write(`--only must be one of ${ONLY.join(', ')}\n${HELP}`);
  process.exit(2);
}
const S = {
  sizeMib: Math.round(num('size-mib', opt['size-mib'], quick ? 32 : 512, 1)),
  uploadGib: num('upload-gib', opt['upload-gib'], quick ? 1 / 16 : 1, 1 / 1024),
  reps: Math.round(num('reps', opt.reps, 3, 1)),
  durationS: num('duration', opt.duration, quick ? 1 : 5, 1),
  warmupS: num('warmup', opt.warmup, quick ? 1 : 2, 0),
  rounds: Math.round(num('rounds', opt.rounds, quick ? 1 : 3, 1)),
  connections: Math.round(num('connections', opt.connections, 10, 1)),
};
const uploadMib = Math.max(1, Math.round(S.uploadGib * 1024));
const optInt = (name: 'audit-events' | 'verify-events' | 'ttd-users' | 'authn-tokens' | 'logins' | 'revoke-trials', min: number) => {
  const raw = opt[name];
  return raw === undefined ? undefined : Math.round(num(name, raw, 0, min));
};
const A = auditSettings({ quick, appendEvents: optInt('audit-events', 10), verifyEvents: optInt('verify-events', 10), ttdUsers: optInt('ttd-users', 1) });

const Z = authzSettings({ quick, durationS: S.durationS, warmupS: S.warmupS, rounds: S.rounds, connections: S.connections });
const AU = authnSettings({ quick, tokens: optInt('authn-tokens', 10), logins: optInt('logins', 3), revokeTrials: optInt('revoke-trials', 3) });

const GOALS = { downloadRatio: 0.8, uploadRatio: 0.6, rssGrowthMib: 160 } as const;

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

// ---- scratch space and test files

const tmp = mkdtempSync(join(tmpdir(), 'mk-bench-'));
onCleanup(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes `mib` MiB of incompressible bytes, one 1 MiB chunk at a time, and fsyncs. */
async function writeDataFile(path: string, mib: number): Promise<void> {
  const seed = randomBytes(MiB);
  const ws = createWriteStream(path, { flush: true });
  for (let i = 0; i < mib; i++) {
    const chunk = Buffer.allocUnsafe(MiB);
    seed.copy(chunk);
    chunk.writeUInt32LE(i, 0); // no two chunks alike
    if (!ws.write(chunk)) await once(ws, 'drain');
  }
  ws.end();
  await finished(ws);
}

// ---- the Modelkeep server (child process) and its fixture

interface Modelkeep {
  proc: Forked<ServerReady>;
  url: string;
  pid: number;
  dataDir: string;
  /** Signed in as the `ml-engineer` of project `fraud`, where model `churn` exists. */
  eng: Client;
}

async function startModelkeep(name: string): Promise<Modelkeep> {
  const dataDir = join(tmp, name);
  await bootstrapUser({ dataDir }, { username: 'admin', password: PASSWORD, platformAdmin: true });
  const proc = forkScript<ServerReady>('server-child.ts', [dataDir]);
  const { url, pid } = await proc.ready;
  const { eng } = await engineerInFraud(url);
  await expectOk(await eng.post('/v1/projects/fraud/models', { name: 'churn' }));
  return { proc, url, pid, dataDir, eng };
}

async function newVersion(mk: Modelkeep): Promise<number> {
  const v = await json<{ version: number }>(await expectOk(await mk.eng.post('/v1/projects/fraud/models/churn/versions', {})));
  return v.version;
}

const artifactUrl = (mk: Modelkeep, version: number, path: string) => `${mk.url}/v1/projects/fraud/models/churn/versions/${version}/artifacts/${path}`;

interface ArtifactView {
  path: string;
  size: number;
  sha256: string;
}

async function uploadArtifact(mk: Modelkeep, version: number, path: string, file: string, size: number): Promise<{ ms: number; artifact: ArtifactView }> {
  const r = await upload(artifactUrl(mk, version, path), mk.eng.headers(), file, size);
  if (r.status !== 201) throw new Error(`upload answered ${r.status}: ${r.body}`);
  const artifact = JSON.parse(r.body) as ArtifactView;
  if (artifact.size !== size) throw new Error(`upload stored ${artifact.size} bytes, sent ${size}`);
  return { ms: r.ms, artifact };
}

async function downloadArtifact(mk: Modelkeep, version: number, path: string, size: number): Promise<number> {
  const r = await download(artifactUrl(mk, version, path), { cookie: mk.eng.cookie ?? '' });
  if (r.status !== 200 || r.bytes !== size) throw new Error(`download answered ${r.status} with ${r.bytes} of ${size} bytes`);
  return r.ms;
}

async function diskRun(args: string[]): Promise<DiskResult> {
  const p = forkScript<DiskResult>('disk-child.ts', args);
  const r = await p.ready;
  await p.exited;
  return r;
}

// ---- autocannon (its own process)

interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { p50: number; p99: number; average: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  duration: number;
}

const autocannonBin = createRequire(import.meta.url).resolve('autocannon');

async function autocannon(url: string, headers: string[], durationS: number): Promise<AutocannonResult> {
  const args = [autocannonBin, '-c', String(S.connections), '-d', String(durationS), '-j', '-n', ...headers.flatMap((h) => ['-H', h]), url];
  const child = spawnTracked(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.on('data', (c: Buffer) => {
    out += c.toString('utf8');
  });
  child.stderr?.on('data', (c: Buffer) => {
    err += c.toString('utf8');
  });
  // 'close', not 'exit': it comes after stdout has been read to the end.
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`autocannon exited ${code}: ${err.trim()}`);
  const r = JSON.parse(out) as AutocannonResult;
  if (r.errors > 0 || r.timeouts > 0 || r.non2xx > 0) {
    throw new Error(`autocannon against ${url}: ${r.non2xx} non-2xx answers, ${r.errors} errors, ${r.timeouts} timeouts`);
  }
  return r;
}

// ---- RSS sampling

interface Sample {
  t: number;
  rss: number;
}

function startSampler(pid: number, everyMs: number): { samples: Sample[]; stop(): void } {
  const samples: Sample[] = [];
  const take = () => {
    const rss = readRss(pid);
    if (rss !== null) samples.push({ t: performance.now(), rss });
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    samples,
    stop: () => {
      clearInterval(timer);
      take();
    },
  };
}

/** Figures (a)-(c): artifact transfer, request rate, server memory. */
async function runTransfer() {
  const size = S.sizeMib * MiB;

  // (a) throughput ------------------------------------------------------------------
  const dataFile = join(tmp, 'artifact.bin');
  log(`writing a ${S.sizeMib} MiB test file`);
  await writeDataFile(dataFile, S.sizeMib);

  log('starting Modelkeep (child process) and building the fixture');
  const mk = await startModelkeep('data-a');
  const v1 = await newVersion(mk);
  const first = await uploadArtifact(mk, v1, 'model.bin', dataFile, size); // also the upload warm-up
  await expectOk(await mk.eng.post(`/v1/projects/fraud/models/churn/versions/${v1}/finalize`));
  const sha = first.artifact.sha256;
  const blobPath = join(mk.dataDir, 'blobs', 'sha256', sha.slice(0, 2), sha);
  const v2 = await newVersion(mk); // a draft that takes the measured uploads

  // The transport ceiling: the same blob over a bare node:http pipe (information only).
  const pipe = forkScript<ServerReady>('file-child.ts', [blobPath]);
  const pipeUrl = (await pipe.ready).url;
  const pipeDownload = async () => {
    const r = await download(pipeUrl, {});
    if (r.status !== 200 || r.bytes !== size) throw new Error(`bare pipe answered ${r.status} with ${r.bytes} of ${size} bytes`);
    return r.ms;
  };

  log('warming up the download path and the read baseline');
  await downloadArtifact(mk, v1, 'model.bin', size);
  await pipeDownload();
  await diskRun(['read', blobPath]);

  const runs = { download: [] as number[], barePipe: [] as number[], readDefault: [] as number[], read1M: [] as number[], upload: [] as number[], hashCopy: [] as number[] };
  const copyPath = join(tmp, 'copy.bin');
  for (let i = 1; i <= S.reps; i++) {
    log(`throughput round ${i}/${S.reps}`);
    // Interleaved, so a drift of the machine touches the product and its baseline alike.
    const rd = await diskRun(['read', blobPath]);
    runs.readDefault.push(mibPerSec(rd.bytes, rd.ms));
    const r1 = await diskRun(['read', blobPath, String(MiB)]);
    runs.read1M.push(mibPerSec(r1.bytes, r1.ms));
    runs.download.push(mibPerSec(size, await downloadArtifact(mk, v1, 'model.bin', size)));
    runs.barePipe.push(mibPerSec(size, await pipeDownload()));
    const hc = await diskRun(['hashcopy', dataFile, copyPath]);
    if (hc.sha256 !== sha) throw new Error('the baseline copy hashed differently from the upload');
    rmSync(copyPath, { force: true });
    runs.hashCopy.push(mibPerSec(hc.bytes, hc.ms));
    const up = await uploadArtifact(mk, v2, `up-${i}.bin`, dataFile, size);
    if (up.artifact.sha256 !== sha) throw new Error('the uploaded artifact hashed differently from the test file');
    runs.upload.push(mibPerSec(size, up.ms));
  }

  await pipe.stop();

  // (b) request rate ----------------------------------------------------------------
  log('starting the bare Fastify baseline (child process)');
  const bare = forkScript<ServerReady>('bare-child.ts', []);
  const bareReady = await bare.ready;
  const mkMetaUrl = `${mk.url}/v1/projects/fraud/models/churn`;
  const bareMetaUrl = `${bareReady.url}/v1/projects/fraud/models/churn`;
  const cookieHeader = [`cookie:${mk.eng.cookie ?? ''}`];
  // The route must answer 200 to the signed-in engineer before it is worth measuring.
  await expectOk(await mk.eng.get('/v1/projects/fraud/models/churn'));
  if (S.warmupS > 0) {
    log(`autocannon warm-up, ${S.warmupS} s per target`);
    await autocannon(mkMetaUrl, cookieHeader, S.warmupS);
    await autocannon(bareMetaUrl, [], S.warmupS);
  }
  const acMk: AutocannonResult[] = [];
  const acBare: AutocannonResult[] = [];
  for (let i = 1; i <= S.rounds; i++) {
    log(`autocannon round ${i}/${S.rounds}: ${S.connections} connections, ${S.durationS} s per target`);
    acMk.push(await autocannon(mkMetaUrl, cookieHeader, S.durationS));
    acBare.push(await autocannon(bareMetaUrl, [], S.durationS));
  }
  await bare.stop();
  await mk.proc.stop();
  rmSync(mk.dataDir, { recursive: true, force: true });
  rmSync(dataFile, { force: true });

  // (c) server RSS during a large upload -------------------------------------------
  const bigFile = join(tmp, 'big.bin');
  log(`writing a ${uploadMib} MiB test file`);
  await writeDataFile(bigFile, uploadMib);
  log('starting a fresh Modelkeep for the memory figure');
  const mk2 = await startModelkeep('data-c');
  const v = await newVersion(mk2);
  await sleep(500); // let the start-up settle
  const sampler = startSampler(mk2.pid, 50);
  await sleep(quick ? 500 : 1000); // idle samples: the baseline
  const uploadStart = performance.now();
  const hwmReset = resetHwm(mk2.pid);
  log(`uploading ${uploadMib} MiB while sampling the server's RSS every 50 ms`);
  const big = await uploadArtifact(mk2, v, 'big.bin', bigFile, uploadMib * MiB);
  sampler.stop();
  const hwm = hwmReset ? readHwm(mk2.pid) : null;
  await mk2.proc.stop();
  rmSync(bigFile, { force: true });

  const idle = sampler.samples.filter((s) => s.t < uploadStart);
  const during = sampler.samples.filter((s) => s.t >= uploadStart);
  const gaps = during.slice(1).map((s, i) => s.t - during[i]!.t);
  const rss = {
    baselineBytes: median(idle.map((s) => s.rss)),
    peakSampledBytes: Math.max(...during.map((s) => s.rss)),
    peakKernelBytes: hwm,
    samples: during.length,
    maxGapMs: gaps.length > 0 ? Math.max(...gaps) : null,
    uploadMibPerSec: mibPerSec(uploadMib * MiB, big.ms),
  };
  // The verdict uses the higher of the sampled peak and the kernel's high-water mark.
  const peak = Math.max(rss.peakSampledBytes, rss.peakKernelBytes ?? 0);
  const growth = peak - rss.baselineBytes;

  // ---- results
  const dl = median(runs.download);
  const rdDefault = median(runs.readDefault);
  const rd1M = median(runs.read1M);
  const barePipe = median(runs.barePipe);
  const up = median(runs.upload);
  const hcopy = median(runs.hashCopy);
  const rpsMk = median(acMk.map((r) => r.requests.average));
  const rpsBare = median(acBare.map((r) => r.requests.average));
  const results = {
    download: {
      mibPerSec: dl,
      runs: runs.download,
      baselineCreateReadStream: { mibPerSec: rdDefault, runs: runs.readDefault },
      baselineCreateReadStream1MiB: { mibPerSec: rd1M, runs: runs.read1M },
      bareNodeHttpPipe: { mibPerSec: barePipe, runs: runs.barePipe },
      ratio: dl / rdDefault,
      ratioVs1MiB: dl / rd1M,
      ratioVsBarePipe: dl / barePipe,
      goal: `>= ${GOALS.downloadRatio * 100} % of createReadStream (default options)`,
      pass: dl / rdDefault >= GOALS.downloadRatio,
    },
    upload: {
      mibPerSec: up,
      runs: runs.upload,
      baselineHashCopy: { mibPerSec: hcopy, runs: runs.hashCopy },
      ratio: up / hcopy,
      goal: `>= ${GOALS.uploadRatio * 100} % of read + sha256 + write + fsync`,
      pass: up / hcopy >= GOALS.uploadRatio,
    },
    metadataGet: {
      requestsPerSec: rpsMk,
      runs: acMk.map((r) => r.requests.average),
      latencyP50Ms: median(acMk.map((r) => r.latency.p50)),
      latencyP99Ms: median(acMk.map((r) => r.latency.p99)),
      baselineBareFastify: {
        requestsPerSec: rpsBare,
        runs: acBare.map((r) => r.requests.average),
        latencyP50Ms: median(acBare.map((r) => r.latency.p50)),
        latencyP99Ms: median(acBare.map((r) => r.latency.p99)),
      },
      ratio: rpsMk / rpsBare,
      goal: null,
      pass: null,
    },
    serverRss: {
      ...rss,
      peakBytes: peak,
      growthBytes: growth,
      goal: `growth < ${GOALS.rssGrowthMib} MiB`,
      pass: growth < GOALS.rssGrowthMib * MiB,
    },
  };

  const sz = `${S.sizeMib} MiB`;
  const med = `median of ${S.reps}`;
  const rows = [
    [`(a) Download ${sz}, ${med}`, fmt.mibs(dl), `createReadStream, default: ${fmt.mibs(rdDefault)}`, fmt.pct(dl / rdDefault), `>= ${GOALS.downloadRatio * 100} %`, verdict(results.download.pass)],
    ['    same download, other baselines', '', `createReadStream, 1 MiB hwm: ${fmt.mibs(rd1M)}`, fmt.pct(dl / rd1M), 'info', ''],
    ['', '', `bare node:http file pipe: ${fmt.mibs(barePipe)}`, fmt.pct(dl / barePipe), 'info', ''],
    [`(a) Upload ${sz}, ${med}`, fmt.mibs(up), `read+sha256+write+fsync: ${fmt.mibs(hcopy)}`, fmt.pct(up / hcopy), `>= ${GOALS.uploadRatio * 100} %`, verdict(results.upload.pass)],
    [
      `(b) Metadata GET (c=${S.connections}, ${S.durationS} s, median of ${S.rounds})`,
      fmt.rps(rpsMk),
      `bare Fastify: ${fmt.rps(rpsBare)}`,
      fmt.pct(rpsMk / rpsBare),
      'none set',
      'info',
    ],
    [
      `(c) Server RSS, ${uploadMib} MiB upload`,
      `+${fmt.mib(growth)} (peak ${fmt.mib(peak)})`,
      `idle: ${fmt.mib(rss.baselineBytes)}`,
      '',
      `growth < ${GOALS.rssGrowthMib} MiB`,
      verdict(results.serverRss.pass),
    ],
  ];
  const notes = [
    `runs (MiB/s): download ${fmt.list(runs.download)} | bare pipe ${fmt.list(runs.barePipe)} | createReadStream ${fmt.list(runs.readDefault)} | 1 MiB hwm ${fmt.list(runs.read1M)} | upload ${fmt.list(runs.upload)} | read+sha256+write ${fmt.list(runs.hashCopy)}`,
    `runs (req/s): Modelkeep ${fmt.list(results.metadataGet.runs)} (p50 ${results.metadataGet.latencyP50Ms} ms, p99 ${results.metadataGet.latencyP99Ms} ms) | bare Fastify ${fmt.list(results.metadataGet.baselineBareFastify.runs)} (p50 ${results.metadataGet.baselineBareFastify.latencyP50Ms} ms, p99 ${results.metadataGet.baselineBareFastify.latencyP99Ms} ms)`,
    `RSS: peak sampled ${fmt.mib(rss.peakSampledBytes)} over ${rss.samples} samples (max gap ${rss.maxGapMs?.toFixed(0) ?? '?'} ms), kernel VmHWM ${rss.peakKernelBytes === null ? 'n/a' : fmt.mib(rss.peakKernelBytes)}; that upload ran at ${fmt.mibs(rss.uploadMibPerSec)}`,
  ];
  return { results, rows, notes };
}

type TransferResults = Awaited<ReturnType<typeof runTransfer>>['results'];

// ---- the run

async function main() {
  const t0 = performance.now();
  const cores = cpus().length;
  log(`temp dir ${tmp}; node ${process.version}; ${cores} cores; --only ${only}`);
  const loadBefore = await machineLoad(1000, cores);
  if (loadBefore !== null && loadBefore > 0.2) log(`warning: other processes keep ${loadBefore.toFixed(2)} cores busy; the figures will be noisy`);

  const transfer: Section<TransferResults> | null = only === 'all' || only === 'transfer' ? await runTransfer() : null;
  const audit: Section<AuditResults> | null = only === 'all' || only === 'audit' ? await runAudit(A, tmp, log) : null;
  const authz: Section<AuthzResults> | null = only === 'all' || only === 'authz' ? await runAuthz(Z, tmp, log) : null;
  const authn: Section<AuthnResults> | null =
    only === 'all' || only === 'authn' ? await runAuthn(AU, tmp, log, { run: autocannon, durationS: S.durationS, warmupS: S.warmupS, rounds: S.rounds }) : null;

  const loadAfter = await machineLoad(1000, cores);
  const pgVersion = audit && !('skipped' in audit.results.appends.postgres) ? audit.results.appends.postgres.serverVersion : null;
  const results = {
    settings: { only, ...(transfer || authn ? { ...S, uploadMib } : {}), quick, ...(audit ? { audit: A } : {}), ...(authz ? { authz: Z } : {}), ...(authn ? { authn: AU } : {}) },
    environment: {
      node: process.version,
      cpus: cores,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      kernel: release(),
      database: 'sqlite',
      ...(audit ? { postgres: pgVersion } : {}),
    },
    // Cores kept busy by other processes in the second before and after the run (see README).
    otherLoadCores: { before: loadBefore, after: loadAfter },
    ...(transfer ? transfer.results : {}),
    ...(audit ? { audit: audit.results } : {}),
    ...(authz ? { authz: authz.results } : {}),
    ...(authn ? { authn: authn.results } : {}),
    elapsedSeconds: (performance.now() - t0) / 1000,
  };

  if (opt.json) {
    process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    return;
  }
  const load = (v: number | null) => (v === null ? '?' : v.toFixed(2));
  const db = pgVersion === null ? 'SQLite' : `SQLite, PostgreSQL ${pgVersion} for (d)`;
  const out = [
    table(['Figure', 'Modelkeep', 'Baseline', 'Ratio', 'Goal', 'Result'], [...(transfer?.rows ?? []), ...(audit?.rows ?? []), ...(authz?.rows ?? []), ...(authn?.rows ?? [])]),
    '',
    ...(transfer?.notes ?? []),
    ...(audit?.notes ?? []),
    ...(authz?.notes ?? []),
    ...(authn?.notes ?? []),
    `${results.environment.node}, ${results.environment.cpus} x ${results.environment.cpuModel}, Linux ${results.environment.kernel}, ${db}; other load ${load(loadBefore)} cores before, ${load(loadAfter)} after; ${results.elapsedSeconds.toFixed(0)} s${quick ? '; --quick: a smoke run, not a measurement' : ''}`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

try {
  await main();
} catch (err) {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  cleanupNow();
  process.exit(1); // a failed run may leave timers and sockets behind: do not wait for them
}
cleanupNow();

// `npm run soak [-- --minutes 10] [-- --workers 24] [-- --database-url postgres://…]`
//
// Drives the full stack — authentication, the Cedar guard, the audit log — at saturation
// for a fixed time with a mix of what people and machines really do: reads, downloads,
// uploads and finalizes, denied promotions, invisible projects, permission queries and
// fresh logins. The server runs in its own process (bench/server-child.ts). At the end it
// reports crashes (the server process exiting), 5xx answers, transport errors and answers
// that differ from what each request must get, then verifies the audit log offline with
// the real verifier. Exit code 0 only when all of those are zero and the log verifies.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { bootstrapUser } from '../src/main.ts';
import { Client, expectOk, json, PASSWORD, stepUpWithNewTotp } from '../test/helpers/server.ts';
import { cleanupNow, forkScript, onCleanup, type ServerReady } from './lib/proc.ts';

const HELP = `usage: npm run soak -- [options]
  --minutes N          how long to drive the server (default 10)
  --workers N          concurrent request loops (default 24)
  --database-url URL   run against PostgreSQL instead of the embedded SQLite
  --json               print the result as JSON
`;

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    workers: { type: 'string', default: '24' },
    'database-url': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opt.help) {
  process.stdout.write(HELP);
  process.exit(0);
}
const minutes = Number(opt.minutes);
const workers = Number(opt.workers);
if (!(minutes > 0) || !Number.isInteger(workers) || workers < 1) {
  process.stderr.write(`soak: --minutes must be positive and --workers a positive integer\n${HELP}`);
  process.exit(2);
}

const log = (m: string) => process.stderr.write(`soak: ${m}\n`);

interface Tally {
  requests: number;
  byKind: Map<string, number>;
  status5xx: number;
  transportErrors: number;
  unexpected: Map<string, number>;
  firstUnexpected: string[];
}
const tally: Tally = { requests: 0, byKind: new Map(), status5xx: 0, transportErrors: 0, unexpected: new Map(), firstUnexpected: [] };

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

const dataDir = mkdtempSync(join(tmpdir(), 'modelkeep-soak-'));
onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
const serverConfig = opt['database-url'] ? { databaseUrl: opt['database-url'] } : {};

await bootstrapUser({ dataDir, ...serverConfig }, { username: 'admin', password: PASSWORD, platformAdmin: true });
const server = forkScript<ServerReady>('server-child.ts', [dataDir, JSON.stringify(serverConfig)]);
const { url } = await server.ready;
let crashed: number | null | undefined;
void server.exited.then((code) => {
  crashed = code;
});
log(`server ${url} (pid ${server.pid}), ${opt['database-url'] ? 'PostgreSQL' : 'SQLite'}; setting up`);

// ---- the world: a project with people in each role, a model with finalized versions

const admin = new Client(url);
await expectOk(await admin.login('admin'));
// Admins must enroll a second factor, and granting roles needs a fresh one: through the API.
await stepUpWithNewTotp(admin);
await expectOk(await admin.post('/v1/projects', { name: 'fraud' }));
await expectOk(await admin.post('/v1/projects', { name: 'other' }));
const people = ['viewer', 'ml-engineer', 'release-manager', 'outsider'] as const;
for (const u of people) {
  await expectOk(await admin.post('/v1/admin/users', { username: u, password: PASSWORD }));
  if (u !== 'outsider') await expectOk(await admin.post('/v1/projects/fraud/bindings', { principal: `user:${u}`, role: u }));
}
const clients = new Map<string, Client>();
for (const u of people) {
  const c = new Client(url);
  await expectOk(await c.login(u));
  clients.set(u, c);
}
const eng = clients.get('ml-engineer') as Client;
await expectOk(await eng.post('/v1/projects/fraud/models', { name: 'churn' }));
const payload = new Uint8Array(64 * 1024).fill(7);
const versions: number[] = [];
for (let i = 0; i < 5; i++) {
  const v = await json<{ version: number }>(await expectOk(await eng.post('/v1/projects/fraud/models/churn/versions', {})));
  await expectOk(await eng.upload(`/v1/projects/fraud/models/churn/versions/${v.version}/artifacts/model.bin`, payload));
  await expectOk(await eng.post(`/v1/projects/fraud/models/churn/versions/${v.version}/finalize`));
  versions.push(v.version);
}

// ---- the mix: each request says what it must get

interface Step {
  kind: string;
  weight: number;
  run(): Promise<{ status: number; expected: readonly number[] }>;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
const viewer = clients.get('viewer') as Client;
const outsider = clients.get('outsider') as Client;
const release = clients.get('release-manager') as Client;

async function drain(r: Response): Promise<number> {
  await r.arrayBuffer();
  return r.status;
}

const steps: Step[] = [
  { kind: 'model metadata', weight: 30, run: async () => ({ status: await drain(await viewer.get('/v1/projects/fraud/models/churn')), expected: [200] }) },
  { kind: 'version list', weight: 10, run: async () => ({ status: await drain(await eng.get('/v1/projects/fraud/models/churn/versions')), expected: [200] }) },
  {
    kind: 'denied download',
    weight: 3,
    run: async () => ({ status: await drain(await viewer.get(`/v1/projects/fraud/models/churn/versions/${pick(versions)}/artifacts/model.bin`)), expected: [403] }),
  },
  {
    kind: 'download',
    weight: 15,
    run: async () => ({ status: await drain(await eng.get(`/v1/projects/fraud/models/churn/versions/${pick(versions)}/artifacts/model.bin`)), expected: [200] }),
  },
  {
    kind: 'invisible project',
    weight: 10,
    run: async () => ({ status: await drain(await outsider.get('/v1/projects/fraud/models/churn')), expected: [404] }),
  },
  {
    kind: 'denied promotion',
    weight: 8,
    run: async () => ({
      status: await drain(await viewer.post(`/v1/projects/fraud/models/churn/versions/${pick(versions)}/promote`, { stage: 'staging' })),
      expected: [403],
    }),
  },
  {
    kind: 'promotion to staging',
    weight: 4,
    run: async () => ({
      status: await drain(await release.post(`/v1/projects/fraud/models/churn/versions/${pick(versions)}/promote`, { stage: 'staging' })),
      // 409: that version is already in staging — the answer a repeated promotion must get.
      expected: [200, 409],
    }),
  },
  {
    kind: 'upload + finalize',
    weight: 4,
    run: async () => {
      const r = await eng.post('/v1/projects/fraud/models/churn/versions', {});
      if (r.status !== 201 && r.status !== 200) return { status: await drain(r), expected: [201] };
      const v = await json<{ version: number }>(r);
      const u = await drain(await eng.upload(`/v1/projects/fraud/models/churn/versions/${v.version}/artifacts/model.bin`, payload));
      if (u >= 300) return { status: u, expected: [200, 201] };
      return { status: await drain(await eng.post(`/v1/projects/fraud/models/churn/versions/${v.version}/finalize`)), expected: [200] };
    },
  },
  { kind: 'no credentials', weight: 5, run: async () => ({ status: await drain(await fetch(`${url}/v1/projects/fraud/models/churn`)), expected: [401] }) },
  {
    kind: 'fresh login',
    weight: 1,
    run: async () => ({ status: await drain(await new Client(url).login('viewer')), expected: [200] }),
  },
];
const totalWeight = steps.reduce((s, x) => s + x.weight, 0);
function choose(): Step {
  let r = Math.random() * totalWeight;
  for (const s of steps) {
    r -= s.weight;
    if (r < 0) return s;
  }
  return steps[0] as Step;
}

const deadline = Date.now() + minutes * 60_000;
async function loop(): Promise<void> {
  while (Date.now() < deadline && crashed === undefined) {
    const step = choose();
    tally.requests++;
    bump(tally.byKind, step.kind);
    try {
      const { status, expected } = await step.run();
      if (status >= 500) tally.status5xx++;
      if (!expected.includes(status)) {
        bump(tally.unexpected, `${step.kind} → ${status}`);
        if (tally.firstUnexpected.length < 5) tally.firstUnexpected.push(`${step.kind}: ${status} (expected ${expected.join('/')})`);
      }
    } catch (err) {
      tally.transportErrors++;
      if (tally.firstUnexpected.length < 5) tally.firstUnexpected.push(`${step.kind}: ${(err as Error).message}`);
    }
  }
}

log(`driving ${workers} loops for ${minutes} min`);
const started = Date.now();
const ticker = setInterval(() => {
  const s = (Date.now() - started) / 1000;
  log(`${s.toFixed(0)} s: ${tally.requests} requests (${(tally.requests / s).toFixed(0)}/s), 5xx ${tally.status5xx}, transport errors ${tally.transportErrors}`);
}, 30_000);
await Promise.all(Array.from({ length: workers }, () => loop()));
clearInterval(ticker);
const seconds = (Date.now() - started) / 1000;
const serverCrashed = crashed !== undefined;
await server.stop();

log('verifying the audit log offline with the real verifier');
const verify = spawnSync(
  process.execPath,
  [join(import.meta.dirname, '..', 'src', 'cli', 'main.ts'), 'audit', 'verify', ...(opt['database-url'] ? ['--database-url', opt['database-url']] : ['--data-dir', dataDir])],
  { encoding: 'utf8' },
);
const logVerified = verify.status === 0;

const unexpected = [...tally.unexpected.values()].reduce((a, b) => a + b, 0);
const result = {
  minutes,
  workers,
  seconds: Math.round(seconds),
  requests: tally.requests,
  requestsPerSecond: Math.round(tally.requests / seconds),
  crashes: serverCrashed ? 1 : 0,
  status5xx: tally.status5xx,
  transportErrors: tally.transportErrors,
  unexpected,
  unexpectedByKind: Object.fromEntries(tally.unexpected),
  byKind: Object.fromEntries(tally.byKind),
  firstProblems: tally.firstUnexpected,
  auditLogVerified: logVerified,
  verifierOutput: (verify.stdout + verify.stderr).trim().split('\n').slice(-3).join(' | '),
};
if (opt.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
else {
  const lines = [
    `soak: ${result.requests} requests in ${result.seconds} s (${result.requestsPerSecond}/s) with ${workers} loops`,
    `  crashes ${result.crashes}, 5xx ${result.status5xx}, transport errors ${result.transportErrors}, unexpected answers ${unexpected}`,
    `  audit log verifies: ${logVerified ? 'yes' : 'NO'} (${result.verifierOutput})`,
    ...Object.entries(result.byKind).map(([k, n]) => `  ${k.padEnd(22)} ${n}`),
    ...result.firstProblems.map((p) => `  problem: ${p}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
cleanupNow();
process.exit(result.crashes === 0 && result.status5xx === 0 && result.transportErrors === 0 && unexpected === 0 && logVerified ? 0 : 1);

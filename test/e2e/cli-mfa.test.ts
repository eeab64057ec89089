// End-to-end: `modelkeep mfa enroll|status|step-up` and `login --totp-code`, the real binary
// against a real server (SQLite, mandatory MFA for admins at its default). No terminal here,
// so every code goes through --code / --totp-code. The server's clock is real time plus an
// offset that the test moves into a fresh 30 s TOTP step before each code (codes are single-use
// per step), instead of waiting for the next one.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Secret, TOTP } from 'otpauth';
import { bootstrapUser, type RunningServer, startServer } from '../../src/main.ts';
import { cleanEnv, expectExit, type Run, runBin } from '../helpers/cli.ts';

const ADMIN = { username: 'root', password: 'root-password-for-tests' };
const STEP_MS = 30_000;

let root = '';
let server: RunningServer | null = null;
let offset = 0;
const clock = { now: () => new Date(Date.now() + offset) };
const transcript: string[] = [];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'modelkeep-cli-mfa-'));
  await bootstrapUser({ dataDir: join(root, 'data') }, { ...ADMIN, platformAdmin: true });
  server = await startServer({ dataDir: join(root, 'data'), port: 0, logLevel: 'silent' }, { clock });
});

after(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function cli(args: string[], opts: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env = cleanEnv({ MODELKEEP_CONFIG_DIR: join(root, 'config'), MODELKEEP_SERVER: server?.url, ...opts.env });
  const r = await runBin(args, { env, cwd: root, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  transcript.push(r.stdout, r.stderr);
  return r;
}


let lastStep = -1;
/** Moves the server's clock 1 s into a step after every step used so far; the code for it. */
function nextCode(secret: string): string {
  const step = Math.max(lastStep + 1, Math.floor(clock.now().getTime() / STEP_MS) + 1);
  offset += step * STEP_MS + 1000 - clock.now().getTime();
  lastStep = step;
  return codeAt(secret, clock.now().getTime());
}
function codeAt(secret: string, at: number): string {
  return new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate({ timestamp: at });
}

interface SavedSession {
  session: string;
  csrfToken: string;
  cookieName: string;
}
async function saved(): Promise<SavedSession> {
  const file = join(root, 'config', 'credentials.json');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const all = JSON.parse(await readFile(file, 'utf8')) as { servers: Record<string, SavedSession> };
  const s = all.servers[server?.url ?? ''];
  assert.ok(s);
  return s;
}

test('enroll without a terminal, --code to finish, status, step-up saves the rotated session, login --totp-code', { timeout: 120_000 }, async () => {
  const login = await cli(['login', '--username', ADMIN.username, '--password-stdin'], { input: `${ADMIN.password}\n` });
  expectExit(login, 0, 'password login');
  assert.match(login.stderr, /must set up a second factor .*run `modelkeep mfa enroll`/);

  // Until enrollment, everything else is refused, with the CLI's way out.
  const refused = await cli(['projects', 'list']);
  expectExit(refused, 4, 'before enrollment');
  assert.match(refused.stderr, /^hint: run `modelkeep mfa enroll`/m);
  const before = JSON.parse((await cli(['mfa', 'status', '--json'])).stdout) as Record<string, unknown>;
  assert.deepEqual(before, { totp: false, recoveryCodesLeft: 0, factors: 0, enrollmentRequired: true });

  // --code confirms a pending enrollment only: there is none yet.
  const early = await cli(['mfa', 'enroll', '--code', '123456']);
  expectExit(early, 2, '--code without a pending enrollment');
  assert.match(early.stderr, /^hint: .*`modelkeep mfa enroll` \(run that first\)/m);
  expectExit(await cli(['mfa', 'enroll', '--code', '12ab56']), 2, 'not digits');

  // No terminal: the secret, then exit 2 with the way to finish.
  const first = await cli(['mfa', 'enroll']);
  expectExit(first, 2, 'enroll without a terminal');
  const firstSecret = /^ {2}secret: +([A-Z2-7]+)$/m.exec(first.stdout)?.[1];
  assert.ok(firstSecret, first.stdout);
  assert.match(first.stdout, /^ {2}link: +otpauth:\/\/totp\/Modelkeep:root\?/m);
  assert.match(first.stderr, /^modelkeep: no terminal to type the code in/m);
  assert.match(first.stderr, /^hint: .*then run `modelkeep mfa enroll --code CODE`/m);
  // Starting again replaces the pending secret; --json prints the server's answer.
  const second = await cli(['mfa', 'enroll', '--json']);
  expectExit(second, 2, 'enroll --json without a terminal');
  const begun = JSON.parse(second.stdout) as { secret: string; otpauthUrl: string };
  assert.notEqual(begun.secret, firstSecret);
  assert.match(begun.otpauthUrl, /^otpauth:\/\/totp\//);
  const stale = await cli(['mfa', 'enroll', '--code', codeAt(firstSecret, clock.now().getTime())]);
  expectExit(stale, 2, 'a code of the replaced secret');
  assert.match(stale.stderr, /^modelkeep: the code is not valid/m);

  const done = await cli(['mfa', 'enroll', '--code', nextCode(begun.secret)]);
  expectExit(done, 0, 'enroll --code');
  const recovery = [...done.stdout.matchAll(/^ {2}([a-z2-7]{4}(?:-[a-z2-7]{4}){3})$/gm)].map((m) => m[1]);
  assert.equal(recovery.length, 10);
  assert.match(done.stderr, /store the recovery codes now.*shown only this once/);
  expectExit(await cli(['mfa', 'enroll']), 6, 'an app is already set up');
  const status = await cli(['mfa', 'status']);
  expectExit(status, 0, 'status');
  assert.match(status.stdout, /^authenticator app: +yes$/m);
  assert.match(status.stdout, /^recovery codes left: +10$/m);
  assert.match(status.stdout, /^enrollment required: +no$/m);

  // Enrolled, but granting a role still needs a recent second factor.
  expectExit(await cli(['projects', 'create', 'fraud']), 0, 'projects create');
  expectExit(await cli(['users', 'create', 'dana', '--password-stdin'], { input: 'dana-password-for-tests\n' }), 0, 'users create');
  const grant = ['bindings', 'add', '--project', 'fraud', '--user', 'dana', '--role', 'viewer'];
  const notYet = await cli(grant);
  expectExit(notYet, 4, 'bindings add without a fresh factor');
  assert.match(notYet.stderr, /^hint: .*`modelkeep mfa step-up` for a password login/m);

  // Step-up: bad input and spent codes first.
  expectExit(await cli(['mfa', 'step-up']), 2, 'step-up without a terminal or --code');
  const spent = await cli(['mfa', 'step-up', '--code', codeAt(begun.secret, clock.now().getTime())]);
  expectExit(spent, 3, 'the enrollment code again');
  expectExit(await cli(['mfa', 'step-up', '--code', '000000'], { env: { MODELKEEP_TOKEN: 'mkp_x' } }), 2, 'MODELKEEP_TOKEN');
  const old = await saved();
  const stepped = await cli(['mfa', 'step-up', '--json', '--code', nextCode(begun.secret)]);
  expectExit(stepped, 0, 'step-up');
  const answer = JSON.parse(stepped.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(answer).sort(), ['mfaAt', 'status']);
  const fresh = await saved();
  assert.notEqual(fresh.session, old.session, 'the rotated session is saved');
  assert.notEqual(fresh.csrfToken, old.csrfToken, 'with its new CSRF token');
  const dead = await fetch(`${server?.url}/v1/me`, { headers: { cookie: `${old.cookieName}=${old.session}` } });
  assert.equal(dead.status, 401, 'the old session is over');
  expectExit(await cli(grant), 0, 'bindings add after the step-up (new cookie and CSRF token work)');

  // Signing in now takes the code too.
  expectExit(await cli(['logout']), 0, 'logout');
  const noCode = await cli(['login', '--username', ADMIN.username, '--password-stdin'], { input: `${ADMIN.password}\n` });
  expectExit(noCode, 2, 'login without --totp-code and without a terminal');
  assert.match(noCode.stderr, /^hint: pass --totp-code CODE/m);
  const wrong = await cli(['login', '--username', ADMIN.username, '--password-stdin', '--totp-code', '000000'], { input: `${ADMIN.password}\n` });
  expectExit(wrong, 3, 'a wrong code');
  const ok = await cli(['login', '--username', ADMIN.username, '--password-stdin', '--totp-code', nextCode(begun.secret)], { input: `${ADMIN.password}\n` });
  expectExit(ok, 0, 'login --totp-code');
  const me = JSON.parse((await cli(['whoami', '--json'])).stdout) as { session: { amr: string[]; mfaAt: string | null } };
  assert.ok(me.session.amr.includes('mfa') && me.session.mfaAt !== null, 'a two-factor session');

  // The secret and the recovery codes were printed where asked only; session secrets never.
  const all = transcript.join('\n');
  assert.equal(all.split(begun.secret).length - 1, 2, 'the --json enrollment answer: secret and link');
  for (const c of recovery) assert.equal(all.split(c ?? '').length - 1, 1);
  for (const s of [old, fresh, await saved()]) assert.ok(!all.includes(s.session) && !all.includes(s.csrfToken));
});

// The README's "Five-minute walkthrough", run as pasted: every line of its ```sh blocks goes
// to bash, one by one, in a fresh folder whose ./bin points at this checkout's bin/, against
// a real server started here (SQLite, default configuration: mandatory MFA for admins on).
// Each line must exit as the README says (0, or the code its comment names).
//
// Only what a person does with their hands is substituted:
// - the 6-digit codes read off the authenticator app: the README writes them as the
//   placeholder `--code 123456` / `--totp-code 123456`; the test computes each with otpauth
//   from the secret that `mfa enroll` printed;
// - typing the code at `mfa enroll`'s prompt: bash gives it no terminal, so it stops after
//   printing the secret (exit 2), and the test runs the `mfa enroll --code CODE` the README
//   names for that case;
// - the server address: the test server listens on a free port instead of 7470.
// Each code works once per 30 s step, and a person waits for the app's next code. Instead of
// waiting, the server's clock (real time plus an offset) is moved into the next step before
// each code; the code is computed for that step, well inside the ±1 step window.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import { type RunningServer, startServer } from '../../src/main.ts';
import { cleanEnv, type Run, run } from '../helpers/cli.ts';

const CHECKOUT = fileURLToPath(new URL('../..', import.meta.url));
const PLACEHOLDER = /--(code|totp-code) 123456\b/;
const README_PORT_URL = 'http://127.0.0.1:7470';
const STEP_MS = 30_000;

let root = '';
let server: RunningServer | null = null;
let offset = 0;
const clock = { now: () => new Date(Date.now() + offset) };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'modelkeep-readme-'));
  await symlink(join(CHECKOUT, 'bin'), join(root, 'bin'));
  // `npm start` in the folder: data in ./data, every setting at its default.
  server = await startServer({ dataDir: join(root, 'data'), port: 0, logLevel: 'silent' }, { clock });
});

after(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

function bash(line: string): Promise<Run> {
  const env = cleanEnv({
    // the Node running this test (>= 22.13) first on PATH, as on a machine with a current Node
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}`,
    MODELKEEP_CONFIG_DIR: join(root, 'config'),
    MODELKEEP_SERVER: server?.url,
  });
  delete env.MODELKEEP_ALLOW_INSECURE_HTTP;
  return run('bash', ['-c', line], { env, cwd: root });
}

/** The ```sh blocks of the walkthrough section, dedented, as lists of non-empty lines. */
function walkthroughBlocks(readme: string): string[][] {
  const start = readme.indexOf('## Five-minute walkthrough');
  assert.ok(start >= 0, 'README has a "Five-minute walkthrough" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const blocks = [...section.matchAll(/^( *)```sh\n([\s\S]*?)^\1```$/gm)].map((m) => {
    const indent = m[1] ?? '';
    return (m[2] ?? '')
      .split('\n')
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .filter((l) => l.trim() !== '');
  });
  for (const b of blocks) for (const l of b) assert.ok(!l.endsWith('\\'), `one command per line: ${l}`);
  return blocks;
}

/** The exit code the README promises for a line: `# exit code N` in its comment, else 0. */
function expectedExit(line: string): number {
  const m = /#.*\bexit code (\d+)/.exec(line);
  return m ? Number(m[1]) : 0;
}

let secret: string | null = null;
let lastStep = -1;

/** Moves the server's clock 1 s into a TOTP step after every step used so far; its code. */
function nextCode(): string {
  assert.ok(secret, 'a code is needed before `mfa enroll` printed a secret');
  const step = Math.max(lastStep + 1, Math.floor(clock.now().getTime() / STEP_MS) + 1);
  offset += step * STEP_MS + 1000 - clock.now().getTime();
  lastStep = step;
  return new TOTP({ algorithm: 'SHA1', digits: 6, period: 30, secret: Secret.fromBase32(secret) }).generate({ timestamp: clock.now().getTime() });
}

function check(r: Run, want: number, line: string): void {
  assert.equal(r.code, want, `\`${line}\`: expected exit ${want}, got ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

test('the README walkthrough works as pasted, with codes from an authenticator app', { timeout: 300_000 }, async () => {
  const readme = await readFile(join(CHECKOUT, 'README.md'), 'utf8');
  const blocks = walkthroughBlocks(readme);
  const lines = blocks.flat();
  assert.ok(blocks.length >= 6, 'six steps or more');
  assert.match(readme, /`mfa enroll --code CODE`/, 'the README names the no-terminal way to finish the enrollment');
  assert.equal(lines.filter((l) => PLACEHOLDER.test(l)).length, 2, 'two codes typed from the app: the step-up and the second admin sign-in');
  assert.equal(lines.filter((l) => /mfa enroll\s*$/.test(l)).length, 1, 'one enrollment');

  const transcript: string[] = [];
  const seen: string[] = [];
  let recoveryCodes: string[] = [];
  for (const original of lines) {
    const line = original.replaceAll(README_PORT_URL, server?.url ?? '');
    if (/mfa enroll\s*$/.test(line)) {
      // A person types the code at the prompt; without a terminal the command stops after the secret.
      const begun = await bash(line);
      transcript.push(begun.stdout, begun.stderr);
      check(begun, 2, line);
      assert.match(begun.stderr, /^hint: .*`modelkeep mfa enroll --code CODE`/m);
      const m = /^ *secret: +([A-Z2-7]+=*)$/m.exec(begun.stdout);
      assert.ok(m?.[1], `mfa enroll printed the secret:\n${begun.stdout}`);
      secret = m[1];
      assert.match(begun.stdout, /^ *link: +otpauth:\/\/totp\/Modelkeep:admin\?.*secret=/m);
      const finish = `${line} --code ${nextCode()}`;
      const confirmed = await bash(finish);
      transcript.push(confirmed.stdout, confirmed.stderr);
      check(confirmed, 0, finish);
      recoveryCodes = [...confirmed.stdout.matchAll(/^ {2}([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})$/gm)].map((x) => x[1] ?? '');
      assert.equal(recoveryCodes.length, 10, `ten recovery codes:\n${confirmed.stdout}`);
      assert.match(confirmed.stderr, /shown only this once/);
      seen.push('enroll');
      continue;
    }
    const command = line.replace(PLACEHOLDER, (_all, flag: string) => `--${flag} ${nextCode()}`);
    const r = await bash(command);
    transcript.push(r.stdout, r.stderr);
    check(r, expectedExit(line), line);
    if (/modelkeep login --username admin/.test(line) && seen.length === 0) {
      assert.match(r.stderr, /must set up a second factor .*`modelkeep mfa enroll`/, 'login tells the admin to enroll');
    }
    if (/mfa step-up/.test(line)) {
      assert.match(r.stdout, /^second factor confirmed at /);
      seen.push('step-up');
    }
    if (/bindings add/.test(line)) seen.push('binding');
    if (/promote .* --to production/.test(line)) {
      assert.match(r.stderr, /^modelkeep: not allowed: this action needs the release-manager role in project fraud/m);
      seen.push('refused');
    }
    if (/^cmp /.test(line)) assert.equal(r.stdout, 'identical\n');
    if (/--totp-code/.test(line)) seen.push('totp login');
    if (/audit events/.test(line)) {
      for (const action of ['auth.mfa_enrolled', 'auth.step_up', 'binding.create', 'version.promote']) assert.match(r.stdout, new RegExp(action.replace('.', '\\.')));
      seen.push('audit');
    }
    if (/audit verify/.test(line)) seen.push('verified');
  }
  assert.deepEqual(seen, ['enroll', 'step-up', 'binding', 'refused', 'totp login', 'audit', 'verified']);

  // The secret appears where the user asked for it (enroll) and nowhere else; the recovery
  // codes only in the confirmation; session secrets never.
  const all = transcript.join('\n');
  assert.equal(all.split(secret ?? '').length - 1, 2, 'the secret: in the secret line and inside the otpauth link, once each');
  for (const c of recoveryCodes) assert.equal(all.split(c).length - 1, 1);
  const saved = JSON.parse(await readFile(join(root, 'config', 'credentials.json'), 'utf8')) as { servers: Record<string, { session: string; csrfToken: string }> };
  for (const s of Object.values(saved.servers)) {
    assert.ok(!all.includes(s.session) && !all.includes(s.csrfToken), 'no session secret or CSRF token in any output');
  }
});

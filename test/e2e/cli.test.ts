// End-to-end: the real `bin/modelkeep` binary, run as a child process, against a real
// server started in this process on a loopback port with a temporary SQLite data dir.
// Every CLI run is asynchronous: the server answers from this same event loop.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve, sep } from 'node:path';
import { after, before, test } from 'node:test';
import { ensureParentDirs, resolveOutputPath } from '../../src/cli/safe-output-path.ts';
import { bootstrapUser, type RunningServer, startServer } from '../../src/main.ts';
import { BIN, cleanEnv, expectExit, type Run, runBin } from '../helpers/cli.ts';
import { markMfa } from '../helpers/server.ts';



let root = '';
let dataDir = '';
let server: RunningServer | null = null;
/** Every byte any CLI run printed: searched for secrets at the end. */
const transcript: string[] = [];

function configDir(user: string): string {
  return join(root, `config-${user}`);
}

async function cli(args: string[], opts: { as?: string; input?: string; cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const env = cleanEnv({ MODELKEEP_CONFIG_DIR: configDir(opts.as ?? 'nobody'), MODELKEEP_SERVER: server?.url, ...opts.env });
  const r = await runBin(args, { env, cwd: opts.cwd ?? root, ...(opts.input !== undefined ? { input: opts.input } : {}) });
  transcript.push(r.stdout, r.stderr);
  return r;
}

async function login(user: string, password: string): Promise<void> {
  const r = await cli(['login', '--username', user, '--password-stdin'], { as: user, input: `${password}\n` });
  expectExit(r, 0, `login ${user}`);
  // Granting roles needs a fresh second factor; the fixture marks the CLI session as having
  // passed one (the CLI's own TOTP and device step-up paths are tested in cli-2 and device-login).
  if (user === ADMIN.username && server) await markMfa(server, user);
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

const ADMIN = { username: 'root', password: 'root-password-for-tests' };
const BOB = { username: 'bob', password: 'bob-password-for-tests' };
const CAROL = { username: 'carol', password: 'carol-password-for-tests' };
const DANA = { username: 'dana', password: 'dana-password-for-tests' };

let modelDir = '';
const localFiles = new Map<string, Buffer>();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'modelkeep-cli-e2e-'));
  dataDir = join(root, 'data');
  await bootstrapUser({ dataDir }, { ...ADMIN, platformAdmin: true });

  // a model folder: nested files, one of ~5 MiB, one empty
  modelDir = join(root, 'model');
  localFiles.set('weights.bin', randomBytes(5 * 1024 * 1024 + 123));
  localFiles.set('config.json', Buffer.from('{"layers":12}\n'));
  localFiles.set('tokenizer/vocab.txt', Buffer.from('a\nb\nc\n'));
  localFiles.set('tokenizer/merges/v1.txt', Buffer.from('x y\n'));
  localFiles.set('empty.txt', Buffer.alloc(0));
  for (const [p, bytes] of localFiles) {
    const file = join(modelDir, ...p.split('/'));
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, bytes);
  }
});

after(async () => {
  await server?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

test('admin create-user works offline on the data dir, before the server starts', async () => {
  const r = await cli(['admin', 'create-user', '--data-dir', dataDir, '--username', DANA.username, '--password-stdin'], {
    input: `${DANA.password}\n`,
  });
  expectExit(r, 0, 'admin create-user');
  assert.match(r.stdout, /created user dana \(usr_/);
  assert.ok(!r.stdout.includes(DANA.password) && !r.stderr.includes(DANA.password), 'the password is never echoed');

  const empty = await cli(['admin', 'create-user', '--data-dir', dataDir, '--username', 'eve', '--password-stdin'], { input: '\n' });
  expectExit(empty, 2, 'empty password');
  assert.match(empty.stderr, /^modelkeep: the password is empty\n/);

  // The CLI signs in with a password only: mandatory MFA for admins is tested in test/http/mfa.test.ts.
  server = await startServer({ dataDir, port: 0, logLevel: 'silent', mfa: { requiredForAdmins: false } });
});

test('help, version and usage errors', async () => {
  const help = await cli(['--help']);
  expectExit(help, 0, '--help');
  for (const word of ['push', 'pull', 'promote', 'access', 'versions create', 'bindings add', 'audit events', 'Exit codes', '6  conflict']) {
    assert.ok(help.stdout.includes(word), `top-level help mentions ${word}`);
  }
  const cmdHelp = await cli(['push', '--help']);
  expectExit(cmdHelp, 0, 'push --help');
  assert.match(cmdHelp.stdout, /Usage: modelkeep push <dir\|file> --project P --model M/);
  assert.match(cmdHelp.stdout, /Example:\n {2}modelkeep push /);

  const version = await cli(['--version']);
  expectExit(version, 0, '--version');
  assert.match(version.stdout, /^modelkeep \d+\.\d+\.\d+/);

  expectExit(await cli(['frobnicate']), 2, 'unknown command');
  expectExit(await cli(['projects', 'list', '--no-such-flag']), 2, 'unknown flag');
  expectExit(await cli(['projects']), 2, 'group without subcommand');
  const notLoggedIn = await cli(['projects', 'list']);
  expectExit(notLoggedIn, 3, 'not logged in');
  assert.match(notLoggedIn.stderr, /^modelkeep: not logged in to http:\/\/127\.0\.0\.1:\d+\nhint: run `modelkeep login/);
});

test('login, whoami, wrong password', async () => {
  const wrong = await cli(['login', '--username', ADMIN.username, '--password-stdin'], { as: 'root', input: 'not-the-password\n' });
  expectExit(wrong, 3, 'wrong password');
  assert.match(wrong.stderr, /^modelkeep: .+\n/);
  assert.equal(wrong.stderr.split('\n').filter(Boolean).length <= 2, true, 'one error line (+ hint)');

  await login(ADMIN.username, ADMIN.password);
  const dir = configDir('root');
  assert.equal((await stat(dir)).mode & 0o777, 0o700, 'config dir is 0700');
  assert.equal((await stat(join(dir, 'credentials.json'))).mode & 0o777, 0o600, 'credentials file is 0600');
  assert.deepEqual(
    (await readdir(dir)).filter((f) => f !== 'credentials.json'),
    [],
    'no temporary file left behind',
  );

  const who = await cli(['whoami'], { as: 'root' });
  expectExit(who, 0, 'whoami');
  assert.match(who.stdout, /^user: +root$/m);
  const whoJson = JSON.parse((await cli(['whoami', '--json'], { as: 'root' })).stdout) as { user: { username: string } };
  assert.equal(whoJson.user.username, 'root');
});

test('users, projects and bindings', async () => {
  for (const u of [BOB, CAROL]) {
    const r = await cli(['users', 'create', u.username, '--password-stdin'], { as: 'root', input: `${u.password}\n` });
    expectExit(r, 0, `users create ${u.username}`);
  }
  const users = JSON.parse((await cli(['users', 'list', '--json'], { as: 'root' })).stdout) as { users: { username: string }[] };
  assert.deepEqual(users.users.map((u) => u.username).sort(), ['bob', 'carol', 'dana', 'root']);

  expectExit(await cli(['projects', 'create', 'fraud', '--description', 'Fraud models'], { as: 'root' }), 0, 'projects create');
  expectExit(await cli(['projects', 'create', 'fraud'], { as: 'root' }), 6, 'duplicate project');
  const bad = await cli(['projects', 'create', 'Bad_Name'], { as: 'root' });
  expectExit(bad, 2, 'bad project name');
  assert.match(bad.stderr, /invalid project name/);

  const list = await cli(['projects', 'list'], { as: 'root' });
  expectExit(list, 0, 'projects list');
  assert.match(list.stdout, /^NAME +CREATED +DESCRIPTION\nfraud +\S+ +Fraud models\n$/);
  const listJson = JSON.parse((await cli(['projects', 'list', '--json'], { as: 'root' })).stdout) as { projects: { name: string }[] };
  assert.deepEqual(
    listJson.projects.map((p) => p.name),
    ['fraud'],
  );

  for (const [user, role] of [
    ['bob', 'ml-engineer'],
    ['bob', 'release-manager'],
    ['carol', 'viewer'],
  ] as const) {
    const r = await cli(['bindings', 'add', '--project', 'fraud', '--user', user, '--role', role], { as: 'root' });
    expectExit(r, 0, `bindings add ${user} ${role}`);
  }
  const bindings = JSON.parse((await cli(['bindings', 'list', '--project', 'fraud', '--json'], { as: 'root' })).stdout) as {
    bindings: { principal: string; role: string }[];
  };
  assert.deepEqual(bindings.bindings.map((b) => `${b.principal}=${b.role}`).sort(), [
    'user:bob=ml-engineer',
    'user:bob=release-manager',
    'user:carol=viewer',
  ]);
  const table = await cli(['bindings', 'list', '--project', 'fraud'], { as: 'root' });
  assert.match(table.stdout, /^ID +PRINCIPAL +ROLE +EXPIRES +STATUS\n/);
});

test('models create, list, show; unknown model is exit 5', async () => {
  await login(BOB.username, BOB.password);
  await login(CAROL.username, CAROL.password);
  expectExit(await cli(['models', 'create', 'churn', '--project', 'fraud', '--description', 'churn model'], { as: 'bob' }), 0, 'models create');
  const models = JSON.parse((await cli(['models', 'list', '--project', 'fraud', '--json'], { as: 'bob' })).stdout) as {
    models: { name: string; sensitivity: string }[];
  };
  assert.deepEqual(
    models.models.map((m) => [m.name, m.sensitivity]),
    [['churn', 'internal']],
  );
  const show = await cli(['models', 'show', 'fraud/churn'], { as: 'bob' });
  expectExit(show, 0, 'models show');
  assert.match(show.stdout, /^model: +fraud\/churn$/m);

  const missing = await cli(['models', 'show', 'fraud/no-such-model'], { as: 'bob' });
  expectExit(missing, 5, 'unknown model');
  assert.match(missing.stderr, /^modelkeep: .*not found/);
  expectExit(await cli(['versions', 'list', 'fraud/no-such-model'], { as: 'carol' }), 5, 'unknown model (viewer)');
  expectExit(await cli(['models', 'show', 'fraud/Bad'], { as: 'bob' }), 2, 'bad model name');
});

test('push a folder with nested files, then pull it back by number and by stage', async () => {
  const pushed = await cli(['push', modelDir, '--project', 'fraud', '--model', 'churn', '--description', 'first'], { as: 'bob' });
  expectExit(pushed, 0, 'push');
  assert.equal(pushed.stdout, '1\n', 'push prints the version number');
  // stderr is not a TTY here: one line per file
  for (const p of localFiles.keys()) assert.match(pushed.stderr, new RegExp(`^uploaded ${p.replace('.', '\\.')} \\(`, 'm'));

  const shown = JSON.parse((await cli(['versions', 'show', 'fraud/churn@1', '--json'], { as: 'bob' })).stdout) as {
    version: number;
    state: string;
    artifacts: { path: string; size: number; sha256: string }[];
  };
  assert.equal(shown.state, 'ready');
  assert.deepEqual(
    shown.artifacts.map((a) => [a.path, a.size, a.sha256]).sort(),
    [...localFiles].map(([p, b]) => [p, b.length, sha256(b)]).sort(),
    'the server holds every file with the digest computed here',
  );

  const out = join(root, 'pulled-1');
  const pulled = await cli(['pull', 'fraud/churn@1', '--out', out], { as: 'bob' });
  expectExit(pulled, 0, 'pull @1');
  for (const [p, bytes] of localFiles) {
    assert.ok((await readFile(join(out, ...p.split('/')))).equals(bytes), `${p} pulled byte for byte`);
  }
  assert.deepEqual(
    (await readdir(out)).filter((f) => f.endsWith('.part')),
    [],
    'no temporary file left behind',
  );

  expectExit(await cli(['pull', 'fraud/churn@staging'], { as: 'bob' }), 5, 'nothing in staging yet');
  const promoted = await cli(['promote', 'fraud/churn@1', '--to', 'staging'], { as: 'bob' });
  expectExit(promoted, 0, 'promote');
  const list = await cli(['versions', 'list', 'fraud/churn'], { as: 'bob' });
  assert.match(list.stdout, /^1 +ready +staging +/m);

  const cwd = join(root, 'cwd');
  await mkdir(cwd);
  const byStage = await cli(['pull', 'fraud/churn@staging', '--json'], { as: 'bob', cwd });
  expectExit(byStage, 0, 'pull @staging');
  const summary = JSON.parse(byStage.stdout) as { version: number; out: string };
  assert.equal(summary.version, 1);
  assert.equal(summary.out, join(cwd, 'fraud-churn-v1'), 'default --out is ./P-M-vN');
  for (const [p, bytes] of localFiles) {
    assert.ok((await readFile(join(cwd, 'fraud-churn-v1', ...p.split('/')))).equals(bytes), `${p} pulled by stage`);
  }
});

test('push a single file and pull the newest version in a stage', async () => {
  const file = join(root, 'single.onnx');
  const bytes = randomBytes(1000);
  await writeFile(file, bytes);
  const r = await cli(['push', file, '--project', 'fraud', '--model', 'churn'], { as: 'bob' });
  expectExit(r, 0, 'push one file');
  assert.equal(r.stdout, '2\n');
  expectExit(await cli(['promote', 'fraud/churn@2', '--to', 'staging'], { as: 'bob' }), 0, 'promote 2');
  const out = join(root, 'pulled-staging');
  const pulled = await cli(['pull', 'fraud/churn@staging', '--out', out], { as: 'bob' });
  expectExit(pulled, 0, 'pull newest @staging');
  assert.deepEqual(await readdir(out), ['single.onnx']);
  assert.ok((await readFile(join(out, 'single.onnx'))).equals(bytes));
});

test('permissions: a viewer cannot push (exit 4) and nothing is created', async () => {
  const r = await cli(['push', modelDir, '--project', 'fraud', '--model', 'churn'], { as: 'carol' });
  expectExit(r, 4, 'viewer push');
  assert.match(r.stderr, /^modelkeep: .*not allowed/);
  const versions = JSON.parse((await cli(['versions', 'list', 'fraud/churn', '--json'], { as: 'carol' })).stdout) as {
    versions: unknown[];
  };
  assert.equal(versions.versions.length, 2);
});

test('a failed upload names the file, exits non-zero and leaves the version a draft', async () => {
  // a second server whose artifact limit is below the 5 MiB file
  const small = await startServer({
    mfa: { requiredForAdmins: false },
    dataDir: join(root, 'data-small'),
    port: 0,
    logLevel: 'silent',
    limits: { maxArtifactBytes: 1024 * 1024 },
  });
  try {
    await bootstrapUser({ dataDir: join(root, 'data-small') }, { ...ADMIN, platformAdmin: true });
    await bootstrapUser({ dataDir: join(root, 'data-small') }, { ...BOB, platformAdmin: false });
    const on = ['--server', small.url];
    // the same config dirs: sessions are kept per server, side by side
    expectExit(await cli(['login', '--username', 'root', '--password-stdin', ...on], { as: 'root', input: `${ADMIN.password}\n` }), 0, 'login root (small)');
    await markMfa(small, 'root');
    expectExit(await cli(['projects', 'create', 'tiny', ...on], { as: 'root' }), 0, 'project (small)');
    expectExit(await cli(['bindings', 'add', '--project', 'tiny', '--user', 'bob', '--role', 'ml-engineer', ...on], { as: 'root' }), 0, 'bind (small)');
    expectExit(await cli(['login', '--username', 'bob', '--password-stdin', ...on], { as: 'bob', input: `${BOB.password}\n` }), 0, 'login bob (small)');
    expectExit(await cli(['models', 'create', 'm', '--project', 'tiny', ...on], { as: 'bob' }), 0, 'model (small)');

    const r = await cli(['push', modelDir, '--project', 'tiny', '--model', 'm', ...on], { as: 'bob' });
    expectExit(r, 2, 'push over the size limit (413)');
    assert.match(r.stderr, /^modelkeep: upload of weights\.bin failed: /m);
    assert.match(r.stderr, /tiny\/m@1 stays an unfinalized draft/);
    const v = JSON.parse((await cli(['versions', 'show', 'tiny/m@1', '--json', ...on], { as: 'bob' })).stdout) as { state: string };
    assert.equal(v.state, 'draft');

    // the main server's session is untouched by the second login
    expectExit(await cli(['whoami'], { as: 'bob' }), 0, 'whoami on the main server');
  } finally {
    await small.close();
  }
});

test('push refuses unsafe local names and symlinks before creating a version', async () => {
  const badName = join(root, 'bad-name');
  await mkdir(badName);
  await writeFile(join(badName, 'ok.bin'), 'x');
  await writeFile(join(badName, 'has space.bin'), 'x');
  const r1 = await cli(['push', badName, '--project', 'fraud', '--model', 'churn'], { as: 'bob' });
  expectExit(r1, 2, 'unsafe name');
  assert.match(r1.stderr, /cannot push .*has space\.bin/);

  const withLink = join(root, 'with-link');
  await mkdir(withLink);
  await writeFile(join(withLink, 'ok.bin'), 'x');
  await symlink(join(root, 'single.onnx'), join(withLink, 'link.bin'));
  const r2 = await cli(['push', withLink, '--project', 'fraud', '--model', 'churn'], { as: 'bob' });
  expectExit(r2, 2, 'symlink');
  assert.match(r2.stderr, /cannot push .*link\.bin: symbolic links are not uploaded/);

  const versions = JSON.parse((await cli(['versions', 'list', 'fraud/churn', '--json'], { as: 'bob' })).stdout) as {
    versions: unknown[];
  };
  assert.equal(versions.versions.length, 2, 'no draft version was created');
});

test('deployments, pipelines and audit', async () => {
  const set = await cli(
    ['deployments', 'set', 'fraud/scoring', '--env', 'staging', '--model', 'churn', '--version', '1', '--config', '{"replicas":2}'],
    { as: 'bob' },
  );
  expectExit(set, 0, 'deployments set');
  const shown = JSON.parse((await cli(['deployments', 'show', 'fraud/scoring', '--json'], { as: 'bob' })).stdout) as {
    version: number;
    environment: string;
  };
  assert.equal(shown.version, 1);
  assert.equal(shown.environment, 'staging');
  expectExit(await cli(['deployments', 'set', 'fraud/scoring', '--env', 'staging', '--model', 'churn', '--version', '1', '--config', '[1]'], { as: 'bob' }), 2, 'config not an object');

  const trig = await cli(['pipelines', 'trigger', 'fraud/retrain', '--param', 'epochs=5', '--param', 'note=a=b'], { as: 'bob' });
  expectExit(trig, 0, 'pipelines trigger');
  const runs = JSON.parse((await cli(['pipelines', 'runs', 'fraud/retrain', '--json'], { as: 'bob' })).stdout) as {
    runs: { runId: string; parameters: Record<string, unknown> }[];
  };
  assert.equal(runs.runs[0]?.runId, trig.stdout.trim());
  assert.deepEqual(runs.runs[0]?.parameters, { epochs: '5', note: 'a=b' });

  const events = await cli(['audit', 'events', '--limit', '5', '--json'], { as: 'root' });
  expectExit(events, 0, 'audit events');
  const parsed = JSON.parse(events.stdout) as { events: { seq: number }[] };
  assert.ok(parsed.events.length > 0 && parsed.events.length <= 5);
  expectExit(await cli(['audit', 'events', '--limit', 'many'], { as: 'root' }), 2, 'bad --limit');
});

test('logout ends the session on the server and forgets it', async () => {
  const creds = JSON.parse(await readFile(join(configDir('carol'), 'credentials.json'), 'utf8')) as {
    servers: Record<string, { session: string; cookieName: string }>;
  };
  const saved = Object.values(creds.servers)[0];
  assert.ok(saved);
  const r = await cli(['logout'], { as: 'carol' });
  expectExit(r, 0, 'logout');
  expectExit(await cli(['whoami'], { as: 'carol' }), 3, 'whoami after logout');
  // the old cookie no longer works on the server either
  const res = await fetch(`${server?.url}/v1/me`, { headers: { cookie: `${saved.cookieName}=${saved.session}` } });
  assert.equal(res.status, 401);
});

test('no CLI output ever contains a session secret, CSRF token or password', async () => {
  const secrets: string[] = [ADMIN.password, BOB.password, CAROL.password, DANA.password];
  for (const user of ['root', 'bob']) {
    const creds = JSON.parse(await readFile(join(configDir(user), 'credentials.json'), 'utf8')) as {
      servers: Record<string, { session: string; csrfToken: string }>;
    };
    for (const c of Object.values(creds.servers)) secrets.push(c.session, c.csrfToken);
  }
  const all = transcript.join('\n');
  for (const s of secrets) assert.ok(!all.includes(s), 'a secret appeared in CLI output');
});

test('serve runs the server and exits 0 on SIGTERM', async () => {
  const dir = join(root, 'serve-data');
  const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dir, '--port', '0', '--log-level', 'silent', '--json'], {
    cwd: root,
    env: { ...process.env, MODELKEEP_CONFIG_DIR: configDir('nobody') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const url = await new Promise<string>((done, fail) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      // --json: one JSON line, as a supervisor would parse it
      const line = out.split('\n')[0];
      if (out.includes('\n') && line) {
        const started = JSON.parse(line) as { listening: string; data: string };
        assert.equal(started.data, resolve(dir));
        assert.match(started.listening, /^http:\/\/127\.0\.0\.1:\d+$/);
        done(started.listening);
      }
    });
    child.on('exit', (code) => fail(new Error(`serve exited early with ${code}`)));
  });
  const health = await fetch(`${url}/healthz`);
  assert.equal(health.status, 200);
  const code = await new Promise<number | null>((done) => {
    child.removeAllListeners('exit');
    child.on('exit', (c) => done(c));
    child.kill('SIGTERM');
  });
  assert.equal(code, 0);
});

test('serve logs requests without their query strings (a device user code never reaches the log)', async () => {
  const dir = join(root, 'serve-log-data');
  const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dir, '--port', '0', '--log-level', 'info', '--json'], {
    cwd: root,
    env: { ...process.env, MODELKEEP_CONFIG_DIR: configDir('nobody') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  const url = await new Promise<string>((done, fail) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      const m = /"listening":"(http:[^"]+)"/.exec(out);
      if (m?.[1]) done(m[1]);
    });
    child.on('exit', (code) => fail(new Error(`serve exited early with ${code}`)));
  });
  await (await fetch(`${url}/v1/auth/device?userCode=QWXZ-KLMN`)).arrayBuffer();
  await (await fetch(`${url}/device?user_code=QWXZ-KLMN`)).arrayBuffer();
  await new Promise<number | null>((done) => {
    child.removeAllListeners('exit');
    child.on('exit', (c) => done(c));
    child.kill('SIGTERM');
  });
  assert.match(out, /\/v1\/auth\/device/, 'the request was logged');
  assert.ok(!out.includes('QWXZ-KLMN'), 'the user code is not in the log');
});

// pull must never write outside --out, whatever path a server names (zip-slip)
test('artifact-path.traversal: resolveOutputPath refuses paths that leave --out', async () => {
  const out = join(root, 'traversal-out');
  for (const evil of [
    '../escape.bin',
    'a/../../escape.bin',
    '..',
    '/etc/passwd',
    'a\\..\\..\\escape.bin',
    'C:/Windows/x.dll',
    'a//b',
    './a',
    'a/./b',
    '',
    'nul\0byte',
    '%2e%2e/x',
  ]) {
    assert.throws(() => resolveOutputPath(out, evil), /refusing to write artifact/, `refuses ${JSON.stringify(evil)}`);
  }
  assert.equal(resolveOutputPath(out, 'weights/model.bin'), join(resolve(out), 'weights', 'model.bin'));
  assert.ok(resolveOutputPath(out, 'a..b/c').startsWith(resolve(out) + sep), "'..' inside a name is fine");

  // a symlinked folder inside --out must not redirect writes elsewhere
  const elsewhere = join(root, 'elsewhere');
  await mkdir(elsewhere, { recursive: true });
  await mkdir(out, { recursive: true });
  await symlink(elsewhere, join(out, 'linked'));
  await assert.rejects(ensureParentDirs(out, 'linked/x.bin'), /symbolic link/);
  await ensureParentDirs(out, 'fresh/deeper/x.bin');
  assert.ok((await stat(join(out, 'fresh', 'deeper'))).isDirectory());
});

// A double of a compromised server (the real one never sends these): it lists one
// artifact per version and serves bytes that may not match. pull must write nothing
// under the artifact's name unless size and SHA-256 match, and nothing outside --out.
test('pull.integrity: a hostile server cannot plant bad bytes or escape --out', async () => {
  const good = Buffer.from('the real weights');
  const bad = Buffer.from('tampered weight!'); // same length: only the digest differs
  const listings: Record<string, { path: string; size: number; sha256: string; body: Buffer; header?: string }> = {
    '1': { path: 'model.bin', size: good.length, sha256: sha256(good), body: bad },
    '2': { path: '../escape.bin', size: good.length, sha256: sha256(good), body: good },
    '3': { path: 'model.bin', size: good.length, sha256: sha256(good), body: Buffer.concat([good, bad]) },
    '4': { path: 'model.bin', size: good.length, sha256: sha256(good), body: good, header: sha256(bad) },
    '5': { path: 'model.bin', size: good.length, sha256: sha256(good), body: good },
  };
  const hostile: Server = createServer((req, res) => {
    const m = /^\/v1\/projects\/p\/models\/m\/versions\/(\d+)(\/artifacts\/.*)?$/.exec(req.url ?? '');
    const entry = m?.[1] ? listings[m[1]] : undefined;
    if (!m || !entry) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"not found"}}');
      return;
    }
    if (!m[2]) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ version: Number(m[1]), state: 'ready', stage: 'none', artifacts: [{ path: entry.path, size: entry.size, sha256: entry.sha256 }] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-content-sha256': entry.header ?? entry.sha256 });
    res.end(entry.body);
  });
  await new Promise<void>((done) => hostile.listen(0, '127.0.0.1', done));
  try {
    const addr = hostile.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    const dir = configDir('victim');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const creds = { server: url, cookieName: 'modelkeep_session', session: 'x', csrfToken: 'y', username: 'victim' };
    await writeFile(join(dir, 'credentials.json'), JSON.stringify({ version: 1, servers: { [url]: creds } }), { mode: 0o600 });

    const pullInto = async (v: string) => {
      const out = join(root, `hostile-${v}`, 'out');
      const r = await cli(['pull', `p/m@${v}`, '--out', out, '--server', url], { as: 'victim' });
      return { r, out };
    };
    for (const [v, why] of [
      ['1', /SHA-256 is [0-9a-f]{64}, expected/],
      ['3', /more than the listed/],
      ['4', /different digest/],
    ] as const) {
      const { r, out } = await pullInto(v);
      expectExit(r, 1, `hostile version ${v}`);
      assert.match(r.stderr, /^modelkeep: download of model\.bin failed verification: /);
      assert.match(r.stderr, why);
      assert.deepEqual(await readdir(out), [], `version ${v}: nothing left in --out`);
    }
    const { r, out } = await pullInto('2');
    expectExit(r, 1, 'traversal');
    assert.match(r.stderr, /refusing to write artifact '\.\.\/escape\.bin'/);
    await assert.rejects(access(join(out, '..', 'escape.bin')), 'nothing written next to --out');

    const ok = await pullInto('5');
    expectExit(ok.r, 0, 'an honest answer from the double');
    assert.ok((await readFile(join(ok.out, 'model.bin'))).equals(good));
  } finally {
    await new Promise<void>((done) => hostile.close(() => done()));
  }
});

test('a reader that closes the pipe early (modelkeep … | head) ends the command quietly', async () => {
  const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, MODELKEEP_CONFIG_DIR: tmpdir() } });
  // Close our end before the child has written anything: its first write meets EPIPE.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    stderr += c.toString();
  });
  const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
  assert.equal(code, 0, stderr);
  assert.doesNotMatch(stderr, /EPIPE|Error|at /);
});

// End-to-end, part 2: the real `bin/modelkeep` binary against a real server (SQLite and
// PostgreSQL) for `versions create`, `--json` answers, `access`, a service-account token
// in MODELKEEP_TOKEN, and the step-up of `promote … --to production` when the server
// answers 428; then against a hostile double that cuts (or stalls) a download.
// The server's clock is real time plus an offset the tests move forward: the CLI polls in
// real time, and stale MFA is reached by moving the offset, never by sleeping.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN, cleanEnv, expectExit, finish, type Run, runBin, start } from '../helpers/cli.ts';
import { form, refresh } from '../helpers/oauth.ts';
import { BACKENDS, type Client, enrollTotp, expectOk, json, loginWithTotp, PASSWORD, type World, world } from '../helpers/server.ts';

const spawnCli = (args: string[], env: Record<string, string>, input = '') => start(process.execPath, [BIN, ...args], { env: cleanEnv(env), input });

function cli(args: string[], env: Record<string, string>, opts: { input?: string; onStderr?: (all: string) => void } = {}): Promise<Run> {
  return runBin(args, { env: cleanEnv(env), ...opts });
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
// biome-ignore lint/suspicious/noControlCharactersInRegex: a progress bar is made of these
const TERMINAL_CONTROL = /[\r\u001b]/;

interface SavedOAuth {
  servers: Record<string, { kind: string; accessToken: string; refreshToken: string; username: string; scope: string }>;
}

for (const backend of BACKENDS) {
  describe(`CLI: versions, --json, access, service token, step-up (${backend})`, () => {
    let w: World;
    let root: string;
    let offset = 0;
    const clock = { now: () => new Date(Date.now() + offset) };
    const envOf = (user: string, extra: Record<string, string> = {}) => ({ MODELKEEP_CONFIG_DIR: join(root, `config-${user}`), MODELKEEP_SERVER: w.server.url, ...extra });
    const passwordLogin = async (user: string) => expectExit(await cli(['login', '--username', user, '--password-stdin'], envOf(user), { input: `${PASSWORD}\n` }), 0, `login ${user}`);
    const weights = randomBytes(300_000);

    before(async () => {
      w = await world(backend, { clock, config: { tokens: { devicePollSeconds: 1 } } });
      root = mkdtempSync(join(tmpdir(), 'mk-cli2-'));
      await passwordLogin('ml-engineer');
      await passwordLogin('viewer');
    });
    after(async () => {
      await w.server.close();
      rmSync(root, { recursive: true, force: true });
    });

    test('versions create prints the number; every show/list --json is the server JSON as it came', async () => {
      const me = envOf('ml-engineer');
      expectExit(await cli(['models', 'create', 'churn', '--project', 'fraud'], me), 0, 'models create');
      expectExit(await cli(['models', 'create', 'churn', '--project', 'fraud'], me), 6, 'the same model again is a conflict');

      const first = await cli(['versions', 'create', 'fraud/churn', '--description', 'first draft'], me);
      expectExit(first, 0, 'versions create');
      assert.equal(first.stdout, '1\n');
      const second = await cli(['versions', 'create', 'fraud/churn', '--json'], me);
      expectExit(second, 0, 'versions create --json');
      const created = JSON.parse(second.stdout) as { version: number; state: string };
      assert.equal(created.version, 2);
      assert.equal(created.state, 'draft');

      const http = w.as['ml-engineer'];
      for (const [args, path] of [
        [['projects', 'show', 'fraud'], '/v1/projects/fraud'],
        [['projects', 'list'], '/v1/projects'],
        [['models', 'show', 'fraud/churn'], '/v1/projects/fraud/models/churn'],
        [['models', 'list', '--project', 'fraud'], '/v1/projects/fraud/models'],
        [['versions', 'show', 'fraud/churn@1'], '/v1/projects/fraud/models/churn/versions/1'],
        [['versions', 'list', 'fraud/churn'], '/v1/projects/fraud/models/churn/versions'],
      ] as const) {
        const r = await cli([...args, '--json'], me);
        expectExit(r, 0, args.join(' '));
        assert.deepEqual(JSON.parse(r.stdout), await json(await expectOk(await http.get(path))), `${args.join(' ')} --json is the server's answer`);
      }
      const shown = await cli(['versions', 'show', 'fraud/churn@1'], me);
      assert.match(shown.stdout, /^state: +draft$/m);
      assert.match(shown.stdout, /^description: +first draft$/m);

      expectExit(await cli(['versions', 'create', 'fraud/no-such-model'], me), 5, 'unknown model');
      expectExit(await cli(['versions', 'create', 'fraud'], me), 2, 'not P/M');
      expectExit(await cli(['versions', 'create', 'fraud/churn'], envOf('viewer')), 4, 'a viewer may not create versions');
    });

    test('push/pull --json keep stdout pure JSON; progress goes to stderr without terminal control; a service-account token pulls', async () => {
      const me = envOf('ml-engineer');
      const file = join(root, 'weights.bin');
      writeFileSync(file, weights);
      const pushed = await cli(['push', file, '--project', 'fraud', '--model', 'churn', '--json'], me);
      expectExit(pushed, 0, 'push --json');
      const v = JSON.parse(pushed.stdout) as { version: number; state: string };
      assert.equal(v.version, 3);
      assert.equal(v.state, 'ready');
      assert.match(pushed.stderr, /^uploaded weights\.bin \(/m, 'one progress line per file on a non-terminal stderr');
      assert.doesNotMatch(pushed.stderr, TERMINAL_CONTROL, 'no progress bar when stderr is not a terminal');

      // CI: a service account's client_credentials token in MODELKEEP_TOKEN, no saved login at all.
      const sa = await json<{ clientId: string; clientSecret: string }>(
        await expectOk(await w.admin.post('/v1/admin/service-accounts', { name: `ci-puller-${backend}`, project: 'fraud', roles: ['data-scientist'], scopes: ['read', 'download'] })),
      );
      const t = await json<{ access_token: string }>(await expectOk(await form(w.server.url, '/oauth/token', { grant_type: 'client_credentials', client_id: sa.clientId, client_secret: sa.clientSecret })));
      const ci = envOf('nobody', { MODELKEEP_TOKEN: t.access_token });
      const out = join(root, 'pulled-by-ci');
      const pulled = await cli(['pull', 'fraud/churn@3', '--out', out, '--json'], ci);
      expectExit(pulled, 0, 'pull with a service-account token');
      const summary = JSON.parse(pulled.stdout) as { version: number; artifacts: { path: string; sha256: string }[] };
      assert.equal(summary.version, 3);
      assert.deepEqual(summary.artifacts.map((a) => [a.path, a.sha256]), [['weights.bin', sha256(weights)]]);
      assert.ok(readFileSync(join(out, 'weights.bin')).equals(weights));
      assert.deepEqual(readdirSync(out), ['weights.bin'], 'no temporary file left');
      assert.match(pulled.stderr, /^downloaded weights\.bin \(.*sha256 ok$/m);
      assert.doesNotMatch(pulled.stderr, TERMINAL_CONTROL);
      // The token's scopes hold: no write scope, no push (and nothing is created).
      const refused = await cli(['versions', 'create', 'fraud/churn'], ci);
      expectExit(refused, 4, 'a read/download token cannot create a version');
      assert.match(refused.stderr, /lacks the 'write' scope/);
      assert.ok(!(pulled.stdout + pulled.stderr + refused.stderr).includes(t.access_token), 'the token is never printed');
    });

    test('access: roles without an argument, a table per resource, --json as served, exit 5 when not visible', async () => {
      const viewer = envOf('viewer');
      const roles = await cli(['access'], viewer);
      expectExit(roles, 0, 'access');
      assert.match(roles.stdout, /^user: +viewer$/m);
      assert.match(roles.stdout, /^SCOPE +ROLE +EXPIRES\nproject:fraud +viewer +never$/m);
      const rolesJson = JSON.parse((await cli(['access', '--json'], viewer)).stdout) as { roles: { scope: string; role: string }[] };
      assert.deepEqual(rolesJson.roles, [{ scope: 'project:fraud', role: 'viewer' }]);

      const model = await cli(['access', 'fraud/churn'], viewer);
      expectExit(model, 0, 'access P/M');
      assert.match(model.stdout, /^resource: model:fraud\/churn$/m);
      assert.match(model.stdout, /^model:read +allowed +-$/m);
      assert.match(model.stdout, /^version:create +denied +this action needs one of the roles .* in project fraud — ask a project-admin of fraud/m);

      const asJson = await cli(['access', 'fraud/churn@3', '--json'], viewer);
      expectExit(asJson, 0, 'access P/M@V --json');
      assert.deepEqual(JSON.parse(asJson.stdout), await json(await expectOk(await w.as.viewer.get('/v1/me/permissions?resource=version:fraud/churn/3'))));
      const byPath = JSON.parse((await cli(['access', 'fraud/churn/3', '--json'], viewer)).stdout) as { resource: string };
      assert.equal(byPath.resource, 'version:fraud/churn/3');
      expectExit(await cli(['access', 'pipeline:fraud/retrain'], viewer), 0, 'access pipeline:P/NAME');

      const hidden = await cli(['access', 'other'], viewer);
      expectExit(hidden, 5, 'a project the viewer has no role in');
      assert.match(hidden.stderr, /not found/);
      expectExit(await cli(['access', 'other/churn/1'], viewer), 5, 'a version in an invisible project');
      expectExit(await cli(['access', 'deployment:fraud/none'], viewer), 5, 'an unknown deployment');
      expectExit(await cli(['access', 'fraud/churn/1/x'], viewer), 2, 'too many parts');
      expectExit(await cli(['access', 'secret:fraud'], viewer), 2, 'unknown kind');
    });

    test('promote to production: 428 → device step-up approved after a fresh second factor → retried once and done', async () => {
      const rmEnv = envOf('release-manager');
      const { secret } = await enrollTotp(w.as['release-manager'], clock.now());
      offset += 31_000; // the next TOTP step: the enrolment code is spent
      const firstApprover = await loginWithTotp(w.server.url, 'release-manager', secret, clock.now());

      // Device login with the release scope, approved by a session that just gave its code.
      let approval: Promise<Response> | null = null;
      const login = await cli(['login', '--scope', 'read download release'], rmEnv, {
        onStderr: (all) => {
          const m = /code: ([A-Z]{4}-[A-Z]{4})/.exec(all);
          if (m && !approval) approval = firstApprover.post('/v1/auth/device/approve', { userCode: m[1] });
        },
      });
      expectExit(login, 0, 'device login');
      assert.equal((await (approval as unknown as Promise<Response>)).status, 200);
      const file = join(root, 'config-release-manager', 'credentials.json');
      const before = (JSON.parse(readFileSync(file, 'utf8')) as SavedOAuth).servers[w.server.url];
      assert.ok(before);

      // 16 minutes later the login's second factor is stale.
      offset += 16 * 60_000;
      const access = await cli(['access', 'fraud/churn@3'], rmEnv);
      expectExit(access, 0, 'access with stale MFA');
      assert.match(access.stdout, /^version:promote +needs a fresh MFA +this action needs a second factor within the last 15 minutes/m);

      const noTty = await cli(['promote', 'fraud/churn@3', '--to', 'production'], rmEnv);
      expectExit(noTty, 4, 'a 428 without a terminal');
      assert.match(noTty.stderr, /^modelkeep: not allowed yet: this action needs a second factor/m);
      assert.match(noTty.stderr, /^hint: run it again in a terminal, or with --step-up/m);
      expectExit(await cli(['promote', 'fraud/churn@3', '--to', 'production', '--no-step-up'], rmEnv), 4, '--no-step-up');
      expectExit(await cli(['promote', 'fraud/churn@3', '--to', 'production', '--step-up', '--no-step-up'], rmEnv), 2, 'both flags');

      // The step-up: the stale session cannot approve it; a fresh second factor can.
      let stale: Promise<Response> | null = null;
      let fresh: Promise<Response> | null = null;
      const stepped = await cli(['promote', 'fraud/churn@3', '--to', 'production', '--step-up'], rmEnv, {
        onStderr: (all) => {
          const m = /code: ([A-Z]{4}-[A-Z]{4})/.exec(all);
          if (!m || stale) return;
          stale = firstApprover.post('/v1/auth/device/approve', { userCode: m[1] });
          fresh = stale.then(async () => {
            offset += 30_000;
            const c: Client = await loginWithTotp(w.server.url, 'release-manager', secret, clock.now());
            return c.post('/v1/auth/device/approve', { userCode: m[1] });
          });
        },
      });
      expectExit(stepped, 0, 'promote with step-up');
      assert.equal((await (stale as unknown as Promise<Response>)).status, 428, 'a session whose MFA is 16 minutes old cannot approve a step-up');
      assert.equal((await (fresh as unknown as Promise<Response>)).status, 200);
      assert.match(stepped.stderr, /To confirm it, sign in to the console with your second factor .*, open http:\/\/127\.0\.0\.1:\d+\/device /);
      assert.equal(stepped.stdout, 'fraud/churn@3 is now in stage production\n');
      const v = await json<{ stage: string }>(await expectOk(await w.as.viewer.get('/v1/projects/fraud/models/churn/versions/3')));
      assert.equal(v.stage, 'production');

      // The saved login was replaced and the old one revoked.
      const afterStepUp = (JSON.parse(readFileSync(file, 'utf8')) as SavedOAuth).servers[w.server.url];
      assert.ok(afterStepUp);
      assert.equal(afterStepUp.username, 'release-manager');
      assert.equal(afterStepUp.scope, before.scope);
      assert.notEqual(afterStepUp.refreshToken, before.refreshToken);
      assert.equal((await json(await refresh(w.server.url, before.refreshToken))).error, 'invalid_grant', 'the superseded login is revoked');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const transcript = login.stdout + login.stderr + stepped.stdout + stepped.stderr;
      for (const s of [before.accessToken, before.refreshToken, afterStepUp.accessToken, afterStepUp.refreshToken]) assert.ok(!transcript.includes(s));
    });

    test('a step-up approved by someone else is refused and changes nothing', async () => {
      const rmEnv = envOf('release-manager');
      const file = join(root, 'config-release-manager', 'credentials.json');
      offset += 16 * 60_000; // stale again
      const other = await w.client('ml-engineer'); // a fresh second factor, but another person
      let approval: Promise<Response> | null = null;
      const r = await cli(['promote', 'fraud/churn@3', '--to', 'archived', '--step-up'], rmEnv, {
        onStderr: (all) => {
          const m = /code: ([A-Z]{4}-[A-Z]{4})/.exec(all);
          if (m && !approval) approval = other.post('/v1/auth/device/approve', { userCode: m[1] });
        },
      });
      assert.equal((await (approval as unknown as Promise<Response>)).status, 200);
      expectExit(r, 3, 'step-up approved as another user');
      assert.match(r.stderr, /^modelkeep: the step-up was approved as ml-engineer, not release-manager; nothing was changed$/m);
      // The saved login is still the release-manager's own (the CLI may have refreshed it)…
      const kept = (JSON.parse(readFileSync(file, 'utf8')) as SavedOAuth).servers[w.server.url];
      assert.equal(kept?.username, 'release-manager', 'the saved login still belongs to release-manager');
      const who = await cli(['whoami'], rmEnv);
      assert.match(who.stdout, /^user: +release-manager$/m);
      // …and the tokens minted for the other approver were revoked at once.
      const k = w.server.services.db.kysely;
      const mlEngineer = await k.selectFrom('users').select('id').where('username', '=', 'ml-engineer').executeTakeFirstOrThrow();
      const families = await k.selectFrom('token_families').select(['revoked_at']).where('user_id', '=', mlEngineer.id).where('client_id', '=', 'modelkeep-cli').execute();
      assert.equal(families.length, 1);
      assert.ok(families[0]?.revoked_at, 'the family approved by someone else is revoked');
      const v = await json<{ stage: string }>(await expectOk(await w.as.viewer.get('/v1/projects/fraud/models/churn/versions/3')));
      assert.equal(v.stage, 'production');
    });
  });
}

// A double of a server whose download breaks mid-artifact: it lists one 1 MiB artifact
// and sends half of it, then either cuts the connection or stalls until the CLI is
// interrupted. Neither the artifact nor a temporary file may remain in --out.
describe('pull interrupted mid-artifact', () => {
  const body = randomBytes(1024 * 1024);
  let root = '';
  let url = '';
  let double: Server;
  let mode: 'cut' | 'stall' = 'cut';
  const env = () => ({ MODELKEEP_CONFIG_DIR: join(root, 'config'), MODELKEEP_SERVER: url });

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'mk-cli2-cut-'));
    double = createServer((req, res) => {
      if (req.url === '/v1/projects/p/models/m/versions/1') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ version: 1, state: 'ready', stage: 'none', artifacts: [{ path: 'model.bin', size: body.length, sha256: sha256(body) }] }));
        return;
      }
      if (req.url === '/v1/projects/p/models/m/versions/1/artifacts/model.bin') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'x-content-sha256': sha256(body) });
        res.write(body.subarray(0, body.length / 2), () => {
          if (mode === 'cut') res.socket?.destroy();
        });
        return;
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"code":"not_found","message":"not found"}}');
    });
    await new Promise<void>((done) => double.listen(0, '127.0.0.1', done));
    const addr = double.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    mkdirSync(join(root, 'config'), { mode: 0o700 });
    const creds = { server: url, cookieName: 'modelkeep_session', session: 'x', csrfToken: 'y', username: 'someone' };
    writeFileSync(join(root, 'config', 'credentials.json'), JSON.stringify({ version: 1, servers: { [url]: creds } }), { mode: 0o600 });
  });
  after(async () => {
    double.closeAllConnections();
    await new Promise<void>((done) => double.close(() => done()));
    rmSync(root, { recursive: true, force: true });
  });

  test('the connection is cut: exit 1, nothing in --out', async () => {
    mode = 'cut';
    const out = join(root, 'out-cut');
    const r = await cli(['pull', 'p/m@1', '--out', out, '--json'], env());
    expectExit(r, 1, 'cut download');
    assert.match(r.stderr, /^modelkeep: download of model\.bin failed: /m);
    assert.equal(r.stdout, '', 'no JSON result for a failed pull');
    assert.deepEqual(readdirSync(out), [], 'neither the artifact nor a temporary file remains');
  });

  test('the download stalls and the user presses Ctrl-C: the temporary file is removed', async () => {
    mode = 'stall';
    const out = join(root, 'out-stall');
    const child = spawnCli(['pull', 'p/m@1', '--out', out], env());
    const done = finish(child);
    // Wait (no timeout) until the CLI has written the first half into its temporary file.
    const half = body.length / 2;
    for (;;) {
      const parts = (() => {
        try {
          return readdirSync(out).filter((f) => f.endsWith('.part'));
        } catch {
          return [];
        }
      })();
      const part = parts[0];
      if (part && statSync(join(out, part)).size === half) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGINT');
    const r = await done;
    assert.equal(r.code, 130, `exit 130 after SIGINT\nstderr: ${r.stderr}`);
    assert.deepEqual(readdirSync(out), [], 'the temporary file is gone');
  });
});

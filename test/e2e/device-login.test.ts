// The real CLI binary logs in with the device flow (RFC 8628) against a real server: the
// test plays the user, approving the printed code over HTTP from a signed-in console
// session. Then whoami and a models list use the saved tokens, a due access token is
// refreshed (rotation saved to disk), logout revokes the family, and MODELKEEP_TOKEN works.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { cleanEnv, type Run, runBin } from '../helpers/cli.ts';
import { refresh } from '../helpers/oauth.ts';
import { BACKENDS, json, type World, world } from '../helpers/server.ts';

function cli(args: string[], env: Record<string, string>, onStderr?: (text: string) => void): Promise<Run> {
  return runBin(args, { env: cleanEnv(env), ...(onStderr ? { onStderr } : {}) });
}

interface Saved {
  servers: Record<string, { kind: string; accessToken: string; refreshToken: string; expiresAt: string; username: string; scope: string }>;
}

for (const backend of BACKENDS) {
  describe(`CLI device login (${backend})`, () => {
    let w: World;
    let dir: string;
    before(async () => {
      w = await world(backend, { config: { tokens: { devicePollSeconds: 1 } } });
      dir = mkdtempSync(join(tmpdir(), 'mk-cli-'));
      await w.as['ml-engineer'].post('/v1/projects/fraud/models', { name: 'churn' });
    });
    after(async () => {
      await w.server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    test('login, whoami, models list, transparent refresh, logout', async () => {
      const env = { MODELKEEP_CONFIG_DIR: dir, MODELKEEP_SERVER: w.server.url };
      let approved: Promise<Response> | null = null;
      const login = await cli(['login', '--scope', 'read download'], env, (text) => {
        const m = /code: ([A-Z]{4}-[A-Z]{4})/.exec(text);
        if (m && !approved) approved = w.as['data-scientist'].post('/v1/auth/device/approve', { userCode: m[1] });
      });
      assert.equal(login.code, 0, login.stderr);
      assert.ok(approved);
      assert.equal((await (approved as Promise<Response>)).status, 200);
      assert.match(login.stderr, new RegExp(`${w.server.url}/device`));
      assert.match(login.stdout, /logged in to .* as data-scientist \(scope: read download\)/);

      const file = join(dir, 'credentials.json');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      const saved = JSON.parse(readFileSync(file, 'utf8')) as Saved;
      const c = saved.servers[w.server.url];
      assert.ok(c);
      assert.equal(c.kind, 'oauth');

      const who = await cli(['whoami'], env);
      assert.equal(who.code, 0, who.stderr);
      assert.match(who.stdout, /data-scientist/);
      const models = await cli(['models', 'list', '--project', 'fraud'], env);
      assert.equal(models.code, 0, models.stderr);
      assert.match(models.stdout, /churn/);

      // The access token is due: the next command refreshes first and saves the rotated pair.
      c.expiresAt = new Date(Date.now() - 1000).toISOString();
      writeFileSync(file, JSON.stringify(saved));
      const again = await cli(['whoami'], env);
      assert.equal(again.code, 0, again.stderr);
      const rotated = (JSON.parse(readFileSync(file, 'utf8')) as Saved).servers[w.server.url];
      assert.ok(rotated);
      assert.notEqual(rotated.refreshToken, c.refreshToken);
      assert.notEqual(rotated.accessToken, c.accessToken);
      const old = await w.server.services.db.kysely
        .selectFrom('refresh_tokens')
        .select('used_at')
        .where('token_hash', '=', createHash('sha256').update(c.refreshToken).digest('hex'))
        .executeTakeFirstOrThrow();
      assert.ok(old.used_at, 'the old refresh token is spent');

      const out = await cli(['logout'], env);
      assert.equal(out.code, 0, out.stderr);
      assert.equal((JSON.parse(readFileSync(file, 'utf8')) as Saved).servers[w.server.url], undefined);
      const dead = await refresh(w.server.url, rotated.refreshToken);
      assert.equal((await json(dead)).error, 'invalid_grant');
      const afterLogout = await fetch(`${w.server.url}/v1/me`, { headers: { authorization: `Bearer ${rotated.accessToken}` } });
      assert.equal(afterLogout.status, 401, 'the access token of the revoked family is rejected at once');
      assert.equal((await cli(['whoami'], env)).code, 3);
    });

    test('MODELKEEP_TOKEN (an API key) authenticates without any saved login', async () => {
      const k = await json<{ token: string }>(await w.as.viewer.post('/v1/me/api-keys', { name: 'ci', scopes: ['read'], expiresInDays: 1 }));
      const r = await cli(['whoami'], { MODELKEEP_CONFIG_DIR: join(dir, 'empty'), MODELKEEP_SERVER: w.server.url, MODELKEEP_TOKEN: k.token });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /viewer/);
      assert.ok(!r.stdout.includes(k.token) && !r.stderr.includes(k.token));
    });
  });
}

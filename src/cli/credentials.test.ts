import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CredentialStore, normalizeServer } from './credentials.ts';
import { CliError } from './errors.ts';

test('normalizeServer gives one key per server', () => {
  assert.equal(normalizeServer('http://127.0.0.1:7470/'), 'http://127.0.0.1:7470');
  assert.equal(normalizeServer('HTTPS://MK.Example.com:443/'), 'https://mk.example.com');
  assert.equal(normalizeServer('https://example.com/modelkeep/'), 'https://example.com/modelkeep');
  assert.equal(normalizeServer('http://localhost:1'), 'http://localhost:1');
  assert.equal(normalizeServer('http://[::1]:1'), 'http://[::1]:1');
});

test('normalizeServer refuses URLs that would leak secrets or make no sense', () => {
  const refused = (url: string, env: NodeJS.ProcessEnv = {}) =>
    assert.throws(() => normalizeServer(url, env), (e: unknown) => e instanceof CliError && e.exitCode === 2, url);
  refused('ftp://example.com');
  refused('not a url');
  refused('https://user:pw@example.com');
  refused('https://example.com/?x=1');
  // passwords and cookies must not travel in clear to another machine
  refused('http://mk.example.com');
  refused('http://10.0.0.5:7470');
  assert.equal(normalizeServer('http://10.0.0.5:7470', { MODELKEEP_ALLOW_INSECURE_HTTP: '1' }), 'http://10.0.0.5:7470');
});

test('credential store: 0700 folder, 0600 file, atomic, one entry per server', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mk-creds-'));
  try {
    const dir = join(root, 'cfg');
    const store = new CredentialStore(dir);
    assert.equal(await store.get('http://127.0.0.1:1'), null);
    const a = { server: 'http://127.0.0.1:1', cookieName: 'modelkeep_session', session: 's1', csrfToken: 'c1', username: 'a' };
    const b = { ...a, server: 'http://127.0.0.1:2', session: 's2' };
    await store.save(a);
    await store.save(b);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    assert.equal((await stat(store.file)).mode & 0o777, 0o600);
    assert.deepEqual(await readdir(dir), ['credentials.json']);
    assert.deepEqual(await store.get(a.server), a);
    assert.equal(await store.remove(a.server), true);
    assert.equal(await store.remove(a.server), false);
    assert.deepEqual(await store.get(b.server), b);
    assert.equal(await store.get(a.server), null);
    assert.ok(!(await readFile(store.file, 'utf8')).includes('s1'), 'a removed session is gone from the file');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('credential store refuses a symlinked or damaged file', async () => {
  const root = await mkdtemp(join(tmpdir(), 'mk-creds-'));
  try {
    const target = join(root, 'elsewhere.json');
    await writeFile(target, '{"version":1,"servers":{}}');
    const linked = new CredentialStore(join(root, 'linked'));
    await mkdir(linked.dir);
    await symlink(target, linked.file);
    await assert.rejects(linked.get('http://127.0.0.1:1'), /not a regular file/);

    const damaged = new CredentialStore(join(root, 'damaged'));
    await mkdir(damaged.dir);
    await writeFile(damaged.file, '{not json', { mode: 0o600 });
    await assert.rejects(damaged.get('http://127.0.0.1:1'), /damaged/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

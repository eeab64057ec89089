import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Fastify from 'fastify';
import { CONSOLE_CSP, consoleRoutes } from './console.ts';

function appFor(dir: string) {
  const app = Fastify();
  consoleRoutes(app, { dir });
  return app;
}

test('without a build, / answers 503 with a page that says how to build', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mk-web-'));
  try {
    const r = await appFor(join(dir, 'absent')).inject({ url: '/' });
    assert.equal(r.statusCode, 503);
    assert.match(r.body, /npm run build:web/);
    assert.match(String(r.headers['content-type']), /^text\/html/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serves index.html and hashed assets with their types; nothing outside dist/web', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'mk-web-'));
  try {
    mkdirSync(join(dir, 'web', 'assets'), { recursive: true });
    writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><script type="module" src="/assets/a-1.js"></script>');
    writeFileSync(join(dir, 'web', 'assets', 'a-1.js'), 'console.log(1)');
    writeFileSync(join(dir, 'web', 'assets', 'notes.txt'), 'x');
    writeFileSync(join(dir, 'secret.js'), 'secret');
    symlinkSync(join(dir, 'secret.js'), join(dir, 'web', 'assets', 'link.js'));
    const app = appFor(join(dir, 'web'));
    const index = await app.inject({ url: '/' });
    assert.equal(index.statusCode, 200);
    assert.equal(index.headers['content-security-policy'], CONSOLE_CSP);
    assert.equal((await app.inject({ url: '/device?user_code=ABCD' })).statusCode, 200);
    const js = await app.inject({ url: '/assets/a-1.js' });
    assert.equal(js.statusCode, 200);
    assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
    assert.equal(js.headers['cache-control'], 'public, max-age=31536000, immutable');
    for (const url of ['/assets/notes.txt', '/assets/link.js', '/assets/..%2fsecret.js', '/assets/%2e%2e%2fsecret.js', '/assets/.hidden.js', '/assets/sub/a-1.js', '/assets/missing.js']) {
      const r = await app.inject({ url });
      assert.equal(r.statusCode, 404, url);
      assert.ok(!r.body.includes('secret'), url);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

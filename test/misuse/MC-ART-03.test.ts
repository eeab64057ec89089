// MC-ART-03 — size limits. An artifact over the configured maximum is refused with 413:
// at once when Content-Length says so (before the body is sent), while streaming when a
// chunked body crosses the line (and its temp file is removed); an oversized JSON body
// is refused too; nothing oversized is ever recorded as an artifact.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { type ClientRequest, type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { errorOf } from '../helpers/raw-http.ts';
import { BACKENDS, type Client, json, type World, world } from '../helpers/server.ts';

const MAX = 1024 * 1024;
const MAX_JSON = 64 * 1024;
const MODEL = '/v1/projects/fraud/models/big';
const V = `${MODEL}/versions/1`;

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  text: string;
}

/** Starts a PUT whose body the test writes by hand; `answer` settles when the server responds. */
function startPut(base: string, path: string, headers: Record<string, string>): { req: ClientRequest; answer: Promise<Answer> } {
  const u = new URL(base);
  const req = request({ host: u.hostname, port: u.port, method: 'PUT', path, headers, agent: false });
  const answer = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    // A write after the server has answered and closed may fail (EPIPE): the answer is what counts.
    req.on('error', reject);
  });
  return { req, answer };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

function blobNames(dataDir: string): string[] {
  const root = join(dataDir, 'blobs', 'sha256');
  return readdirSync(root).flatMap((d) => readdirSync(join(root, d)).map((f) => `${d}/${f}`)).sort();
}

for (const backend of BACKENDS) {
  describe(`MC-ART-03 size limits (${backend})`, () => {
    let w: World;
    let c: Client;

    before(async () => {
      w = await world(backend, { config: { limits: { maxArtifactBytes: MAX, maxJsonBytes: MAX_JSON } } });
      c = w.as['ml-engineer'];
      assert.equal((await c.post('/v1/projects/fraud/models', { name: 'big' })).status, 201);
      assert.equal((await c.post(`${MODEL}/versions`, {})).status, 201);
    });
    after(() => w.server.close());

    const uploadHeaders = (extra: Record<string, string> = {}) => ({ ...c.headers(), 'content-type': 'application/octet-stream', ...extra });
    const artifactPaths = async () => (await json<{ artifacts: { path: string }[] }>(await c.get(V))).artifacts.map((a) => a.path);

    test('a Content-Length over the maximum answers 413 before the body is sent', async () => {
      const declared = 100 * MAX;
      const blobsBefore = blobNames(w.server.dataDir);
      const { req, answer } = startPut(w.server.url, `${V}/artifacts/declared-too-big.bin`, uploadHeaders({ 'content-length': String(declared) }));
      const first = Buffer.alloc(16 * 1024, 0x61);
      req.write(first);
      // Only 16 KiB of the declared 100 MiB is ever written: a server that waited for the
      // body (or buffered it) would never answer and this times out.
      const r = await within(answer, 10_000, 'the 413 for an oversized Content-Length');
      req.destroy();
      assert.equal(r.status, 413, r.text);
      assert.equal(errorOf(r).code, 'payload_too_large');
      assert.ok(first.length < declared / 100, 'most of the body was never written');
      assert.equal(r.headers.connection, 'close', 'the unread rest of the body is not waited for');
      assert.deepEqual(await w.server.services.blobs.tempFiles(), []);
      assert.deepEqual(blobNames(w.server.dataDir), blobsBefore);
      assert.ok(!(await artifactPaths()).includes('declared-too-big.bin'));
    });

    test('Content-Length of maximum+1 is refused; exactly the maximum is accepted', async () => {
      const { req, answer } = startPut(w.server.url, `${V}/artifacts/one-over.bin`, uploadHeaders({ 'content-length': String(MAX + 1) }));
      req.flushHeaders();
      const over = await within(answer, 10_000, 'the 413 for Content-Length maximum+1');
      req.destroy();
      assert.equal(over.status, 413, over.text);
      assert.equal(errorOf(over).code, 'payload_too_large');
      assert.ok(!(await artifactPaths()).includes('one-over.bin'));
      const ok = await c.upload(`${V}/artifacts/exactly-max.bin`, new Uint8Array(MAX).fill(0x63));
      assert.equal(ok.status, 201, await ok.clone().text());
      assert.equal((await json<{ size: number }>(ok)).size, MAX);
    });

    test('a chunked body (no Content-Length) that exceeds the maximum answers 413 and its temp file is gone', async () => {
      const blobsBefore = blobNames(w.server.dataDir);
      const { req, answer } = startPut(w.server.url, `${V}/artifacts/chunked-too-big.bin`, uploadHeaders({ 'transfer-encoding': 'chunked' }));
      let answered = false;
      const settled = answer.then(
        (r) => {
          answered = true;
          return r;
        },
        (err: unknown) => {
          answered = true;
          throw err;
        },
      );
      settled.catch(() => {});
      const chunk = Buffer.alloc(64 * 1024, 0x64);
      let sent = 0;
      // Bounded: at most four times the limit, stopping as soon as the server answers.
      while (!answered && sent < 4 * MAX) {
        sent += chunk.length;
        if (!req.write(chunk)) {
          await Promise.race([new Promise((r) => req.once('drain', r)), settled.catch(() => {})]);
        }
      }
      if (!answered) req.end();
      const r = await within(settled, 10_000, 'the 413 for an oversized chunked body');
      req.destroy();
      assert.equal(r.status, 413, r.text);
      assert.equal(errorOf(r).code, 'payload_too_large');
      assert.ok(sent > MAX, 'the body really crossed the limit');
      assert.deepEqual(await w.server.services.blobs.tempFiles(), [], 'the partial temp file was removed');
      assert.deepEqual(blobNames(w.server.dataDir), blobsBefore, 'no blob was kept');
      assert.ok(!(await artifactPaths()).includes('chunked-too-big.bin'));
    });

    test('a JSON body over maxJsonBytes answers 413 and creates nothing', async () => {
      const big = await c.post('/v1/projects/fraud/models', { name: 'json-too-big', description: 'x'.repeat(MAX_JSON + 1024) });
      assert.equal(big.status, 413);
      assert.equal((await json<{ error: { code: string } }>(big)).error.code, 'payload_too_large');
      assert.equal((await c.get('/v1/projects/fraud/models/json-too-big')).status, 404);

      // Announced by Content-Length: refused before the body is sent.
      const u = new URL(w.server.url);
      const req = request({
        host: u.hostname,
        port: u.port,
        method: 'POST',
        path: '/v1/projects/fraud/models',
        headers: { ...c.headers(), 'content-type': 'application/json', 'content-length': String(100 * MAX_JSON) },
        agent: false,
      });
      const answer = new Promise<number>((resolve, reject) => {
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
      });
      req.write('{"name":"json-announced-too-big","description":"');
      const status = await within(answer, 10_000, 'the 413 for an oversized JSON Content-Length');
      req.destroy();
      assert.equal(status, 413);
      assert.equal((await c.get('/v1/projects/fraud/models/json-announced-too-big')).status, 404);

      // A JSON body just under the limit is fine (the limit is the configured one, not a guess).
      const small = await c.post('/v1/projects/fraud/models', { name: 'json-fits', description: 'x'.repeat(4000) });
      assert.equal(small.status, 201);
    });

    test('nothing oversized was recorded as an artifact, and each refusal is audited', async () => {
      assert.deepEqual(await artifactPaths(), ['exactly-max.bin']);
      const events = await json<{ events: { resource: string; outcome: string; reason: string | null; details: Record<string, unknown> }[] }>(
        await w.admin.get('/v1/audit/events?action=artifact.upload&limit=1000'),
      );
      const success = events.events.filter((e) => e.outcome === 'success').map((e) => e.resource);
      assert.deepEqual(success, ['artifact:fraud/big@1/exactly-max.bin']);
      for (const name of ['declared-too-big.bin', 'chunked-too-big.bin']) {
        const e = events.events.find((x) => x.resource === `artifact:fraud/big@1/${name}`);
        assert.ok(e, `the refused upload of ${name} is in the audit log`);
        assert.equal(e.outcome, 'failure');
        assert.equal(e.reason, 'payload_too_large');
      }
      assert.deepEqual(await w.server.services.blobs.tempFiles(), []);
    });
  });
}

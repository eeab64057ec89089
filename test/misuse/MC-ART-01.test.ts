// MC-ART-01 — path traversal in artifact paths. The client's path is metadata only: every
// traversal spelling is refused with 422 before a byte is read, nothing lands on disk
// (not in the blob store, not beside it, not outside the data dir), downloads never
// resolve outside the version, and blobs live under their sha256.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { errorOf, raw, rawSocket } from '../helpers/raw-http.ts';
import { BACKENDS, type Client, json, type World, world } from '../helpers/server.ts';

const MODEL = '/v1/projects/fraud/models/trav';
const UP = `${MODEL}/versions/1`; // stays a draft: every refused upload targets it
const DOWN = `${MODEL}/versions/2`; // holds one good artifact to aim downloads at
const SECRET = 'model-weights-that-must-only-come-from-model.bin';

/** [label, what follows `.../artifacts/` on the request line, exactly as sent]. */
const UPLOAD_PATHS: readonly (readonly [string, string])[] = [
  ['dot-dot slash', '../../etc/passwd'],
  ['dot-dot backslash', '..\\..\\win.ini'],
  ['percent-encoded dot-dot slash', '%2e%2e%2f'],
  ['percent-encoded traversal to a file', '%2e%2e%2f%2e%2e%2fetc%2fpasswd'],
  ['double percent-encoded', '%252e%252e%252f'],
  ['overlong UTF-8 slash', '..%c0%af'],
  ['overlong UTF-8 traversal to a file', '..%c0%af..%c0%afetc%c0%afpasswd'],
  ['full-width dots and slash', '%EF%BC%8E%EF%BC%8E%EF%BC%8F'],
  ['full-width traversal to a file', '%EF%BC%8E%EF%BC%8E%EF%BC%8Fetc%EF%BC%8Fpasswd'],
  ['absolute path (double slash in URL)', '/etc/passwd'],
  ['drive letter', 'C:\\x'],
  ['drive-relative', 'C:x'],
  ['NUL byte alone', '%00'],
  ['NUL byte truncation', 'model.bin%00.txt'],
  ['over-long path (>512 bytes)', `${'a'.repeat(200)}/${'b'.repeat(200)}/${'c'.repeat(200)}`],
  ['empty segment', 'a//b'],
  ['trailing slash (empty last segment)', 'a/'],
  ['empty path', ''],
  ['single dot segment', 'a/./b'],
  ['dot-dot inside a path', 'a/../../b'],
];

const DOWNLOAD_PATHS: readonly string[] = [
  '../../etc/passwd',
  'x/../model.bin',
  '../2/artifacts/model.bin',
  '../../../../../../../../etc/passwd',
  '%2e%2e/model.bin',
  '%2e%2e%2f%2e%2e%2fetc%2fpasswd',
  '..%2fmodel.bin',
  '..%c0%afmodel.bin',
  '..\\model.bin',
  '%EF%BC%8E%EF%BC%8E%EF%BC%8Fmodel.bin',
  '/etc/passwd',
  'model.bin%00',
  '?path=../../',
  '?path=../../etc/passwd',
  'C:\\windows\\win.ini',
];

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

function decodings(p: string): string[] {
  const out = new Set([p, p.replaceAll('\\', '/')]);
  for (const s of [...out]) {
    try {
      out.add(decodeURIComponent(s));
      out.add(decodeURIComponent(decodeURIComponent(s)));
    } catch {
      // not decodable: the literal spellings stay
    }
  }
  return [...out].map((s) => s.replaceAll('\0', '').replaceAll('．', '.').replaceAll('／', '/'));
}

/** Where a naive server would have written `path`: beside and above each folder it owns. */
function escapeTargets(dataDir: string, path: string): string[] {
  const bases = [dataDir, join(dataDir, 'blobs'), join(dataDir, 'blobs', 'tmp'), join(dataDir, 'blobs', 'sha256'), join(dataDir, 'blobs', 'sha256', 'ab')];
  const out = new Set<string>();
  for (const base of bases) for (const d of decodings(path)) if (d !== '') out.add(resolve(base, d.startsWith('/') ? `.${d}` : d));
  for (const d of decodings(path)) if (d.startsWith('/')) out.add(d); // an absolute path taken literally
  return [...out];
}

for (const backend of BACKENDS) {
  describe(`MC-ART-01 artifact path traversal (${backend})`, () => {
    let w: World;
    let c: Client;

    before(async () => {
      w = await world(backend);
      c = w.as['ml-engineer'];
      assert.equal((await c.post('/v1/projects/fraud/models', { name: 'trav' })).status, 201);
      assert.equal((await c.post(`${MODEL}/versions`, {})).status, 201);
      assert.equal((await c.post(`${MODEL}/versions`, {})).status, 201);
      assert.equal((await c.upload(`${DOWN}/artifacts/model.bin`, SECRET)).status, 201);
    });
    after(() => w.server.close());

    const assertNothingWritten = async (label: string, path: string, marker: string) => {
      const v = await json<{ artifacts: unknown[] }>(await c.get(UP));
      assert.deepEqual(v.artifacts, [], `${label}: the version gained an artifact`);
      assert.deepEqual(await w.server.services.blobs.tempFiles(), [], `${label}: a temp file was left behind`);
      for (const f of walk(w.server.dataDir)) {
        assert.ok(!readFileSync(f).includes(marker), `${label}: the body reached ${f}`);
      }
      for (const t of escapeTargets(w.server.dataDir, path)) {
        if (!existsSync(t) || !statSync(t).isFile()) continue;
        assert.ok(!readFileSync(t).includes(marker), `${label}: the body was written to ${t}`);
      }
    };

    for (const [label, path] of UPLOAD_PATHS) {
      test(`upload to '${path.length > 40 ? `${path.slice(0, 40)}…` : path}' (${label}) answers 422 and writes nothing`, async () => {
        const marker = `traversal-marker-${createHash('sha256').update(label).digest('hex').slice(0, 16)}`;
        const r = await raw(w.server.url, {
          method: 'PUT',
          path: `${UP}/artifacts/${path}`,
          headers: { ...c.headers(), 'content-type': 'application/octet-stream' },
          body: marker,
        });
        assert.equal(r.status, 422, `${label}: ${r.text}`);
        assert.equal(errorOf(r).code, 'invalid_input');
        assert.ok(r.headers['x-request-id'], 'every response carries X-Request-Id');
        await assertNothingWritten(label, path, marker);
      });
    }

    test('full-width dots and slash sent as raw UTF-8 bytes on the request line answer 4xx and write nothing', async () => {
      const marker = 'traversal-marker-fullwidth-raw';
      const head = Buffer.from(
        `PUT ${UP}/artifacts/．．／．．／etc／passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${c.cookie}\r\nX-CSRF-Token: ${c.csrf}\r\n` +
          `Content-Type: application/octet-stream\r\nContent-Length: ${marker.length}\r\nConnection: close\r\n\r\n${marker}`,
        'utf8',
      );
      const r = await rawSocket(w.server.url, head);
      // Either the HTTP parser refuses the bytes (400) or the route does (422); never a write.
      assert.ok(r.status === 400 || r.status === 422, r.text.slice(0, 300));
      await assertNothingWritten('raw full-width', '．．／．．／etc／passwd', marker);
    });

    test('the good artifact downloads (the refusals below are not a broken route)', async () => {
      const r = await raw(w.server.url, { method: 'GET', path: `${DOWN}/artifacts/model.bin`, headers: c.headers() });
      assert.equal(r.status, 200);
      assert.equal(r.text, SECRET);
    });

    for (const path of DOWNLOAD_PATHS) {
      test(`download of '${path}' answers 422 or 404 and never returns file content`, async () => {
        const r = await raw(w.server.url, { method: 'GET', path: `${DOWN}/artifacts/${path}`, headers: c.headers() });
        assert.ok(r.status === 422 || r.status === 404, `${path}: ${r.status} ${r.text.slice(0, 200)}`);
        assert.ok(!r.text.includes(SECRET), 'the artifact content leaked');
        assert.ok(!r.text.includes('root:'), '/etc/passwd leaked');
        assert.equal(r.headers['x-content-sha256'], undefined, 'no digest of any file is announced');
        assert.ok(['invalid_input', 'not_found'].includes(errorOf(r).code));
      });
    }

    test('a stored blob lives under its sha256; the client path never names a file', async () => {
      const content = `content-addressed ${backend} ${Date.now()}`;
      const sha = createHash('sha256').update(content).digest('hex');
      const r = await c.upload(`${DOWN}/artifacts/nested/dir/weights.onnx`, content);
      assert.equal(r.status, 201);
      const a = await json<{ path: string; sha256: string; size: number }>(r);
      assert.deepEqual([a.path, a.sha256, a.size], ['nested/dir/weights.onnx', sha, Buffer.byteLength(content)]);

      const blob = join(w.server.dataDir, 'blobs', 'sha256', sha.slice(0, 2), sha);
      assert.ok(existsSync(blob), 'the blob is at <dataDir>/blobs/sha256/<2 hex>/<sha256>');
      assert.equal(readFileSync(blob, 'utf8'), content);
      for (const f of walk(w.server.dataDir)) {
        const rel = f.slice(w.server.dataDir.length);
        assert.ok(!/weights\.onnx|model\.bin|nested/.test(rel), `a client-chosen name became a file: ${rel}`);
      }
      for (const f of walk(join(w.server.dataDir, 'blobs', 'sha256'))) {
        const name = f.slice(f.lastIndexOf('/') + 1);
        assert.match(name, /^[0-9a-f]{64}$/, `only digests name blobs: ${f}`);
        assert.equal(f, join(w.server.dataDir, 'blobs', 'sha256', name.slice(0, 2), name));
      }
      const down = await c.get(`${DOWN}/artifacts/nested/dir/weights.onnx`);
      assert.equal(down.status, 200);
      assert.equal(down.headers.get('x-content-sha256'), sha);
      assert.equal(await down.text(), content);
    });
  });
}

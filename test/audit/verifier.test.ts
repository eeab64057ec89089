// `modelkeep audit verify` against real tampering: a real server writes events and signs
// tree heads, stops, and then an insider edits the database directly. The verifier (in
// this process, and the real CLI binary) must name what happened and where.
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import canonicalize from 'canonicalize';
import {
  type AuditEvent,
  eventLeafData,
  eventLeafHash,
  keyIdOf,
  LogFrontier,
  leafFields,
  merkle,
  signTreeHead,
  type TreeHead,
  WITNESS_FILE,
} from '../../src/audit/index.ts';
import { sql } from '../../src/storage/index.ts';
import { BACKENDS, Client, expectOk, json, PASSWORD, startTestServer, type World, world } from '../helpers/server.ts';
import {
  clonePlace,
  describeResult,
  namedFailure,
  newPlace,
  type Pin,
  type Place,
  pinKey,
  runCli,
  show,
  storeArgs,
  tempRoot,
  verifyPlace,
  withDb,
} from './fixtures.ts';

describe('leaf hashing and the frontier match the reference implementation', () => {
  const strings = ['', 'plain', 'quote " and \\ backslash', 'tab\tnewline\n\u0001\u001f\u007f', 'émoji 😀 ünïcödé', '\u2028\u2029', '</script>', 'a'.repeat(300)];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
  const value = (depth: number): unknown => {
    const r = Math.random();
    if (depth > 2 || r < 0.3) return pick([null, true, false, 0, -0, 1, -1.5, 1e21, 1e-7, 2 ** 53 - 1, 0.1, ...strings]);
    if (r < 0.6) return Array.from({ length: Math.floor(Math.random() * 4) }, () => value(depth + 1));
    return Object.fromEntries(Array.from({ length: Math.floor(Math.random() * 5) }, () => [pick(['b', 'a', 'B', '__proto__', 'é', '10', '9', ...strings]), value(depth + 1)]));
  };
  const event = (seq: number): AuditEvent => {
    const text = () => (Math.random() < 0.2 ? null : pick(strings));
    return {
      seq,
      time: new Date(1_700_000_000_000 + seq).toISOString(),
      actor: text(),
      actorId: text(),
      sessionId: text(),
      ip: text(),
      userAgent: text(),
      action: pick(strings),
      resource: text(),
      projectId: text(),
      outcome: pick(['allow', 'deny', 'error', 'success', 'failure'] as const),
      reason: text(),
      policyVersion: text(),
      requestId: text(),
      details: JSON.parse(JSON.stringify(Math.random() < 0.3 ? {} : (value(0) as object) ?? {})) as Record<string, unknown>,
    };
  };

  test('leaf bytes equal the RFC 8785 reference library, and eventLeafHash hashes them, on random events', () => {
    for (let i = 1; i <= 3000; i++) {
      const e = event(i);
      const reference = Buffer.from(canonicalize(leafFields(e)) ?? '', 'utf8');
      assert.ok(eventLeafData(e).equals(reference), `event ${JSON.stringify(e)}`);
      assert.ok(eventLeafHash(e).equals(merkle.leafHash(reference)), `event ${JSON.stringify(e)}`);
    }
  });

  test('an event that cannot be canonicalized is refused by both', () => {
    const e = { ...event(1), reason: 'lone \ud800 surrogate' };
    assert.throws(() => eventLeafData(e));
    assert.throws(() => eventLeafHash(e));
  });

  test('the frontier root equals the RFC 6962 root at every size', () => {
    const leaves = Array.from({ length: 300 }, () => randomBytes(32));
    const f = new LogFrontier();
    assert.ok(f.root().equals(merkle.EMPTY_ROOT));
    leaves.forEach((leaf, i) => {
      f.append(leaf);
      assert.ok(f.root().equals(merkle.rootFromLeafHashes(leaves.slice(0, i + 1))), `size ${i + 1}`);
    });
  });
});

/** Some state-changing requests, allowed and denied, from several users. */
async function activity(w: World, tag: string): Promise<void> {
  const eng = w.as['ml-engineer'];
  await expectOk(await eng.post('/v1/projects/fraud/models', { name: `churn-${tag}` }));
  await expectOk(await eng.post(`/v1/projects/fraud/models/churn-${tag}/versions`, {}));
  // a denial is an event too (and the one an insider would most like to rewrite)
  const denied = await w.as.viewer.post('/v1/projects/fraud/models', { name: `nope-${tag}` });
  assert.equal(denied.status, 403);
  await expectOk(await w.admin.post('/v1/projects', { name: `proj-${tag}` }));
}

async function counts(place: Place): Promise<{ events: number; heads: number[] }> {
  return withDb(place, async (db) => {
    const events = await db.selectFrom('audit_events').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const heads = await db.selectFrom('audit_tree_heads').select('tree_size').orderBy('tree_size', 'asc').execute();
    return { events: Number(events.n), heads: heads.map((h) => Number(h.tree_size)) };
  });
}

const storeOpts = (p: Place) => ({ dataDir: p.dataDir, ...(p.databaseUrl ? { databaseUrl: p.databaseUrl } : {}) });

for (const backend of BACKENDS) {
  // Each test tampers with its own copy of the log: they run side by side.
  describe(`audit verify after tampering in the database (${backend})`, { concurrency: true }, () => {
    let root = '';
    let base: Place | undefined;
    let pin: Pin;
    let size = 0;
    /** Signed sizes: one mid-way, one at shutdown. */
    let heads: number[] = [];

    before(async () => {
      root = tempRoot('mk-audit-verify-');
      base = await newPlace(backend, root);
      const w = await world(backend, storeOpts(base));
      try {
        await activity(w, 'a');
        assert.ok(await w.server.services.auditTree.signNow());
        await activity(w, 'b');
      } finally {
        await w.server.close(); // signs a last head
      }
      pin = pinKey(base.dataDir, root);
      const c = await counts(base);
      size = c.events;
      heads = c.heads;
      assert.ok(heads.length >= 2, `expected two signed heads, got ${heads.join(',')}`);
      assert.equal(heads.at(-1), size, 'the head signed at shutdown covers every event');
    });
    after(async () => {
      await base?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    /** Tampers with a copy of the log; the in-process verifier and the CLI must both name `kinds` at `seq`. */
    async function expectDetected(tamper: (p: Place) => Promise<void>, kinds: readonly string[], seq: number | ((p: Place) => number)): Promise<void> {
      assert.ok(base);
      const place = await clonePlace(base, root);
      try {
        await tamper(place);
        const want = typeof seq === 'number' ? seq : seq(place);
        const r = await verifyPlace(place, pin);
        assert.equal(r.ok, false, `the verifier passed a tampered log: ${describeResult(r)}`);
        if (r.ok) return;
        assert.ok(kinds.includes(r.kind), `kind ${r.kind}, want ${kinds.join('|')}: ${describeResult(r)}`);
        assert.equal(r.firstBadSeq, want, describeResult(r));

        const cli = await runCli(['audit', 'verify', ...storeArgs(place), '--public-key', pin.file]);
        assert.equal(cli.code, 7, show(cli));
        const named = namedFailure(cli);
        assert.ok(named, show(cli));
        assert.equal(named.seq, want, show(cli));
        assert.ok(kinds.includes(named.kind), show(cli));
      } finally {
        await place.drop();
      }
    }

    test('an untampered log verifies (in-process and CLI, exit 0)', async () => {
      assert.ok(base);
      const r = await verifyPlace(base, pin);
      assert.ok(r.ok, describeResult(r));
      assert.equal(r.events, size);
      assert.equal(r.verifiedSize, size);
      const cli = await runCli(['audit', 'verify', ...storeArgs(base), '--public-key', pin.file]);
      assert.equal(cli.code, 0, show(cli));
      assert.match(cli.stdout, /^audit log verified: /);
      const json = await runCli(['audit', 'verify', ...storeArgs(base), '--public-key', pin.file, '--json']);
      assert.equal(json.code, 0, show(json));
      const body = JSON.parse(json.stdout) as { ok: boolean; events: number; keyPinned: boolean };
      assert.deepEqual([body.ok, body.events, body.keyPinned], [true, size, true]);
    });

    test('an edited event (UPDATE of one field) is named as modified at its seq', async () => {
      let k = 0;
      await expectDetected(
        (p) =>
          withDb(p, async (db) => {
            // the insider turns the last denial into an allow
            const deny = await db.selectFrom('audit_events').select('seq').where('outcome', '=', 'deny').orderBy('seq', 'desc').executeTakeFirstOrThrow();
            k = Number(deny.seq);
            await db.updateTable('audit_events').set({ outcome: 'allow' }).where('seq', '=', k).execute();
          }),
        ['modified'],
        () => k,
      );
    });

    test('a deleted event is named as missing at its seq', async () => {
      const k = Math.floor(size / 2);
      await expectDetected((p) => withDb(p, (db) => db.deleteFrom('audit_events').where('seq', '=', k).execute().then(() => {})), ['missing'], k);
    });

    test('two swapped events are named at the lower seq', async () => {
      const i = heads[0]! - 2;
      const j = i + 3;
      await expectDetected(
        (p) =>
          withDb(p, async (db) => {
            await db.updateTable('audit_events').set({ seq: 1_000_000 }).where('seq', '=', i).execute();
            await db.updateTable('audit_events').set({ seq: i }).where('seq', '=', j).execute();
            await db.updateTable('audit_events').set({ seq: j }).where('seq', '=', 1_000_000).execute();
          }),
        ['reordered', 'modified'],
        i,
      );
    });

    test('a truncated tail (last rows deleted, counter reset) is named as truncated', async () => {
      const keep = size - 3;
      await expectDetected(
        (p) =>
          withDb(p, async (db) => {
            await db.deleteFrom('audit_events').where('seq', '>', keep).execute();
            await db.updateTable('audit_head').set({ next_seq: keep + 1 }).where('id', '=', 1).execute();
          }),
        ['truncated'],
        keep + 1,
      );
    });

    test('a replaced signing key with every head re-signed is caught when the original key is pinned', async () => {
      assert.ok(base);
      const place = await clonePlace(base, root);
      try {
        const { privateKey, publicKey } = generateKeyPairSync('ed25519');
        const keyId = keyIdOf(publicKey);
        writeFileSync(join(place.dataDir, 'audit-signing-key.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
        await withDb(place, async (db) => {
          // with a key of their own, an insider could sign any history: re-sign every head
          for (const s of heads) {
            const h = await db.selectFrom('audit_tree_heads').selectAll().where('tree_size', '=', s).executeTakeFirstOrThrow();
            const resigned = signTreeHead({ treeSize: s, rootHash: h.root_hash, timestamp: h.timestamp, keyId }, privateKey);
            await db.updateTable('audit_tree_heads').set({ key_id: keyId, signature: resigned.signature }).where('tree_size', '=', s).execute();
          }
        });
        const r = await verifyPlace(place, pin);
        assert.equal(r.ok, false, describeResult(r));
        if (!r.ok) assert.deepEqual([r.kind, r.firstBadSeq], ['unknown-key', 1], describeResult(r));
        const cli = await runCli(['audit', 'verify', ...storeArgs(place), '--public-key', pin.file]);
        assert.equal(cli.code, 7, show(cli));
        assert.deepEqual(namedFailure(cli), { seq: 1, kind: 'unknown-key' }, show(cli));
        // Unpinned, the verifier trusts the replaced key in the data folder, and says so.
        const unpinned = await runCli(['audit', 'verify', ...storeArgs(place), '--data-dir', place.dataDir]);
        assert.match(unpinned.stdout + unpinned.stderr, /not pinned/i, show(unpinned));
      } finally {
        await place.drop();
      }
    });
  });

  describe(`audit verify with a witness catches a rollback to an older copy (${backend})`, () => {
    let root = '';
    let place: Place | undefined;

    before(() => {
      root = tempRoot('mk-audit-rollback-');
    });
    after(async () => {
      await place?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    test('the witnessed size beyond the restored log is named as rollback', async () => {
      place = await newPlace(backend, root);
      const witnessDir = mkdtempSync(join(root, 'witness-'));
      const witnessFile = join(witnessDir, WITNESS_FILE);
      const config = { audit: { witnessDirs: [witnessDir] } };
      const w = await world(backend, { ...storeOpts(place), config });
      try {
        await activity(w, 'a');
      } finally {
        await w.server.close();
      }
      const pin = pinKey(place.dataDir, root);
      const old = await counts(place);
      // The backup: for SQLite a copy of the database files taken while the server is down.
      const backup = mkdtempSync(join(root, 'backup-'));
      if (backend === 'sqlite') for (const f of readdirSync(place.dataDir).filter((n) => n.startsWith('modelkeep.db'))) copyFileSync(join(place.dataDir, f), join(backup, f));

      // The server runs on and writes more; the witness sees the larger heads.
      const again = await startTestServer(backend, { ...storeOpts(place), config });
      try {
        const admin = new Client(again.url);
        await expectOk(await admin.login('admin'));
        await expectOk(await admin.post('/v1/projects', { name: 'later' }));
      } finally {
        await again.close();
      }
      const newer = await counts(place);
      assert.ok(newer.events > old.events);

      // Restore the older copy.
      if (backend === 'sqlite') {
        for (const f of readdirSync(place.dataDir).filter((n) => n.startsWith('modelkeep.db'))) rmSync(join(place.dataDir, f));
        for (const f of readdirSync(backup)) copyFileSync(join(backup, f), join(place.dataDir, f));
      } else {
        const n = old.events;
        await withDb(place, async (db) => {
          await db.deleteFrom('audit_events').where('seq', '>', n).execute();
          await sql`delete from audit_nodes where (idx + 1) * power(2, level) > ${n}`.execute(db);
          await db.deleteFrom('audit_tree_heads').where('tree_size', '>', n).execute();
          await db.updateTable('audit_head').set({ next_seq: n + 1 }).where('id', '=', 1).execute();
        });
      }
      assert.deepEqual(await counts(place), old);
      assert.ok(existsSync(witnessFile));

      // Without the witness the restored copy is self-consistent: nothing inside it is wrong.
      const alone = await verifyPlace(place, pin);
      assert.ok(alone.ok, describeResult(alone));
      const r = await verifyPlace(place, pin, [witnessFile]);
      assert.equal(r.ok, false, describeResult(r));
      if (!r.ok) assert.deepEqual([r.kind, r.firstBadSeq], ['rollback', old.events + 1], describeResult(r));
      const cli = await runCli(['audit', 'verify', ...storeArgs(place), '--public-key', pin.file, '--witness', witnessFile]);
      assert.equal(cli.code, 7, show(cli));
      assert.deepEqual(namedFailure(cli), { seq: old.events + 1, kind: 'rollback' }, show(cli));
    });
  });

  describe(`audit verify --url against a running server (${backend})`, () => {
    let root = '';
    let place: Place | undefined;
    let w: World | undefined;

    before(async () => {
      root = tempRoot('mk-audit-online-');
      place = await newPlace(backend, root);
      w = await world(backend, storeOpts(place));
      await activity(w, 'a');
      assert.ok(await w.server.services.auditTree.signNow());
      await activity(w, 'b');
      assert.ok(await w.server.services.auditTree.signNow());
      const login = await runCli(['login', '--server', w.server.url, '--username', 'admin', '--password-stdin'], { configDir: join(root, 'cli-config'), input: `${PASSWORD}\n` });
      assert.equal(login.code, 0, show(login));
    });
    after(async () => {
      await w?.server.close();
      await place?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    test('audit export streams every event as a JSON line with its leafIndex, and the lines reproduce the signed root', async () => {
      assert.ok(w);
      const configDir = join(root, 'cli-config');
      const out = join(root, 'export.jsonl');
      const r = await runCli(['audit', 'export', '--server', w.server.url, '--format', 'jsonl', '--out', out], { configDir });
      assert.equal(r.code, 0, show(r));
      assert.equal(statSync(out).mode & 0o777, 0o600);
      const lines = readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEvent & { leafIndex: number });
      assert.deepEqual(
        lines.map((l) => [l.seq, l.leafIndex]),
        lines.map((_, i) => [i + 1, i]),
      );
      const head = await json<TreeHead>(await expectOk(await fetch(`${w.server.url}/v1/audit/tree-head`)));
      assert.ok(lines.length >= head.treeSize);
      const f = new LogFrontier();
      for (const { leafIndex: _, ...e } of lines.slice(0, head.treeSize)) f.append(eventLeafHash(e));
      assert.equal(f.root().toString('hex'), head.rootHash);

      const tail = await runCli(['audit', 'export', '--server', w.server.url, '--after', '5'], { configDir });
      assert.equal(tail.code, 0, show(tail));
      assert.equal((JSON.parse(tail.stdout.split('\n')[0] ?? '') as { seq: number; leafIndex: number }).leafIndex, 5);
      const csv = await runCli(['audit', 'export', '--server', w.server.url, '--format', 'csv'], { configDir });
      assert.equal(csv.code, 2, show(csv));
    });

    test('an untampered server verifies; after an UPDATE in its database it fails with exit 7', async () => {
      assert.ok(w && place);
      const configDir = join(root, 'cli-config');
      const pin = pinKey(place.dataDir, root);

      const ok = await runCli(['audit', 'verify', '--url', w.server.url, '--public-key', pin.file], { configDir });
      assert.equal(ok.code, 0, show(ok));
      assert.match(ok.stdout, /^audit log verified: /);

      // Without --public-key the first run pins the server's key and says so.
      const first = await runCli(['audit', 'verify', '--url', w.server.url], { configDir });
      assert.equal(first.code, 0, show(first));
      assert.match(first.stdout + first.stderr, /not pinned/i);

      const k = 4;
      await withDb(place, (db) => db.updateTable('audit_events').set({ action: 'session.nothing' }).where('seq', '=', k).execute().then(() => {}));
      const bad = await runCli(['audit', 'verify', '--url', w.server.url, '--public-key', pin.file], { configDir });
      assert.equal(bad.code, 7, show(bad));
      const named = namedFailure(bad);
      assert.ok(named, show(bad));
      assert.equal(named.kind, 'modified', show(bad));
      assert.ok(named.seq <= k, show(bad));
    });
  });
}


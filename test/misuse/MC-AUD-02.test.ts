// MC-AUD-02 — truncation, rollback or fork. The database is restored to an older copy
// while a file witness keeps the heads it saw; the restarted server then signs a smaller
// head (rollback), a head of the witnessed size with another root (fork) and a larger head
// that does not extend the witnessed one. The witness refuses each and an
// `audit-witness-disagreement` alert is stored; a client holding the old
// STH(n) gets no consistency proof it can verify to the new STH(m), and none at all
// from a larger to a smaller size; the verifier with the witness file names the fork.
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { merkle, readWitnessFile, type TreeHead, WITNESS_FILE } from '../../src/audit/index.ts';
import { sql } from '../../src/storage/index.ts';
import { describeResult, namedFailure, newPlace, type Pin, type Place, pinKey, runCli, show, storeArgs, tempRoot, verifyPlace, withDb } from '../audit/fixtures.ts';
import { BACKENDS, Client, expectOk, json, startTestServer, type TestServer, world } from '../helpers/server.ts';

const hex = (h: string) => Buffer.from(h, 'hex');

async function alerts(place: Place): Promise<{ kind: unknown; treeSize: unknown }[]> {
  return withDb(place, async (db) => {
    const rows = await db.selectFrom('audit_alerts').selectAll().where('rule', '=', 'audit-witness-disagreement').orderBy('created_at', 'asc').execute();
    return rows.map((r) => {
      const d = JSON.parse(r.details) as Record<string, unknown>;
      return { kind: d.kind, treeSize: d.treeSize };
    });
  });
}

for (const backend of BACKENDS) {
  describe(`MC-AUD-02 rollback and fork against a file witness (${backend})`, () => {
    let root = '';
    let place: Place;
    let witnessFile = '';
    let config: { audit: { witnessDirs: string[] } };
    let pin: Pin;
    /** The size of the restored copy, and the largest head the witness saw before the restore. */
    let old = 0;
    let witnessed: TreeHead;
    let server: TestServer | undefined;

    before(async () => {
      root = tempRoot('mk-aud02-');
      place = await newPlace(backend, root);
      const witnessDir = mkdtempSync(join(root, 'witness-'));
      witnessFile = join(witnessDir, WITNESS_FILE);
      config = { audit: { witnessDirs: [witnessDir] } };
      const store = { dataDir: place.dataDir, ...(place.databaseUrl ? { databaseUrl: place.databaseUrl } : {}) };

      const w = await world(backend, { ...store, config });
      await w.server.close();
      pin = pinKey(place.dataDir, root);
      old = await withDb(place, async (db) => Number((await db.selectFrom('audit_head').select('next_seq').executeTakeFirstOrThrow()).next_seq) - 1);
      const backup = mkdtempSync(join(root, 'backup-'));
      const dbFiles = (dir: string) => readdirSync(dir).filter((n) => n.startsWith('modelkeep.db'));
      if (backend === 'sqlite') for (const f of dbFiles(place.dataDir)) copyFileSync(join(place.dataDir, f), join(backup, f));

      // History moves on and the witness sees it.
      const s = await startTestServer(backend, { ...store, config });
      try {
        const admin = new Client(s.url);
        await expectOk(await admin.login('admin'));
        for (let i = 0; i < 6; i++) await expectOk(await admin.post('/v1/projects', { name: `p${i}` }));
      } finally {
        await s.close();
      }
      witnessed = readWitnessFile(witnessFile).at(-1)!;
      assert.ok(witnessed.treeSize >= old + 6, `witness holds ${witnessed.treeSize}, log was ${old}`);

      // The insider restores the older copy.
      if (backend === 'sqlite') {
        for (const f of dbFiles(place.dataDir)) rmSync(join(place.dataDir, f));
        for (const f of readdirSync(backup)) copyFileSync(join(backup, f), join(place.dataDir, f));
      } else {
        await withDb(place, async (db) => {
          await db.deleteFrom('audit_events').where('seq', '>', old).execute();
          await sql`delete from audit_nodes where (idx + 1) * power(2, level) > ${old}`.execute(db);
          await db.deleteFrom('audit_tree_heads').where('tree_size', '>', old).execute();
          await db.updateTable('audit_head').set({ next_seq: old + 1 }).where('id', '=', 1).execute();
        });
      }
      // Heads are signed only when a test asks (no timer), so each alert is the test's own.
      server = await startTestServer(backend, { ...store, config: { audit: { ...config.audit, treeHeadIntervalMs: 3_600_000 } } });
    });
    after(async () => {
      await server?.close();
      await place?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    test('a smaller head is refused by the witness and raises audit-witness-disagreement', async () => {
      assert.ok(server);
      const before = readFileSync(witnessFile, 'utf8');
      const admin = new Client(server.url);
      await expectOk(await admin.login('admin'));
      const head = await server.services.auditTree.signNow();
      assert.ok(head && head.treeSize > old && head.treeSize < witnessed.treeSize, `head ${head?.treeSize}`);
      assert.equal(readFileSync(witnessFile, 'utf8'), before, 'the witness must not record the smaller head');
      assert.deepEqual(await alerts(place), [{ kind: 'rollback', treeSize: head.treeSize }]);
    });

    test('a head for the witnessed size with another root (fork), and one that does not extend it, are refused with alerts', async () => {
      assert.ok(server);
      const s = server;
      const before = readFileSync(witnessFile, 'utf8');
      // One event at a time (an operator action recorded in-process) to land on the witnessed size exactly.
      const grow = async () => {
        await s.services.audit.record(
          { requestId: 'req_mc_aud_02', principal: { kind: 'operator', id: 'operator', username: 'operator' }, ip: null, userAgent: null, now: new Date() },
          { action: 'operator.note', outcome: 'success' },
        );
      };
      while ((await s.services.auditTree.size()) < witnessed.treeSize) await grow();
      const fork = await s.services.auditTree.signNow();
      assert.ok(fork && fork.treeSize === witnessed.treeSize && fork.rootHash !== witnessed.rootHash);

      await grow();
      const head = await s.services.auditTree.signNow();
      assert.ok(head && head.treeSize === witnessed.treeSize + 1);
      assert.equal(readFileSync(witnessFile, 'utf8'), before, 'the witness must record neither head');
      const got = await alerts(place);
      assert.deepEqual(got.slice(1), [
        { kind: 'fork', treeSize: witnessed.treeSize },
        { kind: 'inconsistent', treeSize: head.treeSize },
      ]);

      // A client holding the witnessed STH(n) asks for a proof to the new STH(m): it does not verify.
      const admin = new Client(s.url);
      await expectOk(await admin.login('admin'));
      const r = await expectOk(await admin.get(`/v1/audit/proofs/consistency?first=${witnessed.treeSize}&second=${head.treeSize}`));
      const { proof } = await json<{ proof: string[] }>(r);
      assert.equal(merkle.verifyConsistency(witnessed.treeSize, head.treeSize, hex(witnessed.rootHash), hex(head.rootHash), proof.map(hex)), false);
    });

    test('no consistency proof goes from a larger to a smaller size', async () => {
      assert.ok(server);
      const admin = new Client(server.url);
      await expectOk(await admin.login('admin'));
      const heads = (await json<{ treeHeads: TreeHead[] }>(await admin.get('/v1/audit/tree-heads'))).treeHeads;
      const small = heads.find((h) => h.treeSize >= 2 && h.treeSize <= old);
      const large = heads.at(-1);
      assert.ok(small && large && small.treeSize < large.treeSize);
      // the server refuses to make one
      const refused = await admin.get(`/v1/audit/proofs/consistency?first=${large.treeSize}&second=${small.treeSize}`);
      assert.equal(refused.status, 422);
      // and no proof, not even the genuine one for the other direction, verifies backwards
      const forward = (await json<{ proof: string[] }>(await admin.get(`/v1/audit/proofs/consistency?first=${small.treeSize}&second=${large.treeSize}`))).proof.map(hex);
      assert.ok(merkle.verifyConsistency(small.treeSize, large.treeSize, hex(small.rootHash), hex(large.rootHash), forward));
      for (const p of [forward, [], [hex(small.rootHash)]]) {
        assert.equal(merkle.verifyConsistency(large.treeSize, small.treeSize, hex(large.rootHash), hex(small.rootHash), p), false);
      }
    });

    test('the verifier with the witness file names the split view', async () => {
      assert.ok(server);
      await server.close();
      server = undefined;
      const alone = await verifyPlace(place, pin);
      assert.ok(alone.ok, `without its witness the rewritten log is self-consistent: ${describeResult(alone)}`);
      const r = await verifyPlace(place, pin, [witnessFile]);
      assert.equal(r.ok, false, describeResult(r));
      if (!r.ok) assert.equal(r.kind, 'fork', describeResult(r));
      const cli = await runCli(['audit', 'verify', ...storeArgs(place), '--public-key', pin.file, '--witness', witnessFile]);
      assert.equal(cli.code, 7, show(cli));
      assert.equal(namedFailure(cli)?.kind, 'fork', show(cli));
    });
  });
}

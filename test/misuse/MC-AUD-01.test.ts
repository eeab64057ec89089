// MC-AUD-01 — entry deletion or modification. An insider with database access UPDATEs one
// audit row and DELETEs another under a running server, then asks the API for the
// inclusion proof of the edited entry and recomputes the root: the proof no longer leads
// from the event to the signed tree head, and the verifier names both rows. Rewriting the
// stored leaf hash as well does not help: the signed root still disagrees. The API offers
// no way to update or delete an event.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type AuditEvent, eventLeafHash, merkle, type TreeHead, toEvent } from '../../src/audit/index.ts';
import { describeResult, namedFailure, newPlace, type Pin, type Place, pinKey, runCli, show, storeArgs, tempRoot, verifyPlace, withDb } from '../audit/fixtures.ts';
import { BACKENDS, expectOk, json, type World, world } from '../helpers/server.ts';

async function eventAt(w: World, seq: number): Promise<AuditEvent> {
  const body = await json<{ events: AuditEvent[] }>(await expectOk(await w.admin.get(`/v1/audit/events?after=${seq - 1}&limit=1`)));
  const e = body.events[0];
  assert.ok(e && e.seq === seq, `event ${seq} not served: ${JSON.stringify(body)}`);
  return e;
}

/** Does the server's inclusion proof lead from this event, as served now, to the signed root? */
async function proves(w: World, e: AuditEvent, head: TreeHead): Promise<boolean> {
  const r = await expectOk(await w.admin.get(`/v1/audit/proofs/inclusion?seq=${e.seq}&treeSize=${head.treeSize}`));
  const { leafIndex, auditPath } = await json<{ leafIndex: number; auditPath: string[] }>(r);
  assert.equal(leafIndex, e.seq - 1);
  return merkle.verifyInclusion(
    eventLeafHash(e),
    leafIndex,
    head.treeSize,
    auditPath.map((h) => Buffer.from(h, 'hex')),
    Buffer.from(head.rootHash, 'hex'),
  );
}

for (const backend of BACKENDS) {
  describe(`MC-AUD-01 an insider edits or deletes audit rows (${backend})`, () => {
    let root = '';
    let place: Place | undefined;
    let w: World | undefined;
    let pin: Pin;
    let head: TreeHead;

    before(async () => {
      root = tempRoot('mk-aud01-');
      place = await newPlace(backend, root);
      w = await world(backend, { dataDir: place.dataDir, ...(place.databaseUrl ? { databaseUrl: place.databaseUrl } : {}) });
      await expectOk(await w.as['ml-engineer'].post('/v1/projects/fraud/models', { name: 'churn' }));
      const denied = await w.as.viewer.post('/v1/projects/fraud/models', { name: 'nope' });
      assert.equal(denied.status, 403);
      const signed = await w.server.services.auditTree.signNow();
      assert.ok(signed);
      head = signed;
      pin = pinKey(place.dataDir, root);
    });
    after(async () => {
      await w?.server.close();
      await place?.drop();
      if (root) rmSync(root, { recursive: true, force: true });
    });

    test('the API has no route that updates or deletes an event', async () => {
      assert.ok(w);
      const seq = 3;
      const before = await eventAt(w, seq);
      for (const [method, path] of [
        ['DELETE', `/v1/audit/events/${seq}`],
        ['PUT', `/v1/audit/events/${seq}`],
        ['PATCH', `/v1/audit/events/${seq}`],
        ['DELETE', '/v1/audit/events'],
        ['POST', '/v1/audit/events'],
        ['PUT', '/v1/audit/tree-head'],
        ['DELETE', '/v1/audit/tree-heads'],
      ] as const) {
        const r = await w.admin.req(method, path, method === 'DELETE' ? undefined : { outcome: 'allow' });
        assert.ok(r.status === 404 || r.status === 405, `${method} ${path} answered ${r.status}`);
      }
      assert.deepEqual(await eventAt(w, seq), before);
    });

    test('an UPDATEd row breaks its inclusion proof; a DELETEd row is named missing; the verifier names both', async () => {
      assert.ok(w && place);
      const denial = await withDb(place, (db) =>
        db.selectFrom('audit_events').select('seq').where('outcome', '=', 'deny').where('seq', '<=', head.treeSize).orderBy('seq', 'desc').executeTakeFirstOrThrow(),
      );
      const k = Number(denial.seq);
      const m = k - 2;
      const originals = await withDb(place, (db) => db.selectFrom('audit_events').selectAll().where('seq', 'in', [k, m]).execute());
      const control = await eventAt(w, 1);
      assert.ok(await proves(w, control, head), 'an untouched event is proven by the signed root');
      assert.ok(await proves(w, await eventAt(w, k), head), 'so is the denial before the edit');

      // The insider turns the denial into an allow and removes an earlier row.
      await withDb(place, async (db) => {
        await db.updateTable('audit_events').set({ outcome: 'allow', reason: 'role ml-engineer' }).where('seq', '=', k).execute();
        await db.deleteFrom('audit_events').where('seq', '=', m).execute();
      });
      const edited = await eventAt(w, k);
      assert.equal(edited.outcome, 'allow');
      assert.equal(await proves(w, edited, head), false, 'the edited event must not be proven by the signed root');
      assert.ok(await proves(w, control, head));

      const r = await verifyPlace(place, pin);
      assert.equal(r.ok, false, describeResult(r));
      if (r.ok) return;
      assert.deepEqual([r.kind, r.firstBadSeq], ['missing', m], describeResult(r));
      assert.ok(r.failures.some((f) => f.kind === 'modified' && f.seq === k), describeResult(r));
      const cli = await runCli(['audit', 'verify', ...storeArgs(place), '--public-key', pin.file]);
      assert.equal(cli.code, 7, show(cli));
      assert.deepEqual(namedFailure(cli), { seq: m, kind: 'missing' }, show(cli));

      // Put both rows back exactly: the log verifies again.
      await withDb(place, async (db) => {
        for (const row of originals) {
          await db.deleteFrom('audit_events').where('seq', '=', row.seq).execute();
          await db.insertInto('audit_events').values(row).execute();
        }
      });
      const restored = await verifyPlace(place, pin);
      assert.ok(restored.ok, describeResult(restored));
    });

    test('an edit that also rewrites the stored leaf hash is still caught by the signed root', async () => {
      assert.ok(w && place);
      const k = 3;
      await withDb(place, async (db) => {
        await db.updateTable('audit_events').set({ ip: '203.0.113.9' }).where('seq', '=', k).execute();
        const row = await db.selectFrom('audit_events').selectAll().where('seq', '=', k).executeTakeFirstOrThrow();
        // audit_nodes now agrees with the edited row; only the signed root remembers
        await db.updateTable('audit_nodes').set({ hash: eventLeafHash(toEvent(row)).toString('hex') }).where('level', '=', 0).where('idx', '=', k - 1).execute();
      });
      const r = await verifyPlace(place, pin);
      assert.equal(r.ok, false, describeResult(r));
      if (r.ok) return;
      assert.equal(r.kind, 'modified', describeResult(r));
      assert.ok(r.firstBadSeq <= k, describeResult(r));
      assert.match(r.message, /root/, describeResult(r));
      const cli = await runCli(['audit', 'verify', ...storeArgs(place), '--public-key', pin.file]);
      assert.equal(cli.code, 7, show(cli));
    });
  });
}

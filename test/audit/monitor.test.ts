// MC-AUD-01 "a monitor alarms": before each tree head is signed, the server checks that
// the stored tree still extends the last signed head, re-hashes the events since then and
// a rolling window of older ones. An insider's UPDATE raises a high alert and no head is
// signed over the tampered rows.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { sql } from '../../src/storage/index.ts';
import { BACKENDS, type World, world } from '../helpers/server.ts';

for (const backend of BACKENDS) {
  describe(`audit self-check monitor (${backend})`, () => {
    let w: World;
    before(async () => {
      w = await world(backend, { config: { audit: { treeHeadIntervalMs: 3_600_000 } } });
    });
    after(() => w.server.close());

    const tamperAlerts = () =>
      w.server.services.db.kysely.selectFrom('audit_alerts').selectAll().where('rule', '=', 'audit-tamper').execute();
    const k = () => w.server.services.db.kysely;

    test('an untampered log is signed and raises nothing', async () => {
      const head = await w.server.services.auditTree.signNow();
      assert.ok(head && head.treeSize > 10);
      assert.deepEqual(await tamperAlerts(), []);
    });

    test('an UPDATE of a signed event raises audit-tamper naming it, and no head is signed over it', async () => {
      const signed = await w.server.services.auditTree.latestHead();
      assert.ok(signed);
      const original = await k().selectFrom('audit_events').select('reason').where('seq', '=', 5).executeTakeFirstOrThrow();
      await sql`UPDATE audit_events SET reason = 'nothing to see' WHERE seq = 5`.execute(k());
      assert.equal((await w.admin.get('/v1/projects')).status, 200); // the log grows
      assert.equal(await w.server.services.auditTree.signNow(), null, 'no head over tampered rows');
      const alerts = await tamperAlerts();
      assert.equal(alerts.length, 1);
      assert.equal(alerts[0]?.severity, 'high');
      assert.equal(Number(alerts[0]?.event_seq), 5);
      assert.equal((await w.server.services.auditTree.latestHead())?.treeSize, signed.treeSize);
      // A second cycle does not duplicate the alert.
      assert.equal(await w.server.services.auditTree.signNow(), null);
      assert.equal((await tamperAlerts()).length, 1);
      // Put the row back as it was: the log verifies and is signed again.
      await k().updateTable('audit_events').set({ reason: original.reason }).where('seq', '=', 5).execute();
      const next = await w.server.services.auditTree.signNow();
      assert.ok(next && next.treeSize > signed.treeSize);
    });

    test('thousands of new events are re-hashed in chunks before signing: a changed one among them is found, and nothing is signed', async () => {
      await k().deleteFrom('audit_alerts').execute();
      const signed = await w.server.services.auditTree.latestHead();
      assert.ok(signed);
      const ctx = { requestId: 'req_chunks', principal: { kind: 'anonymous' as const }, ip: '127.0.0.1', userAgent: null, now: new Date() };
      await Promise.all(Array.from({ length: 2500 }, (_, i) => w.server.services.audit.record(ctx, { action: 'test.chunk', outcome: 'success', details: { i } })));
      const victim = signed.treeSize + 1700; // in the second chunk of 1,000
      const original = await k().selectFrom('audit_events').select('details').where('seq', '=', victim).executeTakeFirstOrThrow();
      await sql`UPDATE audit_events SET details = '{"i":-1}' WHERE seq = ${victim}`.execute(k());
      assert.equal(await w.server.services.auditTree.signNow(), null, 'no head over a changed row');
      const alerts = await tamperAlerts();
      assert.equal(alerts.length, 1);
      assert.equal(Number(alerts[0]?.event_seq), victim);
      assert.equal((await w.server.services.auditTree.latestHead())?.treeSize, signed.treeSize);
      await k().updateTable('audit_events').set({ details: original.details }).where('seq', '=', victim).execute();
      const next = await w.server.services.auditTree.signNow();
      assert.ok(next && next.treeSize >= signed.treeSize + 2500, 'signed again once the row is restored');
    });

    test('a rewritten stored tree no longer extends the signed head', async () => {
      await k().deleteFrom('audit_alerts').execute();
      // Rewriting history means rewriting the subtree that the signed root is made of.
      const top = await k().selectFrom('audit_nodes').select((eb) => eb.fn.max('level').as('level')).executeTakeFirstOrThrow();
      await sql`UPDATE audit_nodes SET hash = ${'00'.repeat(32)} WHERE level = ${Number(top.level)} AND idx = 0`.execute(k());
      assert.equal((await w.admin.get('/v1/projects')).status, 200); // the log grows
      assert.equal(await w.server.services.auditTree.signNow(), null);
      const alerts = await tamperAlerts();
      assert.equal(alerts.length, 1);
      assert.match(alerts[0]?.summary ?? '', /no longer matches the signed head/);
    });
  });
}

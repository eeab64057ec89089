// Group commit of audit.record(): a burst of events recorded by concurrent requests is
// appended in one transaction, in order, each caller answered only after the commit; an
// event that cannot be written fails alone, the others of its batch are still written;
// the log verifies. Real SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { type AuditInput, AuditLog, merkle, readNode, toEvent } from '../../src/audit/index.ts';
import { eventLeafHash } from '../../src/audit/verifier.ts';
import type { RequestContext } from '../../src/core/index.ts';
import { ModelkeepError } from '../../src/core/index.ts';
import { type Db, openDatabase } from '../../src/storage/index.ts';
import { BACKENDS } from '../helpers/server.ts';
import { newPlace, type Place, tempRoot } from './fixtures.ts';

const ctx = (i: number): RequestContext => ({
  requestId: `req_burst_${i}`,
  principal: { kind: 'anonymous' },
  ip: '127.0.0.1',
  userAgent: 'group-commit-test',
  now: new Date(),
});
const input = (i: number): AuditInput => ({ action: 'test.burst', outcome: 'success', resource: `thing:${i}`, details: { i } });

for (const backend of BACKENDS) {
  describe(`audit group commit (${backend})`, () => {
    let root = '';
    let place: Place;
    let db: Db;
    before(async () => {
      root = tempRoot('mk-group-commit-');
      place = await newPlace(backend, root);
      db = await openDatabase({ dataDir: place.dataDir, databaseUrl: place.databaseUrl });
    });
    after(async () => {
      await db.close();
      await place.drop();
      rmSync(root, { recursive: true, force: true });
    });

    test('a burst of concurrent records shares commits, keeps its order and gap-free sequence numbers', async () => {
      const audit = new AuditLog(db.kysely);
      const seqs = await Promise.all(Array.from({ length: 60 }, (_, i) => audit.record(ctx(i), input(i))));
      // In order: the i-th call got the i-th sequence number, with no gap.
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], (seqs[0] as number) + i);
      const stats = audit.recordStats;
      assert.equal(stats.events, 60);
      assert.ok(stats.commits < 60, `${stats.commits} commits for 60 events: the burst was not grouped`);
      const rows = await db.kysely.selectFrom('audit_events').select(['seq', 'resource', 'request_id']).where('action', '=', 'test.burst').orderBy('seq').execute();
      assert.deepEqual(
        rows.map((r) => r.resource),
        Array.from({ length: 60 }, (_, i) => `thing:${i}`),
      );
      // One at a time, each record is its own commit (nothing waits for company).
      const before = audit.recordStats.commits;
      await audit.record(ctx(100), input(100));
      await audit.record(ctx(101), input(101));
      assert.equal(audit.recordStats.commits, before + 2);
    });

    test('an event that cannot be written fails alone; the rest of its batch is committed', async () => {
      const audit = new AuditLog(db.kysely);
      // A BigInt cannot be serialised: this event's append throws inside the batch.
      const bad: AuditInput = { action: 'test.bad', outcome: 'success', details: { n: 1n } };
      const results = await Promise.allSettled([audit.record(ctx(200), input(200)), audit.record(ctx(201), bad), audit.record(ctx(202), input(202))]);
      assert.equal(results[0]?.status, 'fulfilled');
      assert.equal(results[2]?.status, 'fulfilled');
      assert.equal(results[1]?.status, 'rejected');
      const reason = results[1]?.status === 'rejected' ? results[1].reason : null;
      assert.ok(reason instanceof ModelkeepError && reason.code === 'unavailable', String(reason));
      const written = await db.kysely.selectFrom('audit_events').select('resource').where('resource', 'in', ['thing:200', 'thing:202']).execute();
      assert.equal(written.length, 2);
      assert.equal((await db.kysely.selectFrom('audit_events').select('seq').where('action', '=', 'test.bad').execute()).length, 0);
    });

    test('a record made while another transaction is open waits for it and never joins it', async () => {
      const audit = new AuditLog(db.kysely);
      let recorded: Promise<number> | undefined;
      await assert.rejects(
        db.kysely.transaction().execute(async (tx) => {
          await audit.append(tx, ctx(800), input(800));
          recorded = audit.record(ctx(801), input(801));
          // The group commit runs meanwhile, finds the transaction open and waits its turn.
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('the change failed');
        }),
        /the change failed/,
      );
      const seq = await recorded;
      const kept = await db.kysely.selectFrom('audit_events').select(['seq', 'resource']).where('resource', 'in', ['thing:800', 'thing:801']).execute();
      assert.deepEqual(kept.map((r) => [Number(r.seq), r.resource]), [[seq, 'thing:801']]);
    });

    test('group commits interleaved with appends inside other transactions, a rolled-back one and a failed batch build the tree the events hash to', async () => {
      const audit = new AuditLog(db.kysely);
      const other = new AuditLog(db.kysely); // a second writer: another service, another process
      for (let round = 0; round < 12; round++) {
        await Promise.all(Array.from({ length: 1 + (round % 5) }, (_, i) => audit.record(ctx(300 + i), input(300 + round * 10 + i))));
        if (round % 3 === 0) await db.kysely.transaction().execute((tx) => audit.append(tx, ctx(400), input(400 + round)));
        if (round % 4 === 1) await other.record(ctx(500), input(500 + round));
        if (round % 5 === 2) {
          // A change that rolls back takes its event with it.
          await assert.rejects(
            db.kysely.transaction().execute(async (tx) => {
              await audit.append(tx, ctx(600), input(600 + round));
              throw new Error('the change failed');
            }),
            /the change failed/,
          );
        }
        if (round === 7) await Promise.allSettled([audit.record(ctx(700), { action: 'test.bad', outcome: 'success', details: { n: 2n } })]);
      }
      // Every stored node must be the hash of the events below it: the root read from the
      // stored nodes equals the root computed from the events themselves.
      const rows = await db.kysely.selectFrom('audit_events').selectAll().orderBy('seq').execute();
      const size = rows.length;
      assert.equal(Number(rows.at(-1)?.seq), size, 'sequence numbers are gap-free');
      const fromEvents = merkle.rootFromLeafHashes(rows.map((r) => eventLeafHash(toEvent(r))));
      const fromNodes = await merkle.rangeHash(0, size, (level, index) => readNode(db.kysely, level, index));
      assert.equal(fromNodes.toString('hex'), fromEvents.toString('hex'));
      const rolledBack = await db.kysely.selectFrom('audit_events').select('seq').where('resource', 'in', ['thing:602', 'thing:607']).execute();
      assert.equal(rolledBack.length, 0, 'rolled-back events are gone');
      assert.ok(rows.some((r) => r.resource === 'thing:409') && rows.some((r) => r.resource === 'thing:509'), 'the other writers were interleaved');
    });
  });
}

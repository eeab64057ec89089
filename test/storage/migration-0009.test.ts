// Migration 0009 re-keys the audit tree's nodes by (end_seq, level) and, on SQLite, makes
// audit_events.seq the rowid. A log written before it must come out whole: the same events,
// every node keyed by the append that completed it, the root from the stored nodes equal to
// the root of the events, and appends after the migration extending the same tree.
// Real SQLite and PostgreSQL; the database is brought to 0008 by the real migrations.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { AuditLog, eventRow, loadSigningKey, merkle, readNode, signTreeHead, toEvent } from '../../src/audit/index.ts';
import { eventLeafHash } from '../../src/audit/verifier.ts';
import type { RequestContext } from '../../src/core/index.ts';
import { type Database, type Db, migrations, openDatabase } from '../../src/storage/index.ts';
import { nodeSqliteDialect, openSqlite } from '../../src/storage/sqlite-dialect.ts';
import { newPlace, type Place, runCli, show, tempRoot } from '../audit/fixtures.ts';
import { BACKENDS } from '../helpers/server.ts';

const ctx = (i: number): RequestContext => ({
  requestId: `req_m${i}`,
  principal: { kind: 'user', id: 'usr_m', username: 'm', sessionId: 'ses_m', amr: ['pwd'], authTime: new Date(0), mfaAt: null, authMethod: 'session', scopes: null },
  ip: '127.0.0.1',
  userAgent: 'migration-test',
  now: new Date(Date.UTC(2026, 10, 27, 3, 0, i)),
});
const input = (i: number) => ({ action: 'model:read', outcome: 'allow' as const, resource: `model:fraud/m-${i}`, projectId: i % 2 ? 'prj_a' : null, details: { i } });

/** The database at migration 0008, holding `n` events and their nodes as 0002 laid them out. */
async function logBefore0009(place: Place, n: number): Promise<void> {
  const k = place.databaseUrl
    ? new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: place.databaseUrl, max: 1 }) }) })
    : new Kysely<Database>({ dialect: nodeSqliteDialect(openSqlite(join(place.dataDir, 'modelkeep.db'))) });
  try {
    await k.schema.createTable('modelkeep_migrations').addColumn('id', 'text', (c) => c.primaryKey()).addColumn('applied_at', 'text', (c) => c.notNull()).execute();
    const until = migrations.findIndex((m) => m.id === '0009-audit-append-layout');
    assert.ok(until > 0, 'migration 0009 is in the list');
    for (const m of migrations.slice(0, until)) {
      await k.transaction().execute(async (trx) => {
        await m.up(trx);
        await trx.insertInto('modelkeep_migrations').values({ id: m.id, applied_at: new Date().toISOString() }).execute();
      });
    }
    // The events, and every perfect subtree as (level, idx, hash) rows.
    const leaves: Buffer[] = [];
    const old = k as unknown as Kysely<{ audit_nodes: { level: number; idx: number; hash: string } }>;
    for (let seq = 1; seq <= n; seq++) {
      const row = eventRow(seq, ctx(seq), input(seq));
      await k.insertInto('audit_events').values(row).execute();
      leaves.push(eventLeafHash(toEvent(row)));
    }
    for (let level = 0; 2 ** level <= n; level++) {
      for (let idx = 0; (idx + 1) * 2 ** level <= n; idx++) {
        const hash = merkle.rootFromLeafHashes(leaves.slice(idx * 2 ** level, (idx + 1) * 2 ** level)).toString('hex');
        await old.insertInto('audit_nodes').values({ level, idx, hash }).execute();
      }
    }
    await k.updateTable('audit_head').set({ next_seq: n + 1 }).where('id', '=', 1).execute();
    // A head signed over them with the data dir's audit key, as the server would have.
    const key = loadSigningKey({ dataDir: place.dataDir });
    const head = signTreeHead({ treeSize: n, rootHash: merkle.rootFromLeafHashes(leaves).toString('hex'), timestamp: new Date().toISOString(), keyId: key.keyId }, key.privateKey);
    await k
      .insertInto('audit_tree_heads')
      .values({ tree_size: head.treeSize, root_hash: head.rootHash, timestamp: head.timestamp, key_id: head.keyId, signature: head.signature })
      .execute();
  } finally {
    await k.destroy();
  }
}

async function rootsAgree(db: Db): Promise<number> {
  const rows = await db.kysely.selectFrom('audit_events').selectAll().orderBy('seq').execute();
  const fromEvents = merkle.rootFromLeafHashes(rows.map((r) => eventLeafHash(toEvent(r))));
  const fromNodes = await merkle.rangeHash(0, rows.length, (level, index) => readNode(db.kysely, level, index));
  assert.equal(fromNodes.toString('hex'), fromEvents.toString('hex'), 'the stored nodes hash to the events');
  return rows.length;
}

for (const backend of BACKENDS) {
  describe(`migration 0009: the audit tree's append layout (${backend})`, () => {
    let root = '';
    let place: Place;
    let db: Db;
    before(async () => {
      root = tempRoot('mk-m0009-');
      place = await newPlace(backend, root);
      await logBefore0009(place, 37);
    });
    after(async () => {
      await db?.close();
      await place.drop();
      rmSync(root, { recursive: true, force: true });
    });

    test('audit verify reads a log in the old layout as it is: it verifies, and nothing is migrated or written', async () => {
      const file = join(place.dataDir, 'modelkeep.db');
      const digestOf = () => (place.databaseUrl ? null : createHash('sha256').update(readFileSync(file)).digest('hex'));
      const before = digestOf();
      const r = await runCli(['audit', 'verify', '--data-dir', place.dataDir, ...(place.databaseUrl ? ['--database-url', place.databaseUrl] : [])]);
      assert.equal(r.code, 0, show(r));
      assert.match(r.stdout, /37 events/);
      assert.equal(digestOf(), before, 'the SQLite database file is unchanged');
      // Still at 0008: the verifier did not migrate the evidence.
      db = await openDatabase({ dataDir: place.dataDir, databaseUrl: place.databaseUrl, readOnly: true });
      const applied = await db.kysely.selectFrom('modelkeep_migrations').select('id').execute();
      assert.equal(applied.some((m) => m.id === '0009-audit-append-layout'), false);
      await assert.rejects(db.kysely.insertInto('audit_head').values({ id: 2, next_seq: 1 }).execute(), 'a read-only handle refuses writes');
      await db.close();
      db = await openDatabase({ dataDir: place.dataDir, databaseUrl: place.databaseUrl });
    });

    test('the events and nodes come through, every node keyed by the append that completed it', async () => {
      const applied = await db.kysely.selectFrom('modelkeep_migrations').select('id').where('id', '=', '0009-audit-append-layout').execute();
      assert.equal(applied.length, 1);
      assert.equal(await rootsAgree(db), 37);
      const nodes = await db.kysely.selectFrom('audit_nodes').select(['end_seq', 'level', 'idx']).execute();
      // 37 leaves complete 37 + 18 + 9 + 4 + 2 + 1 perfect subtrees.
      assert.equal(nodes.length, 71);
      for (const r of nodes) assert.equal(Number(r.end_seq), (Number(r.idx) + 1) * 2 ** Number(r.level));
    });

    test('appends after the migration extend the same tree, and the key refuses a duplicate node', async () => {
      const audit = new AuditLog(db.kysely);
      const seqs = await Promise.all(Array.from({ length: 27 }, (_, i) => audit.record(ctx(100 + i), input(100 + i))));
      assert.deepEqual(seqs, Array.from({ length: 27 }, (_, i) => 38 + i));
      assert.equal(await rootsAgree(db), 64);
      const top = await readNode(db.kysely, 6, 0);
      assert.equal(top.length, 32, 'the 64-leaf subtree completed by the last append is stored');
      await assert.rejects(db.kysely.insertInto('audit_nodes').values({ end_seq: 64, level: 6, idx: 0, hash: '00'.repeat(32) }).execute());
    });
  });
}

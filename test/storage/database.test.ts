// The storage layer against both backends: migrations, transactions, bigint columns,
// audit sequence numbers under concurrency, and fail-closed audit writes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { AuditLog, eventLeafHash, inTransaction, merkle, readNode, toEvent } from '../../src/audit/index.ts';
import type { RequestContext } from '../../src/core/index.ts';
import { isModelkeepError, newId } from '../../src/core/index.ts';
import type { Database } from '../../src/storage/index.ts';
import { type Db, type Kysely, migrate, migrations, openDatabase, sql } from '../../src/storage/index.ts';
import { BACKENDS, type Backend, createPgDatabase, PG_ADMIN_URL } from '../helpers/server.ts';

const TABLES = [
  'api_keys',
  'artifacts',
  'audit_alerts',
  'audit_events',
  'audit_head',
  'audit_nodes',
  'audit_tree_heads',
  'auth_throttle',
  'deployments',
  'device_authorizations',
  'mfa_pending_logins',
  'mfa_recovery_codes',
  'mfa_totp',
  'model_versions',
  'modelkeep_migrations',
  'models',
  'pipeline_runs',
  'projects',
  'refresh_tokens',
  'role_bindings',
  'service_accounts',
  'sessions',
  'signing_keys',
  'token_families',
  'users',
  'webauthn_challenges',
  'webauthn_credentials',
];

/** A fresh, empty store: a SQLite data dir or a new PostgreSQL database. */
interface Store {
  dataDir: string;
  databaseUrl: string | undefined;
  open(): Promise<Db>;
  dispose(): Promise<void>;
}

async function freshStore(backend: Backend): Promise<Store> {
  const dataDir = mkdtempSync(join(tmpdir(), 'mk-db-'));
  const pgdb = backend === 'postgres' ? await createPgDatabase() : null;
  const databaseUrl = pgdb?.url;
  return {
    dataDir,
    databaseUrl,
    open: () => openDatabase({ dataDir, databaseUrl }),
    dispose: async () => {
      rmSync(dataDir, { recursive: true, force: true });
      await pgdb?.drop();
    },
  };
}

function ctx(requestId = newId('req')): RequestContext {
  return { requestId, principal: { kind: 'operator', id: 'operator', username: 'operator' }, ip: null, userAgent: 'storage-test', now: new Date() };
}

async function schemaOf(db: Db): Promise<Array<{ table: string; columns: string[] }>> {
  const tables = await db.kysely.introspection.getTables();
  return tables
    .map((t) => ({ table: t.name, columns: t.columns.map((c) => c.name).sort() }))
    .sort((a, b) => a.table.localeCompare(b.table));
}

async function insertProject(ex: Kysely<Database>, name: string): Promise<string> {
  const id = newId('prj');
  await ex.insertInto('projects').values({ id, name, description: '', created_at: new Date().toISOString(), created_by: 'test' }).execute();
  return id;
}

async function countProjects(db: Db, name: string): Promise<number> {
  const r = await db.kysely.selectFrom('projects').select((eb) => eb.fn.countAll<number | string>().as('n')).where('name', '=', name).executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Asserts sequence numbers 1..n, each once, and that the head points just past them. */
async function assertGapFree(db: Db, n: number, returned: number[]): Promise<void> {
  const rows = await db.kysely.selectFrom('audit_events').select('seq').orderBy('seq').execute();
  const expected = Array.from({ length: n }, (_, i) => i + 1);
  assert.deepEqual(
    rows.map((r) => r.seq),
    expected,
  );
  for (const r of rows) assert.equal(typeof r.seq, 'number');
  assert.deepEqual(
    [...returned].sort((a, b) => a - b),
    expected,
  );
  const head = await db.kysely.selectFrom('audit_head').select('next_seq').where('id', '=', 1).executeTakeFirstOrThrow();
  assert.equal(head.next_seq, n + 1);
  // Every writer hashed with the siblings the writers before it stored: the stored tree
  // (leaves and inner nodes) is the tree of the events, at every size.
  const events = (await db.kysely.selectFrom('audit_events').selectAll().orderBy('seq').execute()).map(toEvent);
  const leaves = events.map(eventLeafHash);
  for (let size = 1; size <= n; size++) {
    const stored = await merkle.rangeHash(0, size, (level, index) => readNode(db.kysely, level, index));
    assert.ok(stored.equals(merkle.rootFromLeafHashes(leaves.slice(0, size))), `stored root of size ${size}`);
  }
  const nodes = await db.kysely.selectFrom('audit_nodes').select((eb) => eb.fn.countAll().as('c')).executeTakeFirstOrThrow();
  assert.equal(Number(nodes.c), 2 * n - bitCount(n), 'one node per completed perfect subtree');
}

function bitCount(n: number): number {
  let c = 0;
  for (let x = n; x > 0; x = Math.floor(x / 2)) c += x % 2;
  return c;
}

for (const backend of BACKENDS) {
  describe(`database (${backend})`, () => {
    let store: Store;
    let db: Db;
    const cleanups: Array<() => Promise<void>> = [];
    before(async () => {
      store = await freshStore(backend);
      cleanups.push(() => store.dispose());
      db = await store.open();
      cleanups.push(() => db.close());
    });
    after(async () => {
      // Last opened, first closed; every step runs even if one fails.
      for (const c of cleanups.reverse()) await c().catch(() => {});
    });

    test('migrations apply on an empty database and a second open is a no-op', async () => {
      assert.equal(db.dialect, backend);
      const first = await schemaOf(db);
      assert.deepEqual(
        first.map((t) => t.table),
        TABLES,
      );
      const applied = await db.kysely.selectFrom('modelkeep_migrations').selectAll().orderBy('id').execute();
      assert.deepEqual(
        applied.map((m) => m.id),
        migrations.map((m) => m.id),
      );

      const again = await store.open();
      try {
        assert.deepEqual(await schemaOf(again), first);
        const reapplied = await again.kysely.selectFrom('modelkeep_migrations').selectAll().orderBy('id').execute();
        assert.deepEqual(reapplied.map((r) => ({ ...r })), applied.map((r) => ({ ...r })));
        // Running the migrator by hand applies nothing either.
        assert.deepEqual(await migrate(again.kysely, again.dialect), []);
      } finally {
        await again.close();
      }
      const head = await db.kysely.selectFrom('audit_head').selectAll().execute();
      assert.deepEqual(head.map((r) => ({ ...r })), [{ id: 1, next_seq: 1 }]);
    });

    test('a transaction that throws leaves no rows', async () => {
      const boom = new Error('abort the unit of work');
      await assert.rejects(
        db.kysely.transaction().execute(async (tx) => {
          await insertProject(tx, 'rolled-back');
          assert.equal(Number((await tx.selectFrom('projects').select('id').where('name', '=', 'rolled-back').execute()).length), 1);
          throw boom;
        }),
        (err) => err === boom,
      );
      assert.equal(await countProjects(db, 'rolled-back'), 0);
    });

    test('bigint sizes above 2^32 round-trip as numbers', async () => {
      const now = new Date().toISOString();
      const projectId = await insertProject(db.kysely, 'big');
      const modelId = newId('mdl');
      await db.kysely
        .insertInto('models')
        .values({ id: modelId, project_id: projectId, name: 'm', description: '', sensitivity: 'internal', next_version: 2, created_at: now, created_by: 't' })
        .execute();
      const versionId = newId('ver');
      await db.kysely
        .insertInto('model_versions')
        .values({
          id: versionId,
          model_id: modelId,
          version: 1,
          state: 'draft',
          stage: 'none',
          description: '',
          metadata: '{}',
          created_at: now,
          created_by: 't',
          finalized_at: null,
          stage_changed_at: null,
        })
        .execute();
      const sizes = [2 ** 32 + 1, 5 * 2 ** 32 + 7, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER];
      for (const [i, size] of sizes.entries()) {
        await db.kysely
          .insertInto('artifacts')
          .values({ id: newId('art'), version_id: versionId, path: `f${i}.bin`, size, sha256: 'a'.repeat(64), created_at: now, created_by: 't' })
          .execute();
      }
      const rows = await db.kysely.selectFrom('artifacts').select(['path', 'size']).where('version_id', '=', versionId).orderBy('path').execute();
      assert.deepEqual(
        rows.map((r) => r.size),
        sizes,
      );
      for (const r of rows) assert.equal(typeof r.size, 'number');
      // Comparisons happen in the database on the full 64-bit value.
      const above = await db.kysely.selectFrom('artifacts').select('path').where('size', '>', 2 ** 40).orderBy('path').execute();
      assert.deepEqual(
        above.map((r) => r.path),
        ['f2.bin', 'f3.bin'],
      );
    });
  });

  describe(`audit log (${backend})`, () => {
    const cleanups: Array<() => Promise<void>> = [];
    after(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => {});
    });
    async function open(): Promise<{ store: Store; db: Db }> {
      const store = await freshStore(backend);
      cleanups.push(() => store.dispose());
      const db = await store.open();
      cleanups.push(() => db.close());
      return { store, db };
    }

    test('50 concurrent record() calls get gap-free, unique sequence numbers', async () => {
      const { db } = await open();
      const audit = new AuditLog(db.kysely);
      const seqs = await Promise.all(
        Array.from({ length: 50 }, (_, i) => audit.record(ctx(`req_${i}`), { action: 'test.concurrent', outcome: 'success', details: { i } })),
      );
      await assertGapFree(db, 50, seqs);
      // Each sequence number belongs to the event that received it.
      const events = await audit.query({ action: 'test.concurrent', limit: 1000 });
      assert.equal(events.length, 50);
      for (const e of events) assert.equal(e.requestId, `req_${seqs.indexOf(e.seq)}`);
    });

    if (backend === 'postgres') {
      test('two separate Db handles writing concurrently share one gap-free sequence', async () => {
        const { store, db } = await open();
        const other = await store.open();
        cleanups.push(() => other.close());
        const logs = [new AuditLog(db.kysely), new AuditLog(other.kysely)];
        const seqs = await Promise.all(
          Array.from({ length: 60 }, (_, i) => logs[i % 2]!.record(ctx(), { action: 'test.two-handles', outcome: 'success', details: { handle: i % 2 } })),
        );
        await assertGapFree(db, 60, seqs);
      });

      test('an append that waited for the counter row hashes with the sibling its predecessor wrote meanwhile', async () => {
        // Seq 2 hashes with leaf 0, stored by the writer of seq 1. The second writer is
        // blocked on the counter row until the first commits, and must then see its leaf
        // (a sibling read from a snapshot taken before the wait would not).
        const { store, db } = await open();
        const other = await store.open();
        cleanups.push(() => other.close());
        const second: { seq?: Promise<number> } = {};
        await db.kysely.transaction().execute(async (tx) => {
          assert.equal(await new AuditLog(db.kysely).append(tx, ctx(), { action: 'test.first', outcome: 'success' }), 1);
          second.seq = new AuditLog(other.kysely).record(ctx(), { action: 'test.second', outcome: 'success' });
          let settled = false;
          second.seq.then(
            () => {
              settled = true;
            },
            () => {
              settled = true;
            },
          );
          // Commit only once the second writer is blocked on the counter row (or has failed).
          for (;;) {
            const r = await sql<{ n: number }>`select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid
              where not l.granted and a.datname = current_database()`.execute(other.kysely);
            if ((r.rows[0]?.n ?? 0) > 0 || settled) break;
            await new Promise((resolve) => setImmediate(resolve));
          }
        });
        assert.equal(await second.seq, 2);
        await assertGapFree(db, 2, [1, 2]);
      });

      test('idle connections terminated by the server do not crash the process; the next query reconnects', async () => {
        const { store, db } = await open();
        const audit = new AuditLog(db.kysely);
        // Fill the pool with several idle connections.
        await Promise.all(Array.from({ length: 8 }, () => audit.record(ctx(), { action: 'test.fill', outcome: 'success' })));
        const name = new URL(store.databaseUrl!).pathname.slice(1);
        const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
        await admin.connect();
        try {
          // What a PostgreSQL restart or an operator's pg_terminate_backend does to them.
          const r = await admin.query('select pg_terminate_backend(pid) as ok from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
          assert.ok(r.rowCount !== null && r.rowCount > 0, 'some idle connections were terminated');
          // Until the pool has seen every connection close, an unhandled 'error' would surface here.
          for (let i = 0; i < 100; i++) {
            const left = await admin.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
            if (left.rows[0].n === 0) break;
            await new Promise((res) => setTimeout(res, 20));
          }
        } finally {
          await admin.end();
        }
        // Let the event loop deliver the closed sockets' events to the pool (I/O, not a clock).
        await new Promise((res) => setTimeout(res, 100));
        const seq = await audit.record(ctx(), { action: 'test.after-terminate', outcome: 'success' });
        assert.equal(seq, 9);
      });

      test('two openDatabase() calls at once on an empty database both succeed', async () => {
        // Repeated on fresh databases: a race in migration start-up shows up as a failure here.
        for (let round = 0; round < 3; round++) {
          const store = await freshStore(backend);
          cleanups.push(() => store.dispose());
          const opened = await Promise.allSettled([store.open(), store.open()]);
          for (const r of opened) if (r.status === 'fulfilled') cleanups.push(() => r.value.close());
          for (const r of opened) {
            if (r.status === 'rejected') assert.fail(`round ${round}: openDatabase failed: ${String(r.reason)}`);
          }
          const [a, b] = opened.map((r) => (r as PromiseFulfilledResult<Db>).value) as [Db, Db];
          assert.deepEqual(
            (await schemaOf(a)).map((t) => t.table),
            TABLES,
          );
          assert.deepEqual(await schemaOf(a), await schemaOf(b));
          const applied = await a.kysely.selectFrom('modelkeep_migrations').select('id').execute();
          assert.deepEqual(
            applied.map((m) => m.id),
            migrations.map((m) => m.id),
          );
          const head = await a.kysely.selectFrom('audit_head').selectAll().execute();
          assert.deepEqual(head.map((r) => ({ ...r })), [{ id: 1, next_seq: 1 }]);
        }
      });
    }

    test('inTransaction rolls the change back when the audit write fails (fail closed)', async () => {
      const { db } = await open();
      const audit = new AuditLog(db.kysely);
      // One event first, so the head is not at its initial value.
      await audit.record(ctx(), { action: 'test.before', outcome: 'success' });
      // Make every audit insert fail for real: the table is gone.
      await sql`ALTER TABLE audit_events RENAME TO audit_events_unwritable`.execute(db.kysely);

      let thrown: unknown;
      try {
        await inTransaction(db.kysely, audit, ctx(), async (w) => {
          await insertProject(w.tx, 'must-not-exist');
          w.attempted = { action: 'project.create', outcome: 'success', resource: 'project:must-not-exist' };
          await audit.append(w.tx, ctx(), { action: 'project.create', outcome: 'success', resource: 'project:must-not-exist' });
          return 'committed';
        });
      } catch (err) {
        thrown = err;
      }
      assert.ok(isModelkeepError(thrown), `expected a ModelkeepError, got ${String(thrown)}`);
      assert.equal(thrown.code, 'unavailable');
      assert.ok(thrown.cause, 'the database error is chained as the cause');

      assert.equal(await countProjects(db, 'must-not-exist'), 0);
      // The counter's increment rolled back with the change: no sequence number is burnt.
      const head = await db.kysely.selectFrom('audit_head').select('next_seq').where('id', '=', 1).executeTakeFirstOrThrow();
      assert.equal(head.next_seq, 2);

      // Once the table is back, the next event takes the next number: still gap-free.
      await sql`ALTER TABLE audit_events_unwritable RENAME TO audit_events`.execute(db.kysely);
      const seq = await audit.record(ctx(), { action: 'test.after', outcome: 'success' });
      assert.equal(seq, 2);
      await assertGapFree(db, 2, [1, 2]);
    });
  });
}

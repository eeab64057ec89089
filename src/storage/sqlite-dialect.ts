// Kysely over Node's built-in SQLite (node:sqlite): no native addon bound to one Node
// ABI, so `npm ci` under any Node serves the Node 24 run. Kysely's SQLite driver expects
// a better-sqlite3-shaped handle; this adapter gives it one.
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { SqliteDialect } from 'kysely';

type Param = null | number | bigint | string | NodeJS.ArrayBufferView;

function toParams(parameters: ReadonlyArray<unknown>): Param[] {
  return parameters.map((p) => {
    if (p === undefined) return null;
    if (typeof p === 'boolean') return p ? 1 : 0;
    if (p instanceof Date) return p.toISOString();
    return p as Param;
  });
}

class Statement implements SqliteStatement {
  readonly reader: boolean;
  readonly #stmt: StatementSync;
  constructor(stmt: StatementSync) {
    this.#stmt = stmt;
    // A statement that returns columns is a reader (SELECT, or … RETURNING).
    this.reader = stmt.columns().length > 0;
  }
  all(parameters: ReadonlyArray<unknown>): unknown[] {
    return this.#stmt.all(...toParams(parameters));
  }
  run(parameters: ReadonlyArray<unknown>) {
    const r = this.#stmt.run(...toParams(parameters));
    return { changes: r.changes, lastInsertRowid: r.lastInsertRowid };
  }
  iterate(parameters: ReadonlyArray<unknown>): IterableIterator<unknown> {
    return this.#stmt.iterate(...toParams(parameters)) as IterableIterator<unknown>;
  }
}

export function openSqlite(file: string, opts: { readOnly?: boolean } = {}): DatabaseSync {
  if (opts.readOnly) {
    // A database that must not change (the offline verifier): opened as found, never created.
    const db = new DatabaseSync(file, { readOnly: true });
    db.exec('PRAGMA busy_timeout = 5000');
    return db;
  }
  const db = new DatabaseSync(file);
  // WAL: readers never block the writer; synchronous=NORMAL is durable across process
  // crashes in WAL mode (a power loss may drop the last transactions, never corrupt).
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  db.exec('PRAGMA foreign_keys = ON');
  db.exec('PRAGMA busy_timeout = 5000');
  return db;
}

const STATEMENT_CACHE = 1000;

export function nodeSqliteDialect(db: DatabaseSync): SqliteDialect {
  // Kysely prepares every query anew; preparing was ~20 % of a metadata request's CPU.
  // Queries are built from a bounded set of shapes, so their statements are kept.
  const cache = new Map<string, Statement>();
  const adapter: SqliteDatabase = {
    close: () => {
      cache.clear();
      db.close();
    },
    prepare: (sql: string) => {
      let st = cache.get(sql);
      if (!st) {
        if (cache.size >= STATEMENT_CACHE) cache.clear();
        st = new Statement(db.prepare(sql));
        cache.set(sql, st);
      }
      return st;
    },
  };
  return new SqliteDialect({ database: adapter });
}

// The handle under a Kysely instance opened on SQLite, for the few hot paths that run
// statements on it directly (the audit log's group commit, fast-read.ts). node:sqlite has
// one connection and a Kysely transaction holds it across awaits, so a statement run beside
// it would join that transaction: they run directly only while `isTransaction` is false
// (Kysely's own statements outside a transaction never span an await), and otherwise take
// their turn through Kysely (`kysely.connection().execute`, or the query itself).
const handles = new WeakMap<object, DatabaseSync>();

export function registerSqliteHandle(kysely: object, db: DatabaseSync): void {
  handles.set(kysely, db);
}

/** The SQLite handle of a Kysely instance from openDatabase; null on PostgreSQL or a transaction. */
export function sqliteHandleOf(kysely: object): DatabaseSync | null {
  return handles.get(kysely) ?? null;
}

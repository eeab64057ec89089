// Hot reads (the names in every registry URL) without Kysely's per-call cost: the query is
// built and compiled once per database and shape, then re-run with new parameters. On
// SQLite, when no transaction is open on the connection, the statement runs synchronously
// on the handle (an autocommit read of committed rows, as through Kysely); inside a
// transaction — another request's, held open across awaits — it goes through Kysely and
// waits its turn, so it never joins someone else's uncommitted work.
import type { StatementSync } from 'node:sqlite';
import type { CompiledQuery, Kysely, Transaction } from 'kysely';
import type { Database } from './schema.ts';
import { sqliteHandleOf } from './sqlite-dialect.ts';

type Executor = Kysely<Database> | Transaction<Database>;

const compiled = new WeakMap<object, Map<string, CompiledQuery>>();
const statements = new WeakMap<object, Map<string, StatementSync>>();

/** The first row of a query of shape `key` (built by `build`, run with `parameters`). */
export async function readFirst<R>(ex: Executor, key: string, build: () => CompiledQuery<R>, parameters: readonly (string | number | null)[]): Promise<R | undefined> {
  const adapter = ex.getExecutor().adapter;
  let byKey = compiled.get(adapter);
  if (!byKey) {
    byKey = new Map();
    compiled.set(adapter, byKey);
  }
  let q = byKey.get(key) as CompiledQuery<R> | undefined;
  if (!q) {
    q = build();
    byKey.set(key, q);
  }
  const handle = sqliteHandleOf(ex);
  if (handle && !handle.isTransaction) {
    let stmts = statements.get(handle);
    if (!stmts) {
      stmts = new Map();
      statements.set(handle, stmts);
    }
    let st = stmts.get(key);
    if (!st) {
      st = handle.prepare(q.sql);
      stmts.set(key, st);
    }
    return st.get(...parameters) as R | undefined;
  }
  return (await ex.executeQuery<R>({ ...q, parameters } as CompiledQuery<R>)).rows[0];
}

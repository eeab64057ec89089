// Hot queries without Kysely's per-call cost. A query is built and compiled once per
// database (dialect) and shape, then re-run with new parameters: building and compiling
// with Kysely on every call cost about as much as SQLite executing the statement.
//
// readFirst goes one step further for the names in every registry URL: on SQLite, when no
// transaction is open on the connection, the statement runs synchronously on the handle
// (an autocommit read of committed rows, as through Kysely); inside a transaction —
// another request's, held open across awaits — it goes through Kysely and waits its
// turn, so it never joins someone else's uncommitted work.
import type { StatementSync } from 'node:sqlite';
import type { CompiledQuery, Kysely, Transaction } from 'kysely';
import type { Database } from './schema.ts';
import { sqliteHandleOf } from './sqlite-dialect.ts';

type Executor = Kysely<Database> | Transaction<Database>;

const compiledByAdapter = new WeakMap<object, Map<string, CompiledQuery>>();
const statements = new WeakMap<object, Map<string, StatementSync>>();

/** The query of shape `key` (built by `build` the first time) with these parameters. */
export function compiledOnce<R>(ex: Executor, key: string, build: () => CompiledQuery<R>, parameters: readonly unknown[]): CompiledQuery<R> {
  const adapter = ex.getExecutor().adapter;
  let cache = compiledByAdapter.get(adapter);
  if (!cache) {
    cache = new Map();
    compiledByAdapter.set(adapter, cache);
  }
  const q = cache.get(key);
  if (!q) {
    const built = build();
    cache.set(key, built);
    return built;
  }
  return { ...q, parameters } as CompiledQuery<R>;
}

/** The first row of a query of shape `key` (built by `build`, run with `parameters`). */
export async function readFirst<R>(ex: Executor, key: string, build: () => CompiledQuery<R>, parameters: readonly (string | number | null)[]): Promise<R | undefined> {
  const q = compiledOnce(ex, key, build, parameters);
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
  return (await ex.executeQuery(q)).rows[0];
}

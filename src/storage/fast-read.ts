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

/** The value kept for (owner, key), made by `make` the first time. */
function memo<V>(byOwner: WeakMap<object, Map<string, V>>, owner: object, key: string, make: () => V): V {
  let cache = byOwner.get(owner);
  if (!cache) {
    cache = new Map();
    byOwner.set(owner, cache);
  }
  let v = cache.get(key);
  if (v === undefined) {
    v = make();
    cache.set(key, v);
  }
  return v;
}

/** The query of shape `key` (built by `build` the first time) with these parameters. */
export function compiledOnce<R>(ex: Executor, key: string, build: () => CompiledQuery<R>, parameters: readonly unknown[]): CompiledQuery<R> {
  const q = memo(compiledByAdapter, ex.getExecutor().adapter, key, build);
  return { ...q, parameters } as CompiledQuery<R>;
}

/** The first row of a query of shape `key` (built by `build`, run with `parameters`). */
export async function readFirst<R>(ex: Executor, key: string, build: () => CompiledQuery<R>, parameters: readonly (string | number | null)[]): Promise<R | undefined> {
  const q = compiledOnce(ex, key, build, parameters);
  const handle = sqliteHandleOf(ex);
  if (handle && !handle.isTransaction) return memo(statements, handle, key, () => handle.prepare(q.sql)).get(...parameters) as R | undefined;
  return (await ex.executeQuery(q)).rows[0];
}

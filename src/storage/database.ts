import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { migrate } from './migrations.ts';
import type { Database } from './schema.ts';
import { nodeSqliteDialect, openSqlite, registerSqliteHandle } from './sqlite-dialect.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Db {
  readonly kysely: Kysely<Database>;
  readonly dialect: Dialect;
  close(): Promise<void>;
}

// int8 (bigint) columns hold sizes and sequence numbers well below 2^53: read them as numbers.
pg.types.setTypeParser(20, (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error('int8 value out of safe range');
  return n;
});

/**
 * Opens the database and brings its schema up to date. With `readOnly` (the offline
 * verifier: evidence is read, never changed) nothing is written — no directory, no
 * journal-mode change, no migration — and the schema is used as it is found.
 */
export async function openDatabase(opts: { dataDir: string; databaseUrl?: string | undefined; readOnly?: boolean }): Promise<Db> {
  let kysely: Kysely<Database>;
  let dialect: Dialect;
  const readOnly = opts.readOnly === true;
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10, ...(readOnly ? { options: '-c default_transaction_read_only=on' } : {}) });
    // An idle connection the server drops (restart, failover, pg_terminate_backend) is
    // already discarded by the pool, which then emits 'error': without a listener that
    // event crashes the process. The next query opens a fresh connection.
    pool.on('error', () => {});
    kysely = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    dialect = 'postgres';
  } else {
    if (!readOnly) mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const sqlite = openSqlite(join(opts.dataDir, 'modelkeep.db'), { readOnly });
    kysely = new Kysely<Database>({ dialect: nodeSqliteDialect(sqlite) });
    registerSqliteHandle(kysely, sqlite);
    dialect = 'sqlite';
  }
  try {
    if (!readOnly) await migrate(kysely, dialect);
  } catch (err) {
    await kysely.destroy();
    throw err;
  }
  return { kysely, dialect, close: () => kysely.destroy() };
}

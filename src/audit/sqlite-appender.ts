// The SQLite group commit, run synchronously: one transaction appends a whole batch of
// events and their tree nodes through prepared statements, with no await between them.
// Through Kysely, each event cost four queries' worth of query building, promise hops
// and connection hand-offs — more than SQLite spent executing them.
//
// The right edge of the tree (the roots of its perfect subtrees, "the frontier") is kept
// between batches, so an append reads no sibling from the database. It is trusted only
// when the counter says the tree has exactly the size it was computed for; anything else
// (an append made inside another transaction, another process) makes the batch read the
// frontier from the stored nodes again. It is replaced only after a commit.
//
// The rows and hashes are those of the asynchronous path in audit-log.ts, and the
// verifier checks them alike (test/audit/group-commit.test.ts).
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { AuditEventsTable } from '../storage/index.ts';
import { completedAt, nodeHash } from './merkle.ts';

/** An event's column values (in the appender's column order) and its leaf hash. */
export interface PreparedEvent {
  parameters: (string | number | null)[];
  leaf: Buffer;
}

interface Frontier {
  size: number;
  /** roots[L]: the root of the perfect subtree of 2^L leaves on the right edge (bit L of size). */
  roots: (Buffer | undefined)[];
}


export class SqliteAppender {
  readonly #db: DatabaseSync;
  readonly #columns: readonly (keyof AuditEventsTable)[];
  #frontier: Frontier | null = null;
  #stmts: { head: StatementSync; event: StatementSync; node: StatementSync; read: StatementSync } | null = null;

  constructor(db: DatabaseSync, columns: readonly (keyof AuditEventsTable)[]) {
    this.#db = db;
    this.#columns = columns;
  }

  /** A transaction is open on the connection (Kysely's, held across awaits): append through Kysely then. */
  get busy(): boolean {
    return this.#db.isTransaction;
  }

  #statements() {
    this.#stmts ??= {
      head: this.#db.prepare('UPDATE "audit_head" SET "next_seq" = "next_seq" + ? WHERE "id" = 1 RETURNING "next_seq"'),
      event: this.#db.prepare(`INSERT INTO "audit_events" (${this.#columns.map((c) => `"${c}"`).join(', ')}) VALUES (${this.#columns.map(() => '?').join(', ')})`),
      node: this.#db.prepare('INSERT INTO "audit_nodes" ("end_seq", "level", "idx", "hash") VALUES (?, ?, ?, ?)'),
      read: this.#db.prepare('SELECT "hash" FROM "audit_nodes" WHERE "end_seq" = ? AND "level" = ?'),
    };
    return this.#stmts;
  }

  /**
   * Appends the events in order in one transaction and returns their seq numbers. The
   * connection must be outside any transaction (not busy, or Kysely's connection held):
   * nothing else runs on it meanwhile, the whole append being synchronous. On any error the
   * transaction is rolled back and the error thrown: nothing of the batch is kept.
   */
  append<T>(batch: readonly T[], prepare: (seq: number, item: T) => PreparedEvent): number[] {
    if (batch.length === 0) return [];
    if (this.#db.isTransaction) throw new Error('the audit appender needs the connection outside any transaction');
    const st = this.#statements();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      // The counter row serialises writers, as in the asynchronous path.
      const head = st.head.get(batch.length) as { next_seq: number | bigint } | undefined;
      if (!head) throw new Error('the audit_head row is missing');
      const first = Number(head.next_seq) - batch.length;
      const kept = this.#frontier;
      const frontier = kept !== null && kept.size === first - 1 ? cloneFrontier(kept) : this.#readFrontier(first - 1);
      const seqs: number[] = [];
      for (const [k, item] of batch.entries()) {
        const seq = first + k;
        if (frontier.size !== seq - 1) throw new Error(`audit frontier of size ${frontier.size} cannot take event ${seq}`);
        const { parameters, leaf } = prepare(seq, item);
        st.event.run(...parameters);
        // Every node this append completes ends at its seq (the key, migration 0009).
        for (const n of push(frontier, leaf)) st.node.run(seq, n.level, n.index, n.hash.toString('hex'));
        seqs.push(seq);
      }
      this.#db.exec('COMMIT');
      this.#frontier = frontier;
      return seqs;
    } catch (err) {
      this.#frontier = null;
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /** The frontier of the stored tree of `size` leaves, from its stored nodes. */
  #readFrontier(size: number): Frontier {
    const read = this.#statements().read;
    const roots: (Buffer | undefined)[] = [];
    for (let level = 0; 2 ** level <= size; level++) {
      if (Math.floor(size / 2 ** level) % 2 === 0) continue;
      const index = Math.floor(size / 2 ** level) - 1;
      const r = read.get(completedAt(level, index), level) as { hash?: unknown } | undefined;
      if (typeof r?.hash !== 'string' || !/^[0-9a-f]{64}$/.test(r.hash)) throw new Error(`audit tree node ${level}/${index} is missing or malformed`);
      roots[level] = Buffer.from(r.hash, 'hex');
    }
    return { size, roots };
  }
}

function cloneFrontier(f: Frontier): Frontier {
  return { size: f.size, roots: [...f.roots] };
}

/** Appends a leaf to the frontier; returns the nodes to store: the leaf and the subtrees it completes. */
function push(f: Frontier, leaf: Buffer): { level: number; index: number; hash: Buffer }[] {
  const i = f.size;
  const out = [{ level: 0, index: i, hash: leaf }];
  let hash = leaf;
  let level = 0;
  while (Math.floor(i / 2 ** level) % 2 === 1) {
    const left = f.roots[level];
    if (!left) throw new Error(`audit frontier lacks level ${level}`);
    hash = nodeHash(left, hash);
    f.roots[level] = undefined;
    level++;
    out.push({ level, index: Math.floor(i / 2 ** level), hash });
  }
  f.roots[level] = hash;
  f.size = i + 1;
  return out;
}

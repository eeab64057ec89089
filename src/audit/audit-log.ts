// The audit seam: every authentication event and every guard decision is an event,
// written in the same transaction as the change it records. If the write fails, the
// transaction fails and the change does not happen (fail closed). The Merkle log,
// signed tree heads and proofs build on this table.
import { CompiledQuery, type Kysely, PostgresAdapter, type Transaction } from 'kysely';
import type { RequestContext } from '../core/index.ts';
import { ModelkeepError } from '../core/index.ts';
import { type AuditEventsTable, compiledOnce, type Database, sqliteHandleOf } from '../storage/index.ts';
import { eventLeafHash } from './canonical.ts';
import type { LeafEvent } from './leaf-format.ts';
import { completedAt, nodeHash } from './merkle.ts';
import { type PreparedEvent, SqliteAppender } from './sqlite-appender.ts';

export type Executor = Kysely<Database> | Transaction<Database>;

export type Outcome = AuditEventsTable['outcome'];

export interface AuditInput {
  action: string;
  outcome: Outcome;
  resource?: string | null;
  projectId?: string | null;
  reason?: string | null;
  policyVersion?: string | null;
  /** Extra facts (digests, sizes, target stage). Never secrets: ids and hashes only. */
  details?: Record<string, unknown>;
}

/** A stored event as the API returns it: the members a Merkle leaf holds (leaf-format.ts). */
export interface AuditEvent extends LeafEvent {
  outcome: Outcome;
}

export interface AuditQuery {
  after?: number;
  limit?: number;
  actor?: string;
  action?: string;
  outcome?: string;
  /** Restrict to these projects (auditors see their projects only). */
  projectIds?: readonly string[];
}

// The hot statements of an append are compiled once per database and shape (compiledOnce).

interface Pending {
  ctx: RequestContext;
  input: AuditInput;
  resolve: (seq: number) => void;
  reject: (err: unknown) => void;
}

const unavailable = (cause: unknown) => new ModelkeepError('unavailable', 'the audit log could not be written; the action was not performed', { cause });

/** Most events one group commit appends. */
const MAX_BATCH = 256;

export class AuditLog {
  readonly #db: Kysely<Database>;
  /** On SQLite, group commits run synchronously (sqlite-appender.ts). */
  readonly #sqlite: SqliteAppender | null;
  constructor(db: Kysely<Database>) {
    this.#db = db;
    const handle = sqliteHandleOf(db);
    this.#sqlite = handle ? new SqliteAppender(handle, EVENT_COLUMNS) : null;
  }

  /** Appends one event using `tx`: it commits or rolls back with the caller's change. */
  async append(tx: Executor, ctx: RequestContext, input: AuditInput): Promise<number> {
    try {
      return tx.getExecutor().adapter instanceof PostgresAdapter ? await appendPostgres(tx, ctx, input) : await appendSqlite(tx, ctx, input);
    } catch (err) {
      throw unavailable(err);
    }
  }

  /**
   * Appends one event in a transaction of its own (read decisions, denials, failed logins)
   * and resolves once it is committed. Group commit: events recorded while the event loop
   * is busy (concurrent requests) are appended in order in one transaction, so a burst
   * pays for one commit instead of one each. Nothing is acknowledged before its commit;
   * if the batch cannot be written, each event is retried alone, so one bad event fails
   * only its own caller (fail closed).
   */
  record(ctx: RequestContext, input: AuditInput): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      this.#pending.push({ ctx, input, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => void this.#flush());
      }
    });
  }

  readonly #pending: Pending[] = [];
  #scheduled = false;
  #flushing = false;
  #recorded = 0;
  #commits = 0;

  /** Events appended by record() and the transactions that committed them (group-commit ratio). */
  get recordStats(): { events: number; commits: number } {
    return { events: this.#recorded, commits: this.#commits };
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    // One batch at a time: events that arrive meanwhile form the next batch.
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#pending.length > 0) {
        const batch = this.#pending.splice(0, MAX_BATCH);
        let seqs: number[] | null = null;
        try {
          seqs = await this.#appendBatch(batch);
        } catch {
          seqs = null;
        }
        if (seqs) {
          this.#settle(batch, seqs);
          continue;
        }
        for (const e of batch) {
          try {
            this.#settle([e], await this.#appendBatch([e]));
          } catch (err) {
            e.reject(err);
          }
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Resolves a committed batch's callers with their seq numbers (one per event, in order). */
  #settle(batch: readonly Pending[], seqs: readonly number[]): void {
    this.#commits++;
    this.#recorded += batch.length;
    for (const [i, e] of batch.entries()) e.resolve(seqs[i] as number);
  }

  /** Appends events in one transaction of their own; resolves with their seq numbers once committed. */
  async #appendBatch(batch: readonly Pending[]): Promise<number[]> {
    const appender = this.#sqlite;
    if (appender) {
      try {
        // With no transaction open on the connection the batch is appended right away,
        // synchronously: nothing can interleave, so Kysely's connection hand-off (a chain
        // of promises per batch) buys nothing. A transaction held open across awaits
        // (another request's change) makes the batch wait its turn for the connection.
        if (!appender.busy) return appender.append(batch, preparedEvent);
        return await this.#db.connection().execute(async () => appender.append(batch, preparedEvent));
      } catch (err) {
        throw unavailable(err);
      }
    }
    return this.#db.transaction().execute(async (tx) => {
      const out: number[] = [];
      for (const e of batch) out.push(await this.append(tx, e.ctx, e.input));
      return out;
    });
  }

  async query(q: AuditQuery): Promise<AuditEvent[]> {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    let query = this.#db.selectFrom('audit_events').selectAll().where('seq', '>', q.after ?? 0);
    if (q.actor) {
      const actor = q.actor;
      query = query.where((eb) => eb.or([eb('actor', '=', actor), eb('actor_id', '=', actor)]));
    }
    if (q.action) query = query.where('action', '=', q.action);
    if (q.outcome) query = query.where('outcome', '=', q.outcome as Outcome);
    if (q.projectIds) {
      if (q.projectIds.length === 0) return [];
      query = query.where('project_id', 'in', q.projectIds);
    }
    const rows = await query.orderBy('seq', 'asc').limit(limit).execute();
    return rows.map(toEvent);
  }
}

/** The row an append stores for (ctx, input) at `seq`. */
export function eventRow(seq: number, ctx: RequestContext, input: AuditInput): AuditEventsTable {
  const p = ctx.principal;
  return {
    seq,
    time: ctx.now.toISOString(),
    actor_id: p.kind === 'anonymous' ? null : p.id,
    actor: p.kind === 'anonymous' ? null : p.username,
    session_id: p.kind === 'user' ? p.sessionId : null,
    ip: ctx.ip,
    user_agent: ctx.userAgent,
    action: input.action,
    resource: input.resource ?? null,
    project_id: input.projectId ?? null,
    outcome: input.outcome,
    reason: input.reason ?? null,
    policy_version: input.policyVersion ?? null,
    request_id: ctx.requestId,
    details: JSON.stringify(input.details ?? {}),
  };
}

export function toEvent(r: AuditEventsTable): AuditEvent {
  return {
    seq: Number(r.seq),
    time: r.time,
    actor: r.actor,
    actorId: r.actor_id,
    sessionId: r.session_id,
    ip: r.ip,
    userAgent: r.user_agent,
    action: r.action,
    resource: r.resource,
    projectId: r.project_id,
    outcome: r.outcome,
    reason: r.reason,
    policyVersion: r.policy_version,
    requestId: r.request_id,
    details: JSON.parse(r.details) as Record<string, unknown>,
  };
}

/** Reads a stored tree node (see migrations 0002 and 0009); a missing node is a broken tree. */
export async function readNode(ex: Executor, level: number, index: number): Promise<Buffer> {
  const end = completedAt(level, index);
  const q = compiledOnce(ex, 'node', () => ex.selectFrom('audit_nodes').select('hash').where('end_seq', '=', end).where('level', '=', level).compile(), [end, level]);
  const r = (await ex.executeQuery(q)).rows[0];
  if (!r) throw new Error(`audit tree node ${level}/${index} is missing`);
  return Buffer.from(r.hash, 'hex');
}

// ---------------------------------------------------------------------------------------
// Appending. The event becomes leaf seq-1 of the Merkle tree in its own transaction: the
// perfect subtrees it completes are stored with it (migration 0002), so roots and proofs
// are O(log n) reads. Leaf index i completes one node per trailing 1-bit of i, i.e. per
// trailing 0-bit of seq = i+1: at level L (0 <= L < trailingZeros(seq)) it pairs with the
// stored left sibling (L, ((seq-1) >> L) - 1).

/** The number of trailing zero bits of a positive safe integer. */
function trailingZeros(n: number): number {
  let z = 0;
  let x = n;
  while (x > 0 && x % 2 === 0) {
    x /= 2;
    z++;
  }
  return z;
}

/** The left siblings an append at `seq` hashes with, level 0 first. */
function siblingsOf(seq: number): { level: number; index: number }[] {
  const out: { level: number; index: number }[] = [];
  let i = seq - 1;
  for (let level = 0, n = trailingZeros(seq); level < n; level++) {
    out.push({ level, index: i - 1 });
    i = (i - 1) / 2;
  }
  return out;
}

/** Columns of audit_nodes as appends write them. */
const NODE_COLUMNS = ['end_seq', 'level', 'idx', 'hash'] as const;

/** Rows for audit_nodes (NODE_COLUMNS, flattened): the leaf, then the nodes it completes, given the siblings' hashes (level order). */
function newNodes(seq: number, leaf: Buffer, siblings: readonly Buffer[]): (number | string)[] {
  // Every node an append completes ends at this seq (migration 0009).
  const values: (number | string)[] = [seq, 0, seq - 1, leaf.toString('hex')];
  let hash = leaf;
  let i = seq - 1;
  for (let level = 0; level < siblings.length; level++) {
    hash = nodeHash(siblings[level]!, hash);
    i = (i - 1) / 2;
    values.push(seq, level + 1, i, hash.toString('hex'));
  }
  return values;
}


function hashOf(level: number, index: number, hex: unknown): Buffer {
  const h = typeof hex === 'string' && /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : null;
  if (!h) throw new Error(`audit tree node ${level}/${index} is ${hex === null || hex === undefined ? 'missing' : 'malformed'}`);
  return h;
}

const EVENT_COLUMNS = [
  'seq',
  'time',
  'actor_id',
  'actor',
  'session_id',
  'ip',
  'user_agent',
  'action',
  'resource',
  'project_id',
  'outcome',
  'reason',
  'policy_version',
  'request_id',
  'details',
] as const satisfies readonly (keyof AuditEventsTable)[];

function eventParameters(row: AuditEventsTable): (string | number | null)[] {
  return EVENT_COLUMNS.map((c) => row[c]);
}

/** The synchronous appender's view of a pending event: its column values and leaf hash. */
function preparedEvent(seq: number, e: Pending): PreparedEvent {
  const row = eventRow(seq, e.ctx, e.input);
  return { parameters: eventParameters(row), leaf: eventLeafHash(toEvent(row)) };
}

const placeholders = (from: number, count: number) => Array.from({ length: count }, (_, i) => `$${from + i}`).join(', ');

// PostgreSQL: the counter, the siblings (one statement, only for even seq), and one
// statement that inserts the event and its nodes together (a data-modifying CTE).
const pgInsertSql = new Map<number, string>();
function pgInsert(nodes: number): string {
  let q = pgInsertSql.get(nodes);
  if (!q) {
    const ev = `INSERT INTO audit_events (${EVENT_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES (${placeholders(1, EVENT_COLUMNS.length)})`;
    const width = NODE_COLUMNS.length;
    const rows = Array.from({ length: nodes }, (_, i) => `(${placeholders(EVENT_COLUMNS.length + 1 + width * i, width)})`).join(', ');
    q = `WITH e AS (${ev}) INSERT INTO audit_nodes (${NODE_COLUMNS.map((c) => `"${c}"`).join(', ')}) VALUES ${rows}`;
    pgInsertSql.set(nodes, q);
  }
  return q;
}

async function appendPostgres(tx: Executor, ctx: RequestContext, input: AuditInput): Promise<number> {
  const seq = await nextSeq(tx);
  const siblings = await readSiblings(tx, seq);
  const row = eventRow(seq, ctx, input);
  const values = newNodes(seq, eventLeafHash(toEvent(row)), siblings);
  await tx.executeQuery(CompiledQuery.raw(pgInsert(values.length / NODE_COLUMNS.length), [...eventParameters(row), ...values]));
  return seq;
}

/**
 * Takes the next sequence number. The counter row serialises writers (its row lock on
 * PostgreSQL, across connections and processes; the database lock on SQLite): seq numbers
 * are gap-free in commit order, and every earlier event and its nodes are committed
 * before the next writer gets past this statement.
 */
async function nextSeq(tx: Executor): Promise<number> {
  const headQuery = compiledOnce(
    tx,
    'head',
    () =>
      tx
        .updateTable('audit_head')
        .set((eb) => ({ next_seq: eb('next_seq', '+', 1) }))
        .where('id', '=', 1)
        .returning('next_seq')
        .compile(),
    [1, 1],
  );
  const head = (await tx.executeQuery(headQuery)).rows[0];
  if (!head) throw new Error('the audit_head row is missing');
  return Number(head.next_seq) - 1;
}

/**
 * The stored left siblings an append at `seq` hashes with, level 0 first, in one
 * statement (none for odd seq). Run after nextSeq, in a statement of its own: on
 * PostgreSQL (read committed) its snapshot then sees what the writer before committed.
 */
async function readSiblings(tx: Executor, seq: number): Promise<Buffer[]> {
  const needed = siblingsOf(seq);
  if (needed.length === 0) return [];
  const q = compiledOnce(
    tx,
    `siblings:${needed.length}`,
    () =>
      tx
        .selectFrom('audit_nodes')
        .select(['level', 'hash'])
        .where((eb) => eb.or(needed.map((n) => eb.and([eb('end_seq', '=', completedAt(n.level, n.index)), eb('level', '=', n.level)]))))
        .compile(),
    needed.flatMap((n) => [completedAt(n.level, n.index), n.level]),
  );
  const found = new Map<number, string>();
  for (const r of (await tx.executeQuery(q)).rows) found.set(Number(r.level), r.hash);
  return needed.map(({ level, index }) => hashOf(level, index, found.get(level)));
}

// SQLite: the counter, the siblings (one statement, only for even seq), the event, and
// one insert of all the new nodes.
async function appendSqlite(tx: Executor, ctx: RequestContext, input: AuditInput): Promise<number> {
  const seq = await nextSeq(tx);
  const siblings = await readSiblings(tx, seq);
  const row = eventRow(seq, ctx, input);
  // Parameters in the column order of `row`, which is built the same way every time.
  await tx.executeQuery(compiledOnce(tx, 'event', () => tx.insertInto('audit_events').values(row).compile(), Object.values(row)));
  const values = newNodes(seq, eventLeafHash(toEvent(row)), siblings);
  const width = NODE_COLUMNS.length;
  const nodesQuery = compiledOnce(
    tx,
    `nodes:${values.length / width}`,
    () => {
      // Keys in NODE_COLUMNS order: the compiled parameters are `values` as they stand.
      const nodes: { end_seq: number; level: number; idx: number; hash: string }[] = [];
      for (let i = 0; i < values.length; i += width) {
        nodes.push({ end_seq: values[i] as number, level: values[i + 1] as number, idx: values[i + 2] as number, hash: values[i + 3] as string });
      }
      return tx.insertInto('audit_nodes').values(nodes).compile();
    },
    values,
  );
  await tx.executeQuery(nodesQuery);
  return seq;
}

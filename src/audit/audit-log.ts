// The audit seam: every authentication event and every guard decision is an event,
// written in the same transaction as the change it records. If the write fails, the
// transaction fails and the change does not happen (fail closed). The Merkle log,
// signed tree heads and proofs build on this table.
import type { CompiledQuery, Kysely, Transaction } from 'kysely';
import type { RequestContext } from '../core/index.ts';
import { ModelkeepError } from '../core/index.ts';
import type { AuditEventsTable, Database } from '../storage/index.ts';
import { eventLeafData } from './canonical.ts';
import { completedNodes, leafHash } from './merkle.ts';

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

export interface AuditEvent {
  seq: number;
  time: string;
  actor: string | null;
  actorId: string | null;
  sessionId: string | null;
  ip: string | null;
  userAgent: string | null;
  action: string;
  resource: string | null;
  projectId: string | null;
  outcome: Outcome;
  reason: string | null;
  policyVersion: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
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

// The hot statements of an append are compiled once per database (dialect) and shape,
// then re-run with new parameters: building and compiling them with Kysely on every
// append cost about as much as SQLite executing them.
const compiledByAdapter = new WeakMap<object, Map<string, CompiledQuery>>();
function compiledOnce<R>(ex: Executor, key: string, build: () => CompiledQuery<R>, parameters: readonly unknown[]): CompiledQuery<R> {
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

export class AuditLog {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Appends one event using `tx`: it commits or rolls back with the caller's change. */
  async append(tx: Executor, ctx: RequestContext, input: AuditInput): Promise<number> {
    try {
      // The counter row serialises writers: gap-free sequence numbers in commit order.
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
      const seq = Number(head.next_seq) - 1;
      const row = eventRow(seq, ctx, input);
      // Parameters in the column order of `row`, which is built the same way every time.
      await tx.executeQuery(compiledOnce(tx, 'event', () => tx.insertInto('audit_events').values(row).compile(), Object.values(row)));
      // The event becomes leaf seq-1 of the Merkle tree in the same transaction: the
      // perfect subtrees it completes are stored, so roots and proofs are O(log n) reads.
      const leaf = leafHash(eventLeafData(toEvent(row)));
      const nodes = await completedNodes(seq - 1, leaf, (level, index) => readNode(tx, level, index));
      const values = [{ level: 0, idx: seq - 1, hash: leaf.toString('hex') }, ...nodes.map((n) => ({ level: n.level, idx: n.index, hash: n.hash.toString('hex') }))];
      await tx.executeQuery(
        compiledOnce(
          tx,
          `nodes:${values.length}`,
          () => tx.insertInto('audit_nodes').values(values).compile(),
          values.flatMap((v) => [v.level, v.idx, v.hash]),
        ),
      );
      return seq;
    } catch (err) {
      throw new ModelkeepError('unavailable', 'the audit log could not be written; the action was not performed', { cause: err });
    }
  }

  /** Appends one event in its own transaction (denials and failed logins). */
  async record(ctx: RequestContext, input: AuditInput): Promise<number> {
    return this.#db.transaction().execute((tx) => this.append(tx, ctx, input));
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

/** Reads a stored tree node (see migration 0002); a missing node is a broken tree. */
export async function readNode(ex: Executor, level: number, index: number): Promise<Buffer> {
  const q = compiledOnce(ex, 'node', () => ex.selectFrom('audit_nodes').select('hash').where('level', '=', level).where('idx', '=', index).compile(), [level, index]);
  const r = (await ex.executeQuery(q)).rows[0];
  if (!r) throw new Error(`audit tree node ${level}/${index} is missing`);
  return Buffer.from(r.hash, 'hex');
}

// The audit Merkle tree as stored: its size and root, proofs, and the signed tree heads
// produced every few seconds while events arrive (and on shutdown) and sent to witnesses.
import type { Kysely } from 'kysely';
import type { Clock } from '../core/index.ts';
import type { Database } from '../storage/index.ts';
import type { AlertStore } from './alert-store.ts';
import { type Executor, readNode, toEvent } from './audit-log.ts';
import { eventLeafHash } from './canonical.ts';
import { consistencyProof, EMPTY_ROOT, inclusionProof, rangeHash } from './merkle.ts';
import type { SigningKey } from './signing-key.ts';
import { signTreeHead, type TreeHead } from './tree-head.ts';
import { type Witness, WitnessDisagreement } from './witness.ts';

/** Older events re-hashed per signing cycle (a rolling scrub of the whole log). */
const SCRUB_BATCH = 1000;
/**
 * New events are re-hashed in chunks of this many before the signing transaction, with the
 * event loop free between chunks: done inside it in one piece, two seconds of a busy
 * server's events held every request for ~150 ms.
 */
const PREHASH_CHUNK = 1000;

export interface AuditTreeOptions {
  intervalMs: number;
  witnesses: readonly Witness[];
  onWitnessError?: (witness: string, err: unknown) => void;
}

export class AuditTree {
  readonly #db: Kysely<Database>;
  readonly #key: SigningKey;
  readonly #clock: Clock;
  readonly #alerts: AlertStore;
  readonly #opts: AuditTreeOptions;
  #timer: NodeJS.Timeout | null = null;
  #signing: Promise<TreeHead | null> | null = null;

  constructor(deps: { db: Kysely<Database>; key: SigningKey; clock: Clock; alerts: AlertStore; options: AuditTreeOptions }) {
    this.#db = deps.db;
    this.#key = deps.key;
    this.#clock = deps.clock;
    this.#alerts = deps.alerts;
    this.#opts = deps.options;
  }

  get keyId(): string {
    return this.#key.keyId;
  }
  get publicKeyPem(): string {
    return this.#key.publicKeyPem;
  }

  async size(ex: Executor = this.#db): Promise<number> {
    const h = await ex.selectFrom('audit_head').select('next_seq').where('id', '=', 1).executeTakeFirstOrThrow();
    return Number(h.next_seq) - 1;
  }

  async root(size: number, ex: Executor = this.#db): Promise<Buffer> {
    if (size === 0) return EMPTY_ROOT;
    return rangeHash(0, size, (level, index) => readNode(ex, level, index));
  }

  /** Audit path for event `seq` (1-based) in the tree of `treeSize` events. */
  async inclusion(seq: number, treeSize: number): Promise<Buffer[]> {
    return inclusionProof(seq - 1, treeSize, (level, index) => readNode(this.#db, level, index));
  }

  async consistency(first: number, second: number): Promise<Buffer[]> {
    return consistencyProof(first, second, (level, index) => readNode(this.#db, level, index));
  }

  async latestHead(): Promise<TreeHead | null> {
    const r = await this.#db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
    return r ? { treeSize: Number(r.tree_size), rootHash: r.root_hash, timestamp: r.timestamp, keyId: r.key_id, signature: r.signature } : null;
  }

  async heads(): Promise<TreeHead[]> {
    const rows = await this.#db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size', 'asc').execute();
    return rows.map((r) => ({ treeSize: Number(r.tree_size), rootHash: r.root_hash, timestamp: r.timestamp, keyId: r.key_id, signature: r.signature }));
  }

  /** Signs a head for the current tree if it grew since the last one; sends it to the witnesses. */
  signNow(): Promise<TreeHead | null> {
    // One signing at a time; callers during a run share its result.
    this.#signing ??= this.#prehash()
      .then((found) => (found ? this.#tampered(found.problem, found.size) : this.#sign()))
      .finally(() => {
        this.#signing = null;
      });
    return this.#signing;
  }

  async #sign(): Promise<TreeHead | null> {
    const head = await this.#db.transaction().execute(async (tx) => {
      const size = await this.size(tx);
      const last = await tx.selectFrom('audit_tree_heads').select(['tree_size', 'root_hash']).orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
      if (last && Number(last.tree_size) >= size) return null;
      // Monitor: before signing, the stored tree must still extend the last signed head,
      // the events since then must hash to their stored leaves (most were checked by
      // #prehash just before), and a rolling window of older events is re-hashed too. A
      // head is never signed over rows found tampered.
      const problem = await this.#selfCheck(tx, last ? { size: Number(last.tree_size), root: last.root_hash } : null, size);
      if (problem) return { problem, size };
      const root = await this.root(size, tx);
      const h = signTreeHead({ treeSize: size, rootHash: root.toString('hex'), timestamp: this.#clock.now().toISOString(), keyId: this.#key.keyId }, this.#key.privateKey);
      await tx
        .insertInto('audit_tree_heads')
        .values({ tree_size: h.treeSize, root_hash: h.rootHash, timestamp: h.timestamp, key_id: h.keyId, signature: h.signature })
        .execute();
      return h;
    });
    // Raised after the transaction: on SQLite it holds the only connection.
    if (head && 'problem' in head) return this.#tampered(head.problem, head.size);
    if (head) await this.#witness(head);
    return head;
  }

  /** Records what the monitor found (once per event) and signs nothing. */
  async #tampered(problem: { seq: number; message: string }, size: number): Promise<null> {
    await this.#alerts
      .raiseOnce(
        {
          rule: 'audit-tamper',
          severity: 'high',
          eventTime: this.#clock.now().toISOString(),
          eventSeq: problem.seq,
          summary: `the audit log was changed outside the application: ${problem.message}`,
          details: { seq: problem.seq, treeSize: size },
        },
        `audit-tamper:${problem.seq}`,
        this.#clock.now(),
      )
      .catch(() => null);
    this.#opts.onWitnessError?.('monitor', new Error(problem.message));
    return null;
  }

  /** Events after the last signed head already re-hashed by #prehash (none yet: 0). */
  #prehashedTo = 0;

  /**
   * Re-hashes the events since the last signed head in chunks, yielding between them, so
   * the signing transaction only checks what arrived meanwhile. A head still commits only
   * to leaves the rows were found to hash to; a row changed after its check no longer
   * verifies against the head that covers it (the verifier names it).
   */
  async #prehash(): Promise<{ problem: { seq: number; message: string }; size: number } | null> {
    const size = await this.size();
    const last = await this.#db.selectFrom('audit_tree_heads').select('tree_size').orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
    const signed = last ? Number(last.tree_size) : 0;
    let from = Math.max(signed, Math.min(this.#prehashedTo, size));
    while (from < size) {
      const to = Math.min(size, from + PREHASH_CHUNK);
      const problem = await this.#rehash(this.#db, from, to);
      if (problem) return { problem, size };
      this.#prehashedTo = to;
      from = to;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return null;
  }

  #scrubFrom = 0;

  async #selfCheck(tx: Executor, last: { size: number; root: string } | null, size: number): Promise<{ seq: number; message: string } | null> {
    const signed = last?.size ?? 0;
    if (last && signed > 0 && (await this.root(signed, tx)).toString('hex') !== last.root) {
      return { seq: 1, message: `the stored tree no longer matches the signed head of size ${signed}` };
    }
    // What #prehash checked just before is not read again under the transaction.
    const fresh = await this.#rehash(tx, Math.max(signed, Math.min(this.#prehashedTo, size)), size);
    if (fresh) return fresh;
    if (signed === 0) return null;
    if (this.#scrubFrom >= signed) this.#scrubFrom = 0;
    const from = this.#scrubFrom;
    const to = Math.min(signed, from + SCRUB_BATCH);
    this.#scrubFrom = to;
    return this.#rehash(tx, from, to);
  }

  /** Re-hashes events (from, to] and compares them with their stored leaves. */
  async #rehash(tx: Executor, from: number, to: number): Promise<{ seq: number; message: string } | null> {
    if (to <= from) return null;
    const rows = await tx.selectFrom('audit_events').selectAll().where('seq', '>', from).where('seq', '<=', to).orderBy('seq').execute();
    const leaves = await tx
      .selectFrom('audit_nodes')
      .select(['idx', 'hash'])
      // Leaf i ends at seq i + 1 (the key, migration 0009).
      .where('end_seq', '>', from)
      .where('end_seq', '<=', to)
      .where('level', '=', 0)
      .orderBy('end_seq')
      .execute();
    for (let seq = from + 1; seq <= to; seq++) {
      const row = rows[seq - from - 1];
      const leaf = leaves[seq - from - 1];
      if (!row || Number(row.seq) !== seq) return { seq, message: `event ${seq} is missing` };
      if (!leaf || Number(leaf.idx) !== seq - 1) return { seq, message: `the leaf of event ${seq} is missing` };
      if (eventLeafHash(toEvent(row)).toString('hex') !== leaf.hash) return { seq, message: `event ${seq} no longer matches its leaf hash` };
    }
    return null;
  }

  async #witness(head: TreeHead): Promise<void> {
    for (const w of this.#opts.witnesses) {
      try {
        await w.publish(head, (size) => this.consistency(size, head.treeSize));
      } catch (err) {
        if (err instanceof WitnessDisagreement) {
          // The database disagrees with history held outside it: rollback or rewrite.
          await this.#alerts
            .raise(
              {
                rule: 'audit-witness-disagreement',
                severity: 'high',
                eventTime: head.timestamp,
                summary: `audit witness ${w.name} disagrees with the log (${err.kind}): ${err.message}`,
                details: { witness: w.name, kind: err.kind, treeSize: head.treeSize },
              },
              this.#clock.now(),
            )
            .catch(() => {});
        }
        this.#opts.onWitnessError?.(w.name, err);
      }
    }
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      this.signNow().catch((err) => this.#opts.onWitnessError?.('signer', err));
    }, this.#opts.intervalMs);
    this.#timer.unref();
  }

  /** Stops the schedule and signs a last head for what is there. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.signNow().catch(() => null);
  }
}

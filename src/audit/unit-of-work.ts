// A change and its audit events commit in one transaction. When the transaction fails,
// the attempt is still recorded afterwards in a transaction of its own: a denial with its
// reason, or an allowed action that then failed (conflict, invalid state) as 'error'.
import type { Kysely, Transaction } from 'kysely';
import type { RequestContext } from '../core/index.ts';
import { isModelkeepError } from '../core/index.ts';
import type { Database } from '../storage/index.ts';
import type { AuditInput, AuditLog } from './audit-log.ts';

export interface Work {
  readonly tx: Transaction<Database>;
  /** The last action authorised in this unit of work, recorded as 'error' if it fails. */
  attempted: AuditInput | null;
}

const pending = new WeakMap<object, AuditInput>();

/** Marks an error with the audit event to record once the failed transaction is rolled back. */
export function withAudit<E extends object>(err: E, input: AuditInput): E {
  pending.set(err, input);
  return err;
}

export function pendingAuditOf(err: unknown): AuditInput | undefined {
  return typeof err === 'object' && err !== null ? pending.get(err) : undefined;
}

export async function inTransaction<T>(
  db: Kysely<Database>,
  audit: AuditLog,
  ctx: RequestContext,
  fn: (work: Work) => Promise<T>,
): Promise<T> {
  let work: Work | null = null;
  try {
    return await db.transaction().execute(async (tx) => {
      work = { tx, attempted: null };
      return fn(work);
    });
  } catch (err) {
    const denial = pendingAuditOf(err);
    const attempted = (work as Work | null)?.attempted;
    const input: AuditInput | null = denial
      ? denial
      : attempted
        ? { ...attempted, outcome: 'error', reason: isModelkeepError(err) ? err.code : 'internal' }
        : null;
    if (input) {
      // If even this write fails, the original error still wins; the action did not happen.
      await audit.record(ctx, input).catch(() => {});
    }
    throw err;
  }
}

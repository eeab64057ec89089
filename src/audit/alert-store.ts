// Stored alerts: what detectors (and the tree-head witnesses) raise.
import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import { newId } from '../core/index.ts';
import type { AuditAlertsTable, Database } from '../storage/index.ts';
import type { Executor } from './audit-log.ts';

export type Severity = AuditAlertsTable['severity'];

export interface Alert {
  id: string;
  rule: string;
  severity: Severity;
  createdAt: string;
  eventTime: string;
  eventSeq: number | null;
  actor: string | null;
  projectId: string | null;
  summary: string;
  details: Record<string, unknown>;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
}

export interface NewAlert {
  rule: string;
  severity: Severity;
  /** When the triggering event happened (time-to-detect = createdAt - eventTime). */
  eventTime: string;
  eventSeq?: number | null;
  actor?: string | null;
  projectId?: string | null;
  summary: string;
  details?: Record<string, unknown>;
}

const toAlert = (r: AuditAlertsTable): Alert => ({
  id: r.id,
  rule: r.rule,
  severity: r.severity,
  createdAt: r.created_at,
  eventTime: r.event_time,
  eventSeq: r.event_seq === null ? null : Number(r.event_seq),
  actor: r.actor,
  projectId: r.project_id,
  summary: r.summary,
  details: JSON.parse(r.details) as Record<string, unknown>,
  acknowledgedAt: r.acknowledged_at,
  acknowledgedBy: r.acknowledged_by,
});

export class AlertStore {
  readonly #db: Kysely<Database>;
  readonly #listeners = new Set<(a: Alert) => void>();
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** Called with every alert after it is stored (webhooks, metrics). */
  onAlert(fn: (a: Alert) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  async raise(a: NewAlert, now: Date): Promise<Alert> {
    const row = toRow(a, newId('alr'), now);
    await this.#db.insertInto('audit_alerts').values(row).execute();
    const alert = toAlert(row);
    for (const fn of this.#listeners) fn(alert);
    return alert;
  }

  /**
   * Stores the alert under an id derived from `key` unless that incident is stored
   * already: detectors on several replicas, or a retried poll, raise it once. Returns
   * null (and tells no listener) when it was there.
   */
  async raiseOnce(a: NewAlert, key: string, now: Date): Promise<Alert | null> {
    const row = toRow(a, alertIdFor(key), now);
    const r = await this.#db
      .insertInto('audit_alerts')
      .values(row)
      .onConflict((oc) => oc.column('id').doNothing())
      .executeTakeFirst();
    if (Number(r.numInsertedOrUpdatedRows ?? 0n) !== 1) return null;
    const alert = toAlert(row);
    for (const fn of this.#listeners) fn(alert);
    return alert;
  }

  /** Newest first. `projectIds` restricts to alerts of those projects (auditors see theirs only). */
  async list(q: { after?: string; limit?: number; unacknowledged?: boolean; projectIds?: readonly string[] } = {}): Promise<Alert[]> {
    if (q.projectIds?.length === 0) return [];
    let query = this.#db.selectFrom('audit_alerts').selectAll();
    if (q.after) query = query.where('created_at', '>', q.after);
    if (q.projectIds) query = query.where('project_id', 'in', q.projectIds);
    if (q.unacknowledged) query = query.where('acknowledged_at', 'is', null);
    const rows = await query.orderBy('created_at', 'desc').limit(Math.min(Math.max(q.limit ?? 100, 1), 1000)).execute();
    return rows.map(toAlert);
  }

  async get(id: string): Promise<Alert | null> {
    const r = await this.#db.selectFrom('audit_alerts').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toAlert(r) : null;
  }

  /** Marks the alert acknowledged once; `ex` lets the caller commit it with its audit event. */
  async acknowledge(id: string, by: string, now: Date, ex: Executor = this.#db): Promise<boolean> {
    const r = await ex
      .updateTable('audit_alerts')
      .set({ acknowledged_at: now.toISOString(), acknowledged_by: by })
      .where('id', '=', id)
      .where('acknowledged_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }
}

function toRow(a: NewAlert, id: string, now: Date): AuditAlertsTable {
  return {
    id,
    rule: a.rule,
    severity: a.severity,
    created_at: now.toISOString(),
    event_time: a.eventTime,
    event_seq: a.eventSeq ?? null,
    actor: a.actor ?? null,
    project_id: a.projectId ?? null,
    summary: a.summary,
    details: JSON.stringify(a.details ?? {}),
    acknowledged_at: null,
    acknowledged_by: null,
  };
}

/** The stored id of the incident `key`: the same key always gives the same id. */
export function alertIdFor(key: string): string {
  return `alr_${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`;
}

// Prometheus text exposition (format 0.0.4) of the alerting numbers, computed from the
// database so every replica answers the same and restarts lose nothing:
//   modelkeep_alerts_total{rule,severity}          counter
//   modelkeep_alerts_unacknowledged{severity}      gauge
//   modelkeep_audit_events_total                   counter
//   modelkeep_time_to_detect_seconds{quantile}     gauge (p50, p99 over recent alerts)
// GET /metrics needs the bearer token from config (metrics.token); without one it is 404.
import type { Kysely } from 'kysely';
import { ModelkeepError, secretsEqual } from '../../core/index.ts';
import type { Database } from '../../storage/index.ts';

export interface TimeToDetect {
  /** Alerts measured (detector alerts, which name the event they come from). */
  count: number;
  p50Seconds: number | null;
  p99Seconds: number | null;
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? null;
}

/**
 * Time-to-detect (alert createdAt - eventTime) over the `limit` most recent detector
 * alerts, optionally those created at or after `since` (ISO time). The bench reads this.
 */
export async function timeToDetect(db: Kysely<Database>, opts: { limit?: number; since?: string } = {}): Promise<TimeToDetect> {
  let q = db.selectFrom('audit_alerts').select(['created_at', 'event_time']).where('event_seq', 'is not', null);
  if (opts.since !== undefined) q = q.where('created_at', '>=', opts.since);
  const rows = await q
    .orderBy('created_at', 'desc')
    .limit(Math.min(Math.max(opts.limit ?? 10_000, 1), 100_000))
    .execute();
  const secs = rows
    .map((r) => (Date.parse(r.created_at) - Date.parse(r.event_time)) / 1000)
    .filter((s) => Number.isFinite(s))
    // Replicas' clocks may differ slightly: an alert is never detected before its event.
    .map((s) => Math.max(0, s))
    .sort((a, b) => a - b);
  return { count: secs.length, p50Seconds: percentile(secs, 50), p99Seconds: percentile(secs, 99) };
}

const label = (v: string) => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const num = (v: number | null) => (v === null ? 'NaN' : String(v));

export async function renderMetrics(db: Kysely<Database>): Promise<string> {
  const byRule = await db
    .selectFrom('audit_alerts')
    .select(['rule', 'severity', (eb) => eb.fn.countAll().as('n')])
    .groupBy(['rule', 'severity'])
    .orderBy('rule')
    .orderBy('severity')
    .execute();
  const open = await db
    .selectFrom('audit_alerts')
    .select(['severity', (eb) => eb.fn.countAll().as('n')])
    .where('acknowledged_at', 'is', null)
    .groupBy('severity')
    .orderBy('severity')
    .execute();
  const head = await db.selectFrom('audit_head').select('next_seq').where('id', '=', 1).executeTakeFirst();
  const ttd = await timeToDetect(db);
  const lines = [
    '# HELP modelkeep_alerts_total Alerts raised, by rule and severity.',
    '# TYPE modelkeep_alerts_total counter',
    ...byRule.map((r) => `modelkeep_alerts_total{rule="${label(r.rule)}",severity="${label(r.severity)}"} ${Number(r.n)}`),
    '# HELP modelkeep_alerts_unacknowledged Alerts nobody has acknowledged yet, by severity.',
    '# TYPE modelkeep_alerts_unacknowledged gauge',
    ...open.map((r) => `modelkeep_alerts_unacknowledged{severity="${label(r.severity)}"} ${Number(r.n)}`),
    '# HELP modelkeep_audit_events_total Events appended to the audit log.',
    '# TYPE modelkeep_audit_events_total counter',
    `modelkeep_audit_events_total ${head ? Number(head.next_seq) - 1 : 0}`,
    '# HELP modelkeep_time_to_detect_seconds Time from an audit event to its alert, over recent alerts.',
    '# TYPE modelkeep_time_to_detect_seconds gauge',
    `modelkeep_time_to_detect_seconds{quantile="0.5"} ${num(ttd.p50Seconds)}`,
    `modelkeep_time_to_detect_seconds{quantile="0.99"} ${num(ttd.p99Seconds)}`,
    '# HELP modelkeep_time_to_detect_alerts Alerts the time-to-detect quantiles are computed over.',
    '# TYPE modelkeep_time_to_detect_alerts gauge',
    `modelkeep_time_to_detect_alerts ${ttd.count}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The /metrics endpoint's gate and body: a scraper presents the configured bearer token. */
export class MetricsExporter {
  readonly #db: Kysely<Database>;
  readonly #token: string | undefined;
  constructor(db: Kysely<Database>, token: string | undefined) {
    this.#db = db;
    this.#token = token;
  }

  /** `authorization` is the request's Authorization header. */
  async scrape(authorization: string | undefined): Promise<string> {
    // No token configured: the endpoint does not exist (nothing to guess at).
    if (this.#token === undefined) throw new ModelkeepError('not_found', 'no such route');
    const m = /^Bearer ([\x21-\x7e]{1,512})$/.exec(authorization ?? '');
    if (!m?.[1]) throw new ModelkeepError('unauthenticated', 'a bearer token is required', { hint: 'send Authorization: Bearer <metrics.token>' });
    // Constant-time: the comparison must not tell a scanner how much of the token it got right.
    if (!secretsEqual(m[1], this.#token)) throw new ModelkeepError('forbidden', 'not allowed');
    return renderMetrics(this.#db);
  }
}

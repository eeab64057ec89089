// The detector engine tails the audit log: every pollMs it reads the committed events
// after the last one it saw (seq > cursor, at most batchSize), feeds each to the rules in
// order, and stores what they detect through AlertStore. It only reads audit_events, so
// any number of servers on one PostgreSQL can run it: each judges the same events the
// same way and AlertStore.raiseOnce keeps one alert per incident.
//
// Commit order: writers take the audit_head row inside their transaction, so seq N+1 is
// handed out only after the transaction holding N committed or rolled back. A reader
// that sees N+1 has therefore seen N: polling `seq > cursor` misses nothing.
import type { Kysely } from 'kysely';
import type { Clock } from '../../core/index.ts';
import type { Database } from '../../storage/index.ts';
import type { Alert, AlertStore } from '../alert-store.ts';
import { type AuditEvent, toEvent } from '../audit-log.ts';
import { breakGlassRule, passkeyCloneRule, refreshReuseRule } from './critical-actions.ts';
import type { LocationResolver } from './location.ts';
import { LocationRules } from './location-rules.ts';
import { OffHoursRule } from './off-hours.ts';
import { type Detection, type DetectorsConfig, eventMs, type Rule } from './types.ts';
import { DenialBurstRule, MassDownloadRule } from './volume-rules.ts';

export interface DetectorEngineDeps {
  db: Kysely<Database>;
  alerts: AlertStore;
  clock: Clock;
  config: DetectorsConfig;
  resolver: LocationResolver;
  /** Project id to name, for per-project working hours. */
  projectName?: (id: string) => Promise<string | null>;
  /** Replaces the built-in rules (tests, experiments). */
  rules?: readonly Rule[];
}

const MAX_PENDING = 10_000;
const PREPARE_ATTEMPTS = 5;

export class DetectorEngine {
  readonly #db: Kysely<Database>;
  readonly #alerts: AlertStore;
  readonly #clock: Clock;
  readonly #cfg: DetectorsConfig;
  readonly rules: readonly Rule[];
  /** Where failures go (a broken rule, the database away); the loop keeps going. */
  onError: (err: unknown) => void = () => {};
  #cursor = 0;
  #started = false;
  #stopped = false;
  #timer: NodeJS.Timeout | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  /** Detections not stored yet (the database failed): stored before any new event is read. */
  readonly #pending: Detection[] = [];
  #failed: { seq: number; count: number } | null = null;

  constructor(deps: DetectorEngineDeps) {
    this.#db = deps.db;
    this.#alerts = deps.alerts;
    this.#clock = deps.clock;
    this.#cfg = deps.config;
    const c = deps.config;
    this.rules = deps.rules ?? [
      new OffHoursRule(c.offHours, deps.projectName ?? (async () => null)),
      new LocationRules({ db: deps.db, resolver: deps.resolver, config: c }),
      new MassDownloadRule(c.massDownload),
      new DenialBurstRule(c.denialBurst),
      refreshReuseRule(c.refreshReuse),
      breakGlassRule(c.breakGlass),
      passkeyCloneRule(c.passkeyClone),
    ];
  }

  /** The seq of the last event judged. */
  get position(): number {
    return this.#cursor;
  }

  /**
   * Starts at the current end of the log (older events are not judged), after a quiet
   * replay of the last warmupEvents events that refills the sliding windows, then polls.
   */
  async start(): Promise<void> {
    if (this.#started || !this.#cfg.enabled) return;
    this.#started = true;
    const end = Number((await this.#db.selectFrom('audit_events').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst())?.m ?? 0);
    let from = Math.max(0, end - this.#cfg.warmupEvents);
    while (from < end) {
      const rows = await this.#read(from, Math.min(this.#cfg.batchSize, end - from));
      if (rows.length === 0) break;
      for (const row of rows) {
        from = Number(row.seq);
        let e: AuditEvent;
        try {
          e = toEvent(row);
        } catch {
          continue;
        }
        for (const rule of this.rules) this.#observe(rule, e, true);
      }
    }
    this.#cursor = end;
    this.#schedule(this.#cfg.pollMs);
  }

  /** Stops polling after judging what is committed now (bounded), so a clean shutdown loses nothing. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (!this.#started) return;
    try {
      await this.catchUp(10);
    } catch (err) {
      this.onError(err);
    }
  }

  /**
   * Judges committed events until none is left, at most `maxBatches` batches; returns how
   * many it judged. Serialised with the polling loop. Tests and the bench call it instead
   * of waiting for a poll.
   */
  async catchUp(maxBatches = 1000): Promise<number> {
    if (!this.#started) return 0;
    let total = 0;
    for (let i = 0; i < maxBatches; i++) {
      const n = await this.#tick();
      total += n;
      if (n < this.#cfg.batchSize) break;
    }
    return total;
  }

  #schedule(delay: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#tick().then(
        (n) => this.#schedule(n >= this.#cfg.batchSize ? 0 : this.#cfg.pollMs),
        (err: unknown) => {
          this.onError(err);
          this.#schedule(this.#cfg.pollMs);
        },
      );
    }, delay);
    this.#timer.unref();
  }

  #tick(): Promise<number> {
    const run = this.#chain.then(() => this.#poll());
    this.#chain = run.catch(() => {});
    return run;
  }

  async #read(after: number, limit: number) {
    return this.#db.selectFrom('audit_events').selectAll().where('seq', '>', after).orderBy('seq', 'asc').limit(limit).execute();
  }

  async #poll(): Promise<number> {
    await this.#flush();
    const rows = await this.#read(this.#cursor, this.#cfg.batchSize);
    for (const row of rows) {
      let e: AuditEvent;
      try {
        e = toEvent(row);
      } catch (err) {
        // An unreadable row (details that are not JSON) is the verifier's finding; it must
        // not stop detection on every event after it.
        this.onError(err);
        this.#cursor = Number(row.seq);
        continue;
      }
      await this.#prepare(e);
      for (const rule of this.rules) this.#pending.push(...this.#observe(rule, e, false));
      this.#cursor = e.seq;
      if (this.#pending.length > MAX_PENDING) this.#pending.splice(0, this.#pending.length - MAX_PENDING);
      await this.#flush();
      // node:sqlite is synchronous: awaited queries never let the event loop turn, so a
      // batch would hold every HTTP request for its whole length. Yield between events.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return rows.length;
  }

  /**
   * Storage first: if a lookup fails, the poll stops before anything is counted and the
   * event is read again next time. After PREPARE_ATTEMPTS failures on one event it is
   * judged with the state at hand, so one bad event cannot stop detection for good.
   */
  async #prepare(e: AuditEvent): Promise<void> {
    try {
      for (const rule of this.rules) await rule.prepare?.(e);
      this.#failed = null;
    } catch (err) {
      const n = this.#failed?.seq === e.seq ? this.#failed.count + 1 : 1;
      this.#failed = { seq: e.seq, count: n };
      if (n < PREPARE_ATTEMPTS) throw err;
      this.onError(err);
      this.#failed = null;
    }
  }

  #observe(rule: Rule, e: AuditEvent, replay: boolean): Detection[] {
    try {
      return rule.observe(e, replay);
    } catch (err) {
      // One broken rule must not blind the others.
      this.onError(err);
      return [];
    }
  }

  async #flush(): Promise<void> {
    while (this.#pending.length > 0) {
      const d = this.#pending[0];
      if (!d) break;
      await this.#raise(d);
      this.#pending.shift();
    }
  }

  async #raise(d: Detection): Promise<Alert | null> {
    const now = this.#clock.now();
    const at = eventMs(d.event);
    // Time-to-detect: from the event to its alert, in the clock the events are stamped with.
    const timeToDetectMs = at === null ? null : Math.max(0, now.getTime() - at);
    return this.#alerts.raiseOnce(
      {
        rule: d.rule,
        severity: d.severity,
        eventTime: d.event.time,
        eventSeq: d.event.seq,
        actor: d.actor,
        projectId: d.projectId,
        summary: d.summary,
        details: { ...d.details, timeToDetectMs },
      },
      d.key,
      now,
    );
  }
}

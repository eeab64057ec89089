// Volume rules over sliding windows: mass download (exfiltration) and denial bursts
// (probing for what a credential can reach).
import type { AuditEvent } from '../audit-log.ts';
import { normalizeIp } from './location.ts';
import { type Detection, type DetectorsConfig, eventMs, type Rule } from './types.ts';
import { type Burst, BurstTracker, commonProject } from './windows.ts';

const range = (b: Burst) => ({ firstSeq: b.entries[0]?.seq ?? null, lastSeq: b.entries.at(-1)?.seq ?? null });

/** N allowed artifact downloads, or B bytes, by one actor within T minutes. */
export class MassDownloadRule implements Rule {
  readonly name = 'mass-download';
  readonly #cfg: DetectorsConfig['massDownload'];
  readonly #tracker: BurstTracker;

  constructor(cfg: DetectorsConfig['massDownload']) {
    this.#cfg = cfg;
    this.#tracker = new BurstTracker({ windowMs: cfg.windowMinutes * 60_000, count: cfg.count, sum: cfg.bytes });
  }

  observe(e: AuditEvent, replay: boolean): Detection[] {
    if (!this.#cfg.enabled || e.action !== 'artifact:download' || e.outcome !== 'allow' || e.actorId === null) return [];
    const t = eventMs(e);
    if (t === null) return [];
    const size = typeof e.details.size === 'number' && Number.isFinite(e.details.size) && e.details.size > 0 ? e.details.size : 0;
    const b = this.#tracker.add(e.actorId, { t, seq: e.seq, amount: size, tag: e.actorId, projectId: e.projectId });
    if (!b || replay) return [];
    return [
      {
        rule: this.name,
        severity: this.#cfg.severity,
        key: `${this.name}|${e.actorId}|${b.bucket}`,
        event: e,
        actor: e.actor,
        projectId: commonProject(b.entries),
        summary: `${e.actor ?? e.actorId} downloaded ${b.count} artifacts (${b.sum} bytes) within ${this.#cfg.windowMinutes} min`,
        details: {
          downloads: b.count,
          bytes: b.sum,
          windowMinutes: this.#cfg.windowMinutes,
          thresholdCount: this.#cfg.count,
          thresholdBytes: this.#cfg.bytes,
          ...range(b),
        },
      },
    ];
  }
}

/** N denials (outcomes from config) by one actor, or from one address, within T minutes. */
export class DenialBurstRule implements Rule {
  readonly name = 'denial-burst';
  readonly #cfg: DetectorsConfig['denialBurst'];
  readonly #byActor: BurstTracker;
  readonly #byIp: BurstTracker;

  constructor(cfg: DetectorsConfig['denialBurst']) {
    this.#cfg = cfg;
    const opts = { windowMs: cfg.windowMinutes * 60_000, count: cfg.count };
    this.#byActor = new BurstTracker(opts);
    this.#byIp = new BurstTracker(opts);
  }

  observe(e: AuditEvent, replay: boolean): Detection[] {
    if (!this.#cfg.enabled || !(this.#cfg.outcomes as readonly string[]).includes(e.outcome)) return [];
    const t = eventMs(e);
    if (t === null) return [];
    const entry = { t, seq: e.seq, amount: 1, tag: e.actorId ?? '', projectId: e.projectId };
    const out: Detection[] = [];
    const base = { rule: this.name, severity: this.#cfg.severity, event: e };
    if (e.actorId !== null) {
      const b = this.#byActor.add(e.actorId, entry);
      if (b) {
        out.push({
          ...base,
          key: `${this.name}|actor:${e.actorId}|${b.bucket}`,
          actor: e.actor,
          projectId: commonProject(b.entries),
          summary: `${e.actor ?? e.actorId} was refused ${b.count} times within ${this.#cfg.windowMinutes} min`,
          details: { by: 'actor', denials: b.count, windowMinutes: this.#cfg.windowMinutes, ip: e.ip, ...range(b) },
        });
      }
    }
    const ip = e.ip === null ? null : (normalizeIp(e.ip)?.address ?? e.ip);
    if (ip !== null) {
      // An address whose denials all come from one signed-in actor is that actor's burst,
      // reported above; the address matters when several accounts (or none) probe from it.
      const several = (b: Burst) => {
        const tags = new Set(b.entries.map((x) => x.tag));
        return tags.size > 1 || tags.has('');
      };
      const b = this.#byIp.add(ip, entry, several);
      if (b) {
        const actors = new Set(b.entries.map((x) => x.tag).filter((x) => x !== ''));
        out.push({
          ...base,
          key: `${this.name}|ip:${ip}|${b.bucket}`,
          actor: null,
          projectId: commonProject(b.entries),
          summary: `${b.count} refusals from ${ip} within ${this.#cfg.windowMinutes} min (${actors.size} accounts)`,
          details: { by: 'ip', ip, denials: b.count, accounts: actors.size, windowMinutes: this.#cfg.windowMinutes, ...range(b) },
        });
      }
    }
    return replay ? [] : out;
  }
}

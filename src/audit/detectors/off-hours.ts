// Off-hours access: a successful or allowed action by a user outside the working hours
// configured for that user (first), for the project it touches (second), or by default.
// A stolen credential is often used when its owner is asleep.
import type { AuditEvent } from '../audit-log.ts';
import { type Detection, type DetectorsConfig, eventMs, type Rule } from './types.ts';
import { BoundedMap } from './windows.ts';
import { localTime, type WorkingHours, withinHours } from './working-hours.ts';

export class OffHoursRule implements Rule {
  readonly name = 'off-hours';
  readonly #cfg: DetectorsConfig['offHours'];
  readonly #projectName: (id: string) => Promise<string | null>;
  readonly #names = new BoundedMap<string, string | null>(10_000);
  readonly #firedAt = new BoundedMap<string, number>(10_000);
  readonly #byProject: boolean;

  constructor(cfg: DetectorsConfig['offHours'], projectName: (id: string) => Promise<string | null>) {
    this.#cfg = cfg;
    this.#projectName = projectName;
    this.#byProject = Object.keys(cfg.projects).length > 0;
  }

  #applies(e: AuditEvent): boolean {
    return this.#cfg.enabled && e.actorId !== null && (e.outcome === 'allow' || e.outcome === 'success');
  }

  async prepare(e: AuditEvent): Promise<void> {
    if (!this.#applies(e) || !this.#byProject || e.projectId === null || this.#names.get(e.projectId) !== undefined) return;
    this.#names.set(e.projectId, await this.#projectName(e.projectId));
  }

  #hours(e: AuditEvent): { hours: WorkingHours; by: string } | null {
    const user = e.actor === null ? undefined : this.#cfg.users[e.actor];
    if (user) return { hours: user, by: `user ${e.actor}` };
    const name = e.projectId === null ? null : (this.#names.get(e.projectId) ?? null);
    const project = name === null ? undefined : this.#cfg.projects[name];
    if (project) return { hours: project, by: `project ${name}` };
    return this.#cfg.default ? { hours: this.#cfg.default, by: 'default' } : null;
  }

  observe(e: AuditEvent, replay: boolean): Detection[] {
    if (replay || !this.#applies(e) || e.actorId === null) return [];
    const t = eventMs(e);
    const h = this.#hours(e);
    if (t === null || h === null || withinHours(h.hours, new Date(t))) return [];
    const windowMs = this.#cfg.dedupeMinutes * 60_000;
    const last = this.#firedAt.get(e.actorId);
    if (last !== undefined && t - last < windowMs) return [];
    this.#firedAt.set(e.actorId, t);
    const local = localTime(new Date(t), h.hours.timeZone);
    return [
      {
        rule: this.name,
        severity: this.#cfg.severity,
        key: `${this.name}|${e.actorId}|${Math.floor(t / windowMs)}`,
        event: e,
        actor: e.actor,
        projectId: e.projectId,
        summary: `${e.actor ?? e.actorId} acted outside working hours (${local.text} ${h.hours.timeZone}, hours of ${h.by}): ${e.action}`,
        details: {
          action: e.action,
          resource: e.resource,
          localTime: local.text,
          timeZone: h.hours.timeZone,
          hours: `${h.hours.days.join(',')} ${h.hours.start}-${h.hours.end}`,
          hoursOf: h.by,
          ip: e.ip,
        },
      },
    ];
  }
}

// New network zone and impossible travel. A user's earlier zones and last location come
// from the audit log itself (bounded look-back), so a restarted or additional server
// judges exactly like one that has run all along.
import type { Kysely } from 'kysely';
import type { Database } from '../../storage/index.ts';
import type { AuditEvent } from '../audit-log.ts';
import { distanceKm, type LocationResolver } from './location.ts';
import { type Detection, type DetectorsConfig, eventMs, type Rule } from './types.ts';
import { BoundedMap } from './windows.ts';

interface Seen {
  zone: string;
  lat: number;
  lon: number;
  t: number;
  seq: number;
  ip: string;
}

interface UserState {
  /** Zones of the user's successful logins so far. */
  zones: Set<string>;
  /** The user's last event from a place with coordinates. */
  last: Seen | null;
  travelFiredAt: number | null;
}

export class LocationRules implements Rule {
  readonly name = 'location';
  readonly #db: Kysely<Database>;
  readonly #resolver: LocationResolver;
  readonly #cfg: DetectorsConfig;
  readonly #users = new BoundedMap<string, UserState>(10_000);

  constructor(deps: { db: Kysely<Database>; resolver: LocationResolver; config: DetectorsConfig }) {
    this.#db = deps.db;
    this.#resolver = deps.resolver;
    this.#cfg = deps.config;
  }

  #enabled(): boolean {
    return this.#cfg.newZone.enabled || this.#cfg.impossibleTravel.enabled;
  }

  #isLogin(e: AuditEvent): boolean {
    return e.outcome === 'success' && this.#cfg.newZone.loginActions.includes(e.action);
  }

  async prepare(e: AuditEvent): Promise<void> {
    if (!this.#enabled() || e.actorId === null || this.#resolver.resolve(e.ip) === null) return;
    if (this.#users.get(e.actorId)) return;
    const lo = Math.max(0, e.seq - this.#cfg.historyEvents);
    const recent = this.#db
      .selectFrom('audit_events')
      .where('actor_id', '=', e.actorId)
      .where('ip', 'is not', null)
      .where('seq', '<', e.seq)
      .where('seq', '>=', lo);
    const logins = await recent
      .select('ip')
      .distinct()
      .where('action', 'in', this.#cfg.newZone.loginActions)
      .where('outcome', '=', 'success')
      .limit(1000)
      .execute();
    const zones = new Set<string>();
    for (const r of logins) {
      const z = this.#resolver.resolve(r.ip);
      if (z) zones.add(z.zone);
    }
    let last: Seen | null = null;
    for (const r of await recent.select(['ip', 'time', 'seq']).orderBy('seq', 'desc').limit(50).execute()) {
      const z = this.#resolver.resolve(r.ip);
      const t = Date.parse(r.time);
      if (z && z.lat !== null && z.lon !== null && r.ip !== null && Number.isFinite(t)) {
        last = { zone: z.zone, lat: z.lat, lon: z.lon, t, seq: Number(r.seq), ip: r.ip };
        break;
      }
    }
    this.#users.set(e.actorId, { zones, last, travelFiredAt: null });
  }

  observe(e: AuditEvent, replay: boolean): Detection[] {
    if (replay || !this.#enabled() || e.actorId === null || e.ip === null) return [];
    const loc = this.#resolver.resolve(e.ip);
    const t = eventMs(e);
    if (!loc || t === null) return [];
    let st = this.#users.get(e.actorId);
    if (!st) {
      st = { zones: new Set(), last: null, travelFiredAt: null };
      this.#users.set(e.actorId, st);
    }
    const who = e.actor ?? e.actorId;
    const out: Detection[] = [];
    if (this.#cfg.newZone.enabled && this.#isLogin(e) && !st.zones.has(loc.zone)) {
      // The first login ever sets the baseline; a login from a zone outside it is news.
      if (st.zones.size > 0) {
        out.push({
          rule: 'new-zone',
          severity: this.#cfg.newZone.severity,
          key: `new-zone|${e.actorId}|${loc.zone}`,
          event: e,
          actor: e.actor,
          projectId: null,
          summary: `${who} signed in from a network zone never seen for them: ${loc.zone}`,
          details: { zone: loc.zone, country: loc.country, source: loc.source, ip: e.ip, knownZones: [...st.zones].sort() },
        });
      }
      st.zones.add(loc.zone);
    }
    const tr = this.#cfg.impossibleTravel;
    if (tr.enabled && loc.lat !== null && loc.lon !== null) {
      const prev = st.last;
      if (prev && prev.zone !== loc.zone) {
        const km = distanceKm(prev.lat, prev.lon, loc.lat, loc.lon);
        const hours = Math.max(0, t - prev.t) / 3_600_000;
        const kmh = hours > 0 ? km / hours : Number.POSITIVE_INFINITY;
        const windowMs = tr.dedupeMinutes * 60_000;
        // Two places farther apart than any flight covers in the time between: one of the
        // two sessions is not the user (a stolen credential or token).
        if (km >= tr.minDistanceKm && kmh > tr.maxKmh && (st.travelFiredAt === null || t - st.travelFiredAt >= windowMs)) {
          st.travelFiredAt = t;
          out.push({
            rule: 'impossible-travel',
            severity: tr.severity,
            key: `impossible-travel|${e.actorId}|${Math.floor(t / windowMs)}`,
            event: e,
            actor: e.actor,
            projectId: null,
            summary: `${who} was in ${prev.zone} and ${loc.zone} ${Math.round(km)} km apart within ${formatDuration(t - prev.t)}`,
            details: {
              from: { zone: prev.zone, ip: prev.ip, seq: prev.seq, time: new Date(prev.t).toISOString() },
              to: { zone: loc.zone, ip: e.ip, seq: e.seq, time: e.time },
              distanceKm: Math.round(km),
              speedKmh: Number.isFinite(kmh) ? Math.round(kmh) : null,
              maxKmh: tr.maxKmh,
            },
          });
        }
      }
      st.last = { zone: loc.zone, lat: loc.lat, lon: loc.lon, t, seq: e.seq, ip: e.ip };
    }
    return out;
  }
}

function formatDuration(ms: number): string {
  const m = Math.max(0, Math.round(ms / 60_000));
  return m < 120 ? `${m} min` : `${Math.round(m / 60)} h`;
}

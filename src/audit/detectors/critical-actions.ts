// Events that are an incident by themselves: a spent refresh token presented again (the
// identity layer revokes the family; someone holds a stolen token) and break-glass access
// (immediate alert, mandatory review).

import type { Severity } from '../alert-store.ts';
import type { AuditEvent } from '../audit-log.ts';
import type { Detection, Rule } from './types.ts';

export interface CriticalActionConfig {
  enabled: boolean;
  severity: Severity;
  action: string;
}

export class CriticalActionRule implements Rule {
  readonly name: string;
  readonly #cfg: CriticalActionConfig;
  readonly #describe: (e: AuditEvent) => string;
  readonly #incident: (e: AuditEvent) => string;

  constructor(name: string, cfg: CriticalActionConfig, describe: (e: AuditEvent) => string, incident: (e: AuditEvent) => string = (e) => String(e.seq)) {
    this.name = name;
    this.#cfg = cfg;
    this.#describe = describe;
    this.#incident = incident;
  }

  observe(e: AuditEvent, replay: boolean): Detection[] {
    if (replay || !this.#cfg.enabled || e.action !== this.#cfg.action) return [];
    return [
      {
        rule: this.name,
        severity: this.#cfg.severity,
        key: `${this.name}|${this.#incident(e)}`,
        event: e,
        actor: e.actor,
        projectId: e.projectId,
        summary: this.#describe(e),
        details: { action: e.action, outcome: e.outcome, resource: e.resource, ip: e.ip, reason: e.reason, requestId: e.requestId, event: e.details },
      },
    ];
  }
}

const who = (e: AuditEvent) => e.actor ?? e.actorId ?? 'an unknown client';

export function refreshReuseRule(cfg: CriticalActionConfig): CriticalActionRule {
  return new CriticalActionRule(
    'refresh-token-reuse',
    cfg,
    (e) => `a spent refresh token of ${who(e)} was presented again${e.ip ? ` from ${e.ip}` : ''}: its token family is revoked`,
    // One alert per token family when the identity layer names it, else per event.
    (e) => {
      const family = e.details.familyId ?? e.details.family;
      return typeof family === 'string' && family !== '' ? `family:${family}` : `seq:${e.seq}`;
    },
  );
}

/** A passkey's signature counter went back: two copies of its private key may exist. */
export function passkeyCloneRule(cfg: CriticalActionConfig): CriticalActionRule {
  return new CriticalActionRule(
    'passkey-clone-suspected',
    cfg,
    (e) => `a passkey of ${e.resource ?? who(e)} presented a signature counter that did not increase${e.ip ? ` from ${e.ip}` : ''}: the authenticator may be cloned`,
    (e) => (typeof e.details.passkeyId === 'string' ? `passkey:${e.details.passkeyId}` : `seq:${e.seq}`),
  );
}

export function breakGlassRule(cfg: CriticalActionConfig): CriticalActionRule {
  return new CriticalActionRule('break-glass', cfg, (e) => `${who(e)} used break-glass access${e.resource ? ` to ${e.resource}` : ''}: review required`);
}

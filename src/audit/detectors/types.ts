// What every detector rule looks like to the engine.
import type { Config } from '../../core/index.ts';
import type { Severity } from '../alert-store.ts';
import type { AuditEvent } from '../audit-log.ts';

export type DetectorsConfig = Config['detectors'];

/** One incident a rule found. The engine stores it once per `key`. */
export interface Detection {
  rule: string;
  severity: Severity;
  /**
   * Names the incident: rule, who and which window. Every replica that reads the same
   * events derives the same key, so the incident is stored once (AlertStore.raiseOnce).
   */
  key: string;
  /** The event that completed the pattern: its time and seq become eventTime/eventSeq. */
  event: AuditEvent;
  actor: string | null;
  projectId: string | null;
  summary: string;
  details: Record<string, unknown>;
}

export interface Rule {
  readonly name: string;
  /**
   * Optional: fetches what `observe` needs from storage (history, names) without changing
   * any state. If it throws, the engine retries the event later, nothing counted twice.
   */
  prepare?(e: AuditEvent): Promise<void>;
  /**
   * Updates the rule's state with the event and returns what it detects. Synchronous:
   * an event is counted exactly once. `replay` is the warm-up at start: state only.
   */
  observe(e: AuditEvent, replay: boolean): Detection[];
}

/** Milliseconds since the epoch of an event, or null when its time cannot be read. */
export function eventMs(e: AuditEvent): number | null {
  const t = Date.parse(e.time);
  return Number.isFinite(t) ? t : null;
}

// The leaf format of the audit log: which members of an event a Merkle leaf holds, and how
// they are named. Free of Node APIs so that the console's in-browser verifier
// (src/web/verify.ts) uses this very definition instead of a copy that could drift.

export const LEAF_FORMAT = 'modelkeep-audit-event/1';

/** What a leaf is built from: the stored event as the API returns it. */
export interface LeafEvent {
  seq: number;
  time: string;
  actorId: string | null;
  actor: string | null;
  sessionId: string | null;
  ip: string | null;
  userAgent: string | null;
  action: string;
  resource: string | null;
  projectId: string | null;
  outcome: string;
  reason: string | null;
  policyVersion: string | null;
  requestId: string | null;
  details: Record<string, unknown>;
}

export const EVENT_KEYS = [
  'v',
  'seq',
  'time',
  'actorId',
  'actor',
  'sessionId',
  'ip',
  'userAgent',
  'action',
  'resource',
  'projectId',
  'outcome',
  'reason',
  'policyVersion',
  'requestId',
  'details',
] as const;

/** The members of an event's leaf: the one definition of the leaf format. */
export function leafFields(e: LeafEvent): Record<(typeof EVENT_KEYS)[number], unknown> {
  return {
    v: LEAF_FORMAT,
    seq: e.seq,
    time: e.time,
    actorId: e.actorId,
    actor: e.actor,
    sessionId: e.sessionId,
    ip: e.ip,
    userAgent: e.userAgent,
    action: e.action,
    resource: e.resource,
    projectId: e.projectId,
    outcome: e.outcome,
    reason: e.reason,
    policyVersion: e.policyVersion,
    requestId: e.requestId,
    details: e.details,
  };
}

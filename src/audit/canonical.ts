// The exact bytes of an audit event that become a Merkle leaf: RFC 8785 (JCS) canonical
// JSON of every stored field, so anyone holding the rows can recompute the tree.
import canonicalize from 'canonicalize';
import type { AuditEvent } from './audit-log.ts';

export const LEAF_FORMAT = 'modelkeep-audit-event/1';

export function eventLeafData(e: AuditEvent): Buffer {
  const text = canonicalize({
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
  });
  if (text === undefined) throw new Error('audit event cannot be canonicalized');
  return Buffer.from(text, 'utf8');
}

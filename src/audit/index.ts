export { type AuditEvent, type AuditInput, AuditLog, type AuditQuery, type Executor, type Outcome } from './audit-log.ts';
export { inTransaction, pendingAuditOf, type Work, withAudit } from './unit-of-work.ts';

export { type Alert, AlertStore, alertIdFor, type NewAlert, type Severity } from './alert-store.ts';
export { type AuditEvent, type AuditInput, AuditLog, type AuditQuery, type Executor, eventRow, type Outcome, readNode, toEvent } from './audit-log.ts';
export { AuditTree, type AuditTreeOptions } from './audit-tree.ts';
export { eventLeafData, eventLeafText, LEAF_FORMAT, leafFields, leafText } from './canonical.ts';
export * from './detectors/index.ts';
export * as merkle from './merkle.ts';
export { DEFAULT_KEY_FILE, keyIdOf, loadSigningKey, publicKeyInfo, type SigningKey } from './signing-key.ts';
export { signTreeHead, type TreeHead, treeHeadMessage, verifyTreeHead } from './tree-head.ts';
export { inTransaction, pendingAuditOf, type Work, withAudit } from './unit-of-work.ts';
export {
  type DatabaseLog,
  eventLeafHash,
  FAILURE_KINDS,
  LogFrontier,
  readDatabaseLog,
  type StoredLeaf,
  signHeadsOver,
  type UnreadableEvent,
  type VerifiableEvent,
  type VerifyFailure,
  type VerifyFailureKind,
  type VerifyInput,
  type VerifyResult,
  type VerifySummary,
  verifyLog,
  type WitnessHeads,
} from './verifier.ts';
export { FileWitness, readWitnessFile, WebhookWitness, WITNESS_FILE, type Witness, WitnessDisagreement, webhookSignature } from './witness.ts';

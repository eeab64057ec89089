// The contract between domain services and the guard (authz). Domain modules depend on
// this interface, not on the engine behind it.

import type { RequestContext } from './context.ts';

export const PROJECT_ROLES = [
  'viewer',
  'data-scientist',
  'ml-engineer',
  'release-manager',
  'auditor',
  'project-admin',
] as const;
export type ProjectRole = (typeof PROJECT_ROLES)[number];
export const PLATFORM_ROLES = ['platform-admin'] as const;
export type Role = ProjectRole | (typeof PLATFORM_ROLES)[number];

export const STAGES = ['none', 'staging', 'production', 'archived'] as const;
export type Stage = (typeof STAGES)[number];
export const ENVIRONMENTS = ['dev', 'staging', 'production'] as const;
export type Environment = (typeof ENVIRONMENTS)[number];
export type Sensitivity = 'internal' | 'restricted';

/**
 * Scopes a token or API key may carry. Each caps a group of actions (policies/schema.cedarschema:
 * every action is `in` one `scope:*` group); a credential without a scope can never perform the
 * actions of that group, whatever the roles of its owner.
 */
export const SCOPES = ['read', 'download', 'write', 'release', 'trigger', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export type Action =
  | 'project:create'
  | 'project:read'
  | 'model:create'
  | 'model:read'
  | 'version:create'
  | 'version:read'
  | 'artifact:upload'
  | 'version:finalize'
  | 'artifact:download'
  | 'version:promote'
  | 'deployment:read'
  | 'deployment:update'
  | 'pipeline:read'
  | 'pipeline:trigger'
  | 'audit:read'
  | 'binding:read'
  | 'binding:manage'
  | 'user:create'
  | 'user:read'
  | 'user:deactivate'
  | 'policy:read'
  | 'policy:reload';

export interface ResourceRef {
  /** e.g. 'platform', 'project', 'model', 'version', 'artifact', 'deployment', 'pipeline', 'binding', 'user'. */
  type: string;
  /** Human-readable path for audit and errors, e.g. 'fraud/churn@3/model.onnx'. */
  path: string;
  /** Owning project (null for platform-scoped resources). */
  projectId: string | null;
  projectName?: string;
  sensitivity?: Sensitivity;
  stage?: Stage;
  /** For version:promote: the stage requested. */
  targetStage?: Stage;
  environment?: Environment;
  /** For binding:manage: whom the binding names, and which role. */
  targetPrincipalId?: string;
  targetRole?: string;
}

export interface Decision {
  decision: 'allow' | 'deny';
  /** Safe to show the caller. */
  reason: string;
  hint?: string;
  /** Whether the caller may know the resource exists (403) or not (404). */
  visible: boolean;
  /** A denial that a fresh second factor alone would lift: answered 428 mfa_required. */
  mfaRequired?: boolean;
  /** Refused until the account sets up a second factor: answered 403 mfa_enrollment_required. */
  enrollmentRequired?: boolean;
  policyVersion: string;
}

/** The policy enforcement point every domain service method calls before acting. */
export interface Authorizer<Tx = unknown> {
  /** sha256 of the active policy set: audit events that summarise guard decisions (listings) carry it. */
  readonly policyVersion: string;
  /**
   * Decides and records the decision in the audit log. An allow is written with `tx`
   * (so it commits with the change); a deny is written at once and throws 404 or 403.
   */
  authorize(ctx: RequestContext, action: Action, resource: ResourceRef, tx?: Tx, details?: Record<string, unknown>): Promise<Decision>;
  /** Decides without throwing and without recording (for listing visible things). */
  check(ctx: RequestContext, action: Action, resource: ResourceRef, tx?: Tx): Promise<Decision>;
  /**
   * Whether the caller may know that the resource exists: exactly `check(…).visible` for
   * any action, without a policy evaluation and without recording (name lookups ask it
   * before looking inside a project; the action itself is then authorized).
   */
  visible(ctx: RequestContext, resource: ResourceRef, tx?: Tx): Promise<boolean>;
}

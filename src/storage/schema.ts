// Row types of every table. Times are ISO-8601 UTC strings (portable across SQLite and
// PostgreSQL); booleans are 0/1 integers; JSON is text.
import type { Generated } from 'kysely';

export interface UsersTable {
  id: string;
  username: string;
  email: string | null;
  password_hash: string | null;
  status: 'active' | 'deactivated';
  created_at: string;
  deactivated_at: string | null;
  /** Access tokens issued before this time are rejected (logout-all, password change). */
  tokens_not_before: string | null;
}

export interface SessionsTable {
  id: string;
  token_hash: string;
  csrf_hash: string;
  user_id: string;
  amr: string;
  auth_time: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: string | null;
  user_agent: string | null;
  revoked_at: string | null;
  revoked_reason: string | null;
  /** When a second factor last succeeded in this session (step-up freshness). */
  mfa_at: string | null;
}

export interface ServiceAccountsTable {
  id: string;
  name: string;
  /** The project the account belongs to (null: platform-level). */
  project_id: string | null;
  client_id: string;
  /** Hash of the client secret; the secret itself is shown once. */
  secret_hash: string;
  /** JSON array of the scopes its tokens may carry. */
  scopes: string;
  status: 'active' | 'disabled';
  created_at: string;
  created_by: string;
  disabled_at: string | null;
}

export interface RoleBindingsTable {
  id: string;
  /** 'platform' or a project id. */
  scope: string;
  principal_kind: 'user' | 'service';
  principal_id: string;
  role: string;
  expires_at: string | null;
  created_at: string;
  created_by: string;
}

export interface ProjectsTable {
  id: string;
  name: string;
  description: string;
  created_at: string;
  created_by: string;
}

export interface ModelsTable {
  id: string;
  project_id: string;
  name: string;
  description: string;
  sensitivity: 'internal' | 'restricted';
  next_version: number;
  created_at: string;
  created_by: string;
}

export interface ModelVersionsTable {
  id: string;
  model_id: string;
  version: number;
  state: 'draft' | 'ready';
  stage: 'none' | 'staging' | 'production' | 'archived';
  description: string;
  metadata: string;
  created_at: string;
  created_by: string;
  finalized_at: string | null;
  stage_changed_at: string | null;
}

export interface ArtifactsTable {
  id: string;
  version_id: string;
  path: string;
  size: number;
  sha256: string;
  created_at: string;
  created_by: string;
}

export interface DeploymentsTable {
  id: string;
  project_id: string;
  name: string;
  environment: 'dev' | 'staging' | 'production';
  model_id: string;
  version_id: string;
  /** Digests of the version's artifacts when deployed: the deployment pins content. */
  config: string;
  updated_at: string;
  updated_by: string;
}

export interface PipelineRunsTable {
  id: string;
  project_id: string;
  pipeline: string;
  parameters: string;
  status: 'queued' | 'running' | 'succeeded' | 'failed';
  created_at: string;
  created_by: string;
}

export interface AuditEventsTable {
  seq: number;
  time: string;
  actor_id: string | null;
  actor: string | null;
  session_id: string | null;
  ip: string | null;
  user_agent: string | null;
  action: string;
  resource: string | null;
  project_id: string | null;
  outcome: 'allow' | 'deny' | 'error' | 'success' | 'failure';
  reason: string | null;
  policy_version: string | null;
  request_id: string | null;
  details: string;
}

export interface AuditHeadTable {
  id: number;
  next_seq: number;
}

export interface AuditNodesTable {
  /** The seq of the append that completed the node, (idx + 1) * 2^level: with level, the key (migration 0009). */
  end_seq: number;
  level: number;
  idx: number;
  /** Hex SHA-256. */
  hash: string;
}

export interface AuditTreeHeadsTable {
  tree_size: number;
  root_hash: string;
  timestamp: string;
  key_id: string;
  signature: string;
}

export interface AuditAlertsTable {
  id: string;
  rule: string;
  severity: 'low' | 'medium' | 'high';
  created_at: string;
  event_time: string;
  event_seq: number | null;
  actor: string | null;
  project_id: string | null;
  summary: string;
  details: string;
  acknowledged_at: string | null;
  acknowledged_by: string | null;
}

/** A WebAuthn passkey. Only public material: the private key never leaves the authenticator. */
export interface WebauthnCredentialsTable {
  id: string;
  user_id: string;
  /** base64url credential id; unique across all users. */
  credential_id: string;
  /** base64url COSE public key. */
  public_key: string;
  /** Last signature counter seen (0: the authenticator keeps none). */
  counter: number;
  /** JSON array of transport hints. */
  transports: string;
  name: string;
  aaguid: string;
  created_at: string;
  last_used_at: string | null;
}

/** An outstanding WebAuthn challenge: single use, short-lived, bound to a ceremony and a user or session. */
export interface WebauthnChallengesTable {
  id: string;
  /** Hex SHA-256 of the base64url challenge. */
  challenge_hash: string;
  ceremony: 'register' | 'login' | 'step-up' | 'second-factor';
  user_id: string | null;
  /** The session (or pending-login token hash) the ceremony belongs to. */
  binding: string | null;
  created_at: string;
  expires_at: string;
  used_at: string | null;
}

/** Ed25519 keys that sign access tokens; shared by every server process through the DB. */
export interface SigningKeysTable {
  kid: string;
  /** Always 'EdDSA': the algorithm is pinned per key here, never taken from a token header. */
  alg: string;
  public_jwk: string;
  private_jwk: string;
  created_at: string;
  /** New tokens are signed with this key until then. */
  retire_at: string;
  /** Published and accepted until then (retire_at + longest token lifetime + skew). */
  not_after: string;
}

/** One grant (a device login, say): its refresh tokens rotate, the family lives or dies as one. */
export interface TokenFamiliesTable {
  id: string;
  user_id: string;
  client_id: string;
  scope: string;
  amr: string;
  auth_time: string;
  mfa_at: string | null;
  created_at: string;
  /** Absolute lifetime: no refresh extends the family beyond this. */
  expires_at: string;
  revoked_at: string | null;
  revoked_reason: string | null;
}

export interface RefreshTokensTable {
  id: string;
  family_id: string;
  token_hash: string;
  created_at: string;
  /** Idle expiry: unused until then, the token is dead. */
  expires_at: string;
  /** Set when the token is redeemed; a second redemption is reuse. */
  used_at: string | null;
}

export interface DeviceAuthorizationsTable {
  id: string;
  device_code_hash: string;
  /** Normalised: 8 letters, upper case, no hyphen. */
  user_code: string;
  client_id: string;
  scope: string;
  status: 'pending' | 'approved' | 'denied' | 'redeemed';
  created_at: string;
  expires_at: string;
  interval_seconds: number;
  last_poll_at: string | null;
  ip: string | null;
  user_agent: string | null;
  user_id: string | null;
  amr: string | null;
  auth_time: string | null;
  mfa_at: string | null;
  decided_at: string | null;
  family_id: string | null;
}

export interface ApiKeysTable {
  id: string;
  user_id: string;
  name: string;
  token_hash: string;
  scopes: string;
  project_id: string | null;
  created_at: string;
  expires_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

export interface MfaTotpTable {
  user_id: string;
  secret: string;
  created_at: string;
  confirmed_at: string | null;
  last_step: number | string | null;
}

export interface MfaRecoveryCodesTable {
  id: string;
  user_id: string;
  code_hash: string;
  created_at: string;
  used_at: string | null;
}

export interface MfaPendingLoginsTable {
  id: string;
  token_hash: string;
  user_id: string;
  amr: string;
  created_at: string;
  expires_at: string;
  failures: number;
  consumed_at: string | null;
}

export interface AuthThrottleTable {
  key: string;
  failures: number;
  blocked_until: string | null;
  updated_at: string;
}

export interface MigrationsTable {
  id: string;
  applied_at: string;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  mfa_totp: MfaTotpTable;
  mfa_recovery_codes: MfaRecoveryCodesTable;
  mfa_pending_logins: MfaPendingLoginsTable;
  auth_throttle: AuthThrottleTable;
  service_accounts: ServiceAccountsTable;
  webauthn_credentials: WebauthnCredentialsTable;
  webauthn_challenges: WebauthnChallengesTable;
  role_bindings: RoleBindingsTable;
  projects: ProjectsTable;
  models: ModelsTable;
  model_versions: ModelVersionsTable;
  artifacts: ArtifactsTable;
  deployments: DeploymentsTable;
  pipeline_runs: PipelineRunsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  audit_nodes: AuditNodesTable;
  audit_tree_heads: AuditTreeHeadsTable;
  audit_alerts: AuditAlertsTable;
  modelkeep_migrations: MigrationsTable;
  signing_keys: SigningKeysTable;
  token_families: TokenFamiliesTable;
  refresh_tokens: RefreshTokensTable;
  device_authorizations: DeviceAuthorizationsTable;
  api_keys: ApiKeysTable;
}

export type { Generated };

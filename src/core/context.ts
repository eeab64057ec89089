// The request context every domain service method receives first.

export type AuthMethod = 'session' | 'access-token' | 'api-key' | 'service-token';

export type Principal =
  | {
      kind: 'user';
      id: string;
      username: string;
      sessionId: string | null;
      /** Authentication methods references (RFC 8176), e.g. ['pwd'], ['pwd','otp'], ['hwk']. */
      amr: readonly string[];
      authTime: Date;
      /** When a second factor (or a passkey) last succeeded in this session; null if never. */
      mfaAt: Date | null;
      /** How this request authenticated. */
      authMethod: AuthMethod;
      /** Scopes the credential is limited to (access token, API key); null = unscoped console session. */
      scopes: readonly string[] | null;
      /** Project an API key is pinned to, if any. */
      projectId?: string | null;
      /** The account must set up a second factor first (mandatory MFA): the guard refuses every action. */
      mfaEnrollmentRequired?: boolean;
    }
  /** A service account authenticated with client_credentials. */
  | {
      kind: 'service';
      id: string;
      username: string;
      sessionId: null;
      amr: readonly string[];
      authTime: Date;
      mfaAt: null;
      authMethod: 'service-token';
      scopes: readonly string[] | null;
    }
  /** A local operator with file-system access to the data directory (offline bootstrap). */
  | { kind: 'operator'; id: 'operator'; username: 'operator' }
  | { kind: 'anonymous' };

export interface RequestContext {
  readonly requestId: string;
  readonly principal: Principal;
  readonly ip: string | null;
  readonly userAgent: string | null;
  readonly now: Date;
}

export function principalName(p: Principal): string | null {
  return p.kind === 'anonymous' ? null : p.username;
}

export function principalId(p: Principal): string | null {
  return p.kind === 'anonymous' ? null : p.id;
}

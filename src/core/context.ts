// The request context every domain service method receives first.

export type Principal =
  | {
      kind: 'user';
      id: string;
      username: string;
      sessionId: string | null;
      /** Authentication methods references (RFC 8176), e.g. ['pwd']. */
      amr: readonly string[];
      authTime: Date;
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

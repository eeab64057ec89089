// Every call the console makes, typed, in one place: the console uses only the public
// HTTP API (../shared/API.md). The session cookie is HttpOnly (this code never sees it);
// the CSRF token lives in memory only and is sent on every non-GET request.
import type { LeafEvent } from '../audit/leaf-format.ts';

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly hint: string | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(status: number, code: string, message: string, extra: { hint?: string; requestId?: string; retryAfterSeconds?: number } = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = extra.hint;
    this.requestId = extra.requestId;
    this.retryAfterSeconds = extra.retryAfterSeconds;
  }
  /** The route does not exist on this server (a feature it does not offer yet), as opposed to an absent resource. */
  get routeMissing(): boolean {
    return this.status === 404 && this.message === 'no such route';
  }
}

let csrfToken: string | null = null;
let onSessionEnded: (() => void) | null = null;
let onActivity: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}
export function hasCsrfToken(): boolean {
  return csrfToken !== null;
}
/** Called on any 401 from a signed-in call: the session ended (logout, revocation, timeout). */
export function onUnauthenticated(fn: () => void): void {
  onSessionEnded = fn;
}
/** Called after every successful call: the server counts it as activity (idle timeout). */
export function onApiActivity(fn: () => void): void {
  onActivity = fn;
}

const SAFE = new Set(['GET', 'HEAD']);

function mutationHeaders(method: string): Record<string, string> {
  return !SAFE.has(method) && csrfToken ? { 'x-csrf-token': csrfToken } : {};
}

async function errorOf(res: Response): Promise<ApiError> {
  let body: { error?: { code?: string; message?: string; hint?: string; requestId?: string } } = {};
  try {
    body = (await res.json()) as typeof body;
  } catch {
    // not JSON (a proxy's page): fall through to a generic message
  }
  const e = body.error ?? {};
  const retry = res.headers.get('retry-after');
  return new ApiError(res.status, e.code ?? 'http_error', e.message ?? `the server answered ${res.status}`, {
    ...(e.hint ? { hint: e.hint } : {}),
    ...(e.requestId ? { requestId: e.requestId } : {}),
    ...(retry && /^\d+$/.test(retry) ? { retryAfterSeconds: Number(retry) } : {}),
  });
}

interface CallOptions {
  /** A 401 here is an answer (wrong password), not the end of a session. */
  anonymous?: boolean;
}

async function call<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json', ...mutationHeaders(method) };
  const init: RequestInit = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) {
    const err = await errorOf(res);
    if (err.status === 401 && !opts.anonymous) onSessionEnded?.();
    throw err;
  }
  onActivity?.();
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

const enc = encodeURIComponent;

// ---- authentication ------------------------------------------------------------------

export type LoginAnswer =
  | { status: 'ok'; csrfToken: string; mfaEnrollmentRequired?: boolean }
  | { status: 'mfa_required'; mfaToken: string; methods: string[] };

export const auth = {
  login: (username: string, password: string) => call<LoginAnswer>('POST', '/v1/auth/login', { username, password }, { anonymous: true }),
  loginTotp: (mfaToken: string, code: string) =>
    call<{ status: 'ok'; csrfToken: string }>('POST', '/v1/auth/mfa/totp', { mfaToken, code }, { anonymous: true }),
  /** The CSRF token of the current session, after a reload (the cookie authenticates). */
  csrf: () => call<{ csrfToken: string }>('GET', '/v1/auth/csrf', undefined, { anonymous: true }),
  logout: () => call<{ status: string }>('POST', '/v1/auth/logout'),
  logoutAll: () => call<{ status: string }>('POST', '/v1/auth/logout-all'),
  stepUpTotp: (code: string) => call<{ status: string; csrfToken?: string }>('POST', '/v1/auth/step-up/totp', { code }),
  loginRecovery: (mfaToken: string, code: string) =>
    call<{ status: 'ok'; csrfToken: string }>('POST', '/v1/auth/mfa/recovery', { mfaToken, code }, { anonymous: true }),
  /** Passwordless: a passkey is the whole sign-in. */
  passkeyOptions: (username?: string) => call<unknown>('POST', '/v1/auth/passkey/options', username ? { username } : {}, { anonymous: true }),
  passkeyLogin: (response: unknown) => call<{ status: 'ok'; csrfToken: string }>('POST', '/v1/auth/passkey', { response }, { anonymous: true }),
  /** A passkey as the second factor after the password. */
  mfaPasskeyOptions: (mfaToken: string) => call<unknown>('POST', '/v1/auth/mfa/passkey/options', { mfaToken }, { anonymous: true }),
  mfaPasskey: (mfaToken: string, response: unknown) => call<{ status: 'ok'; csrfToken: string }>('POST', '/v1/auth/mfa/passkey', { mfaToken, response }, { anonymous: true }),
  stepUpPasskeyOptions: () => call<unknown>('POST', '/v1/auth/step-up/passkey/options'),
  stepUpPasskey: (response: unknown) => call<{ status: string; csrfToken?: string }>('POST', '/v1/auth/step-up/passkey', { response }),
  device: (userCode: string) => call<DeviceInfo>('GET', `/v1/auth/device?userCode=${enc(userCode)}`),
  approveDevice: (userCode: string) => call<{ status: string }>('POST', '/v1/auth/device/approve', { userCode }),
  denyDevice: (userCode: string) => call<{ status: string }>('POST', '/v1/auth/device/deny', { userCode }),
};

export interface DeviceInfo {
  userCode: string;
  clientId: string;
  scopes: string[];
  requestedAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  mfaRequired: boolean;
}

export interface RoleGrant {
  scope: string;
  role: string;
  expiresAt?: string;
}
export interface Me {
  user: { id: string; username: string; email: string | null };
  session: { id: string; authTime: string; mfaAt: string | null; amr: string[]; expiresAt: string; idleExpiresAt?: string } | null;
  roles: RoleGrant[];
  mfaEnrollmentRequired?: boolean;
}
export interface ActionAnswer {
  allowed: boolean;
  reason?: string;
  hint?: string;
  /** Denied only for want of a fresh second factor: the action asks for one (428) and then works. */
  mfaRequired?: boolean;
}
export interface Permissions {
  resource: string;
  actions: Record<string, ActionAnswer>;
}
export interface SessionInfo {
  id: string;
  current?: boolean;
  createdAt: string;
  lastSeenAt: string;
  expiresAt?: string;
  mfaAt?: string | null;
  ip: string | null;
  userAgent: string | null;
  amr?: string[];
}
export interface ApiKeyInfo {
  id: string;
  name: string;
  scopes: string[];
  project?: string | null;
  createdAt: string;
  expiresAt: string;
  lastUsedAt?: string | null;
}

export interface MfaStatus {
  totp: boolean;
  recoveryCodesLeft: number;
  factors: number;
  enrollmentRequired: boolean;
}
export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
}
export interface Notice {
  at: string;
  kind: string;
  message: string;
  ip: string | null;
  userAgent: string | null;
}

export const me = {
  get: () => call<Me>('GET', '/v1/me'),
  permissions: (resource: string) => call<Permissions>('GET', `/v1/me/permissions?resource=${enc(resource)}`),
  sessions: () => call<{ sessions: SessionInfo[] }>('GET', '/v1/me/sessions'),
  revokeSession: (id: string) => call<void>('DELETE', `/v1/me/sessions/${enc(id)}`),
  apiKeys: () => call<{ apiKeys: ApiKeyInfo[] }>('GET', '/v1/me/api-keys'),
  createApiKey: (input: { name: string; scopes: string[]; project?: string; expiresInDays: number }) =>
    call<ApiKeyInfo & { token: string }>('POST', '/v1/me/api-keys', input),
  revokeApiKey: (id: string) => call<void>('DELETE', `/v1/me/api-keys/${enc(id)}`),
  enrollTotp: () => call<{ secret: string; otpauthUrl: string }>('POST', '/v1/me/mfa/totp'),
  confirmTotp: (code: string) => call<{ recoveryCodes: string[] }>('POST', '/v1/me/mfa/totp/confirm', { code }),
  removeTotp: () => call<{ status: string }>('DELETE', '/v1/me/mfa/totp'),
  newRecoveryCodes: () => call<{ recoveryCodes: string[] }>('POST', '/v1/me/mfa/recovery-codes'),
  mfa: () => call<MfaStatus>('GET', '/v1/me/mfa'),
  passkeys: () => call<{ passkeys: PasskeyInfo[] }>('GET', '/v1/me/passkeys'),
  passkeyOptions: () => call<unknown>('POST', '/v1/me/passkeys/options'),
  addPasskey: (name: string, response: unknown) => call<PasskeyInfo>('POST', '/v1/me/passkeys', { name, response }),
  removePasskey: (id: string) => call<void>('DELETE', `/v1/me/passkeys/${enc(id)}`),
  notifications: (limit = 20) => call<{ notifications: Notice[] }>('GET', `/v1/me/notifications?limit=${limit}`),
};

// ---- registry --------------------------------------------------------------------------

export type Stage = 'none' | 'staging' | 'production' | 'archived';
export interface Project {
  name: string;
  description: string;
  createdAt: string;
}
export interface Model {
  project: string;
  name: string;
  description: string;
  sensitivity: 'internal' | 'restricted';
  createdAt: string;
}
export interface Artifact {
  path: string;
  size: number;
  sha256: string;
}
export interface Version {
  project: string;
  model: string;
  version: number;
  state: 'draft' | 'ready';
  stage: Stage;
  description: string;
  createdAt: string;
  createdBy: string;
  artifacts: Artifact[];
}

const P = (p: string) => `/v1/projects/${enc(p)}`;
const M = (p: string, m: string) => `${P(p)}/models/${enc(m)}`;
const V = (p: string, m: string, v: number) => `${M(p, m)}/versions/${v}`;
/** Artifact paths keep their slashes; each segment is encoded. */
export const artifactUrl = (p: string, m: string, v: number, path: string) => `${V(p, m, v)}/artifacts/${path.split('/').map(enc).join('/')}`;

export const registry = {
  projects: () => call<{ projects: Project[] }>('GET', '/v1/projects'),
  createProject: (name: string, description: string) => call<Project>('POST', '/v1/projects', { name, description }),
  models: (p: string) => call<{ models: Model[] }>('GET', `${P(p)}/models`),
  model: (p: string, m: string) => call<Model>('GET', M(p, m)),
  createModel: (p: string, input: { name: string; description: string; sensitivity: 'internal' | 'restricted' }) => call<Model>('POST', `${P(p)}/models`, input),
  versions: (p: string, m: string) => call<{ versions: Version[] }>('GET', `${M(p, m)}/versions`),
  version: (p: string, m: string, v: number) => call<Version>('GET', V(p, m, v)),
  createVersion: (p: string, m: string, description: string) => call<{ version: number; state: string }>('POST', `${M(p, m)}/versions`, { description }),
  finalize: (p: string, m: string, v: number) => call<Version>('POST', `${V(p, m, v)}/finalize`),
  promote: (p: string, m: string, v: number, stage: Stage) => call<Version>('POST', `${V(p, m, v)}/promote`, { stage }),
  /** Streams a file with upload progress (fetch has none); sends the digest when known. */
  upload(p: string, m: string, v: number, path: string, file: Blob, sha256: string | null, progress: (sent: number, total: number) => void): Promise<Artifact> {
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open('PUT', artifactUrl(p, m, v, path));
      xhr.setRequestHeader('content-type', 'application/octet-stream');
      if (csrfToken) xhr.setRequestHeader('x-csrf-token', csrfToken);
      if (sha256) xhr.setRequestHeader('x-content-sha256', sha256);
      xhr.upload.onprogress = (e) => progress(e.loaded, e.lengthComputable ? e.total : file.size);
      xhr.onerror = () => reject(new ApiError(0, 'network_error', 'the upload failed (network error)'));
      xhr.onload = () => {
        const res = new Response(xhr.responseText, { status: xhr.status, headers: { 'retry-after': xhr.getResponseHeader('retry-after') ?? '' } });
        if (xhr.status >= 200 && xhr.status < 300) {
          onActivity?.();
          resolve(JSON.parse(xhr.responseText) as Artifact);
          return;
        }
        void errorOf(res).then((err) => {
          if (err.status === 401) onSessionEnded?.();
          reject(err);
        });
      };
      xhr.send(file);
    });
  },
};

// ---- administration -----------------------------------------------------------------

export interface UserInfo {
  id: string;
  username: string;
  email: string | null;
  status: string;
  createdAt: string;
  deactivatedAt: string | null;
}
export interface Binding {
  id: string;
  principal: string;
  role: string;
  expiresAt: string | null;
  createdAt: string;
  createdBy: string;
}

export const admin = {
  users: () => call<{ users: UserInfo[] }>('GET', '/v1/admin/users'),
  createUser: (input: { username: string; email?: string; password?: string }) => call<UserInfo>('POST', '/v1/admin/users', input),
  deactivate: (id: string) => call<{ user: UserInfo; sessionsEnded: number }>('POST', `/v1/admin/users/${enc(id)}/deactivate`),
  createServiceAccount: (input: { name: string; project: string; roles: string[]; scopes?: string[] }) =>
    call<{ id: string; name: string; clientId: string; clientSecret: string; scopes: string[]; project: string }>('POST', '/v1/admin/service-accounts', input),
  bindings: (p: string) => call<{ bindings: Binding[] }>('GET', `${P(p)}/bindings`),
  addBinding: (p: string, input: { principal: string; role: string; expiresAt?: string }) => call<Binding>('POST', `${P(p)}/bindings`, input),
  removeBinding: (p: string, id: string) => call<void>('DELETE', `${P(p)}/bindings/${enc(id)}`),
};

// ---- audit and alerts ---------------------------------------------------------------

/** An audit event as GET /v1/audit/events returns it: the server's leaf members. */
export type AuditEvent = LeafEvent;
export interface TreeHead {
  treeSize: number;
  rootHash: string;
  timestamp: string;
  keyId: string;
  signature: string;
}
export interface Alert {
  id: string;
  rule: string;
  severity: string;
  summary?: string;
  message?: string;
  createdAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy?: string | null;
  eventSeq?: number | null;
}

export const audit = {
  events: (q: { after?: number; limit?: number; actor?: string; action?: string; outcome?: string }) => {
    const s = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') s.set(k, String(v));
    return call<{ events: AuditEvent[] }>('GET', `/v1/audit/events?${s}`);
  },
  treeHead: () => call<TreeHead>('GET', '/v1/audit/tree-head'),
  treeHeads: () => call<{ treeHeads: TreeHead[] }>('GET', '/v1/audit/tree-heads'),
  publicKey: () => call<{ algorithm: string; keyId: string; publicKeyPem: string }>('GET', '/v1/audit/public-key'),
  inclusion: (seq: number, treeSize: number) =>
    call<{ leafIndex: number; treeSize: number; auditPath: string[] }>('GET', `/v1/audit/proofs/inclusion?seq=${seq}&treeSize=${treeSize}`),
  consistency: (first: number, second: number) => call<{ first: number; second: number; proof: string[] }>('GET', `/v1/audit/proofs/consistency?first=${first}&second=${second}`),
};

export const alerts = {
  list: (unacknowledged: boolean) => call<{ alerts: Alert[] }>('GET', `/v1/alerts${unacknowledged ? '?unacknowledged=true' : ''}`),
  acknowledge: (id: string) => call<{ alert: Alert }>('POST', `/v1/alerts/${enc(id)}/acknowledge`),
};

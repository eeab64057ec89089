// The HTTP client every online command uses. Built on node:http(s) rather than fetch
// so that uploads can stream from disk with an exact Content-Length and downloads can
// stream to disk, and so that nothing follows a redirect with our cookie attached.

import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Readable } from 'node:stream';
import type { Credentials, TokenCredentials } from './credentials.ts';
import { ApiError, CliError, EXIT } from './errors.ts';
import { safeText } from './output.ts';
import { cliVersion } from './version.ts';

/** Largest JSON answer read into memory; anything bigger is not a Modelkeep answer. */
const MAX_JSON_BYTES = 32 * 1024 * 1024;
/** A request that sees no traffic for this long is abandoned. */
const IDLE_TIMEOUT_MS = 120_000;

export const SESSION_COOKIE_NAMES = ['__Host-modelkeep_session', 'modelkeep_session'] as const;

export interface RequestOptions {
  /** Sent as JSON with `Content-Type: application/json`. */
  json?: unknown;
  /** A raw body streamed as-is; the caller sets Content-Type and Content-Length. */
  body?: Readable;
  headers?: Record<string, string>;
  query?: Record<string, string | number | undefined>;
}

/** A bearer credential from the environment (MODELKEEP_TOKEN: an API key or access token, for CI). */
export interface StaticToken {
  kind: 'static';
  token: string;
}

/** Refresh this long before the access token's expiry, so a request never races it. */
const REFRESH_MARGIN_MS = 30_000;
export const CLI_CLIENT_ID = 'modelkeep-cli';

export class ApiClient {
  readonly server: string;
  #creds: Credentials | StaticToken | null;
  readonly #onSessionRotated: ((c: Credentials) => Promise<void>) | undefined;

  constructor(server: string, creds: Credentials | StaticToken | null, onSessionRotated?: (c: Credentials) => Promise<void>) {
    this.server = server;
    this.#creds = creds;
    this.#onSessionRotated = onSessionRotated;
  }

  get credentials(): Credentials | null {
    return this.#creds?.kind === 'static' ? null : this.#creds;
  }

  /** Uses other credentials from now on (after a step-up replaced the saved login). */
  useCredentials(creds: Credentials): void {
    this.#creds = creds;
  }

  /** Sends a request; with OAuth credentials, refreshes before expiry and once more on a 401. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<IncomingMessage> {
    const c = this.#creds;
    if (c?.kind !== 'oauth') return this.#send(method, path, options);
    if (Date.parse(c.expiresAt) - REFRESH_MARGIN_MS <= Date.now()) await this.refresh();
    const res = await this.#send(method, path, options);
    // A streamed body cannot be sent twice; anything else is retried once with fresh tokens.
    if (res.statusCode !== 401 || options.body !== undefined) return res;
    res.resume();
    await this.refresh();
    return this.#send(method, path, options);
  }

  /** Trades the refresh token for new tokens (rotation) and saves them before going on. */
  async refresh(): Promise<void> {
    const c = this.#creds;
    if (c?.kind !== 'oauth') return;
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: c.refreshToken, client_id: CLI_CLIENT_ID }).toString();
    const res = await this.#send('POST', '/oauth/token', { form });
    const body = (await readOAuthResponse(res)) as { access_token?: unknown; refresh_token?: unknown; expires_in?: unknown; scope?: unknown };
    if (res.statusCode !== 200 || typeof body.access_token !== 'string' || typeof body.refresh_token !== 'string' || typeof body.expires_in !== 'number') {
      throw new CliError(`the saved login for ${this.server} has ended`, EXIT.unauthenticated, `run \`modelkeep login --server ${this.server}\``);
    }
    const fresh: TokenCredentials = {
      ...c,
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      expiresAt: new Date(Date.now() + body.expires_in * 1000).toISOString(),
      scope: typeof body.scope === 'string' ? body.scope : c.scope,
    };
    this.#creds = fresh;
    // The old refresh token is spent: the new one must be on disk before anything else happens.
    await this.#onSessionRotated?.(fresh);
  }

  async #send(method: string, path: string, options: RequestOptions & { form?: string } = {}): Promise<IncomingMessage> {
    const url = this.url(path, options.query);
    const headers: Record<string, string> = {
      'User-Agent': `modelkeep-cli/${cliVersion()}`,
      Accept: 'application/json',
      ...options.headers,
    };
    let payload: Buffer | undefined;
    if (options.json !== undefined) {
      payload = Buffer.from(JSON.stringify(options.json), 'utf8');
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    if (options.form !== undefined) {
      payload = Buffer.from(options.form, 'utf8');
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
      headers['Content-Length'] = String(payload.length);
    }
    const c = this.#creds;
    if (c?.kind === 'static') headers.Authorization = `Bearer ${c.token}`;
    else if (c?.kind === 'oauth') {
      // The token endpoint authenticates the refresh token itself: no bearer there.
      if (!path.startsWith('/oauth/')) headers.Authorization = `Bearer ${c.accessToken}`;
    } else if (c) {
      headers.Cookie = `${c.cookieName}=${c.session}`;
      if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = c.csrfToken;
    }
    const res = await sendRaw(method, url, headers, payload ?? options.body);
    await this.#noticeRotation(res.headers);
    return res;
  }

  /** Sends a request and returns its JSON answer; a non-2xx answer throws ApiError. */
  async json<T = unknown>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    return (await readJsonResponse(res)) as T;
  }

  url(path: string, query?: Record<string, string | number | undefined>): URL {
    const url = new URL(`${this.server}${path}`);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    return url;
  }

  /** POSTs an OAuth form (RFC 6749) and returns status and JSON body, errors included. */
  async oauthForm(path: string, params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await this.#send('POST', path, { form: new URLSearchParams(params).toString() });
    return { status: res.statusCode ?? 0, body: (await readOAuthResponse(res)) as Record<string, unknown> };
  }

  async #noticeRotation(headers: IncomingHttpHeaders): Promise<void> {
    const creds = this.#creds;
    if (!creds || creds.kind === 'static' || creds.kind === 'oauth') return;
    const fresh = findSessionCookie(headers['set-cookie']);
    if (fresh && fresh.name === creds.cookieName && fresh.value !== '' && fresh.value !== creds.session) {
      this.#creds = { ...creds, session: fresh.value };
      await this.#onSessionRotated?.(this.#creds);
    }
  }
}

async function readOAuthResponse(res: IncomingMessage): Promise<unknown> {
  const text = await readText(res, 1024 * 1024);
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null ? v : {};
  } catch {
    return {};
  }
}

/** Path of an API route, each name percent-encoded as one segment. */
export function apiPath(...segments: (string | number)[]): string {
  return `/${segments.map((s) => encodeURIComponent(String(s))).join('/')}`;
}

/** An artifact path (already validated) encoded segment by segment, keeping its slashes. */
export function encodeArtifactPath(path: string): string {
  return path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

export function findSessionCookie(setCookie: string[] | undefined): { name: string; value: string } | null {
  for (const line of setCookie ?? []) {
    const first = line.split(';', 1)[0] ?? '';
    const eq = first.indexOf('=');
    if (eq <= 0) continue;
    const name = first.slice(0, eq).trim();
    if ((SESSION_COOKIE_NAMES as readonly string[]).includes(name)) return { name, value: first.slice(eq + 1).trim() };
  }
  return null;
}

function sendRaw(
  method: string,
  url: URL,
  headers: Record<string, string>,
  body: Buffer | Readable | undefined,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method, headers });
    let answered = false;
    req.setTimeout(IDLE_TIMEOUT_MS, () => req.destroy(new CliError(`${url.host} stopped answering`, EXIT.failure)));
    req.on('response', (res) => {
      answered = true;
      // An early answer (413, 409, 401…) ends the upload: stop reading the file.
      if (body && !Buffer.isBuffer(body) && !body.readableEnded) body.unpipe(req).destroy();
      resolve(res);
    });
    req.on('error', (err) => {
      if (answered) return; // the server answered first and closed; its answer is what counts
      reject(connectionError(url, err));
    });
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

function connectionError(url: URL, err: unknown): CliError {
  if (err instanceof CliError) return err;
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : '';
  const why: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    ECONNRESET: 'connection reset',
    ETIMEDOUT: 'connection timed out',
    EPIPE: 'connection closed',
    DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed',
    SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is signed by an unknown authority',
    UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate cannot be verified',
    CERT_HAS_EXPIRED: 'the server certificate has expired',
    ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate does not match the host name',
  };
  const reason = why[code] ?? (err instanceof Error ? err.message : 'request failed');
  const hint = code.includes('CERT')
    ? 'set NODE_EXTRA_CA_CERTS=/path/to/ca.pem to trust a private certificate authority'
    : 'is the server running? pass --server URL or set MODELKEEP_SERVER';
  return new CliError(`cannot reach ${url.origin}: ${safeText(reason)}`, EXIT.failure, hint);
}

/** Reads the whole answer (bounded) as text. */
export async function readText(res: IncomingMessage, limit = MAX_JSON_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) {
      res.destroy();
      throw new CliError('the server answer is too large', EXIT.failure);
    }
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Returns the parsed JSON of a 2xx answer, or throws the ApiError a non-2xx answer stands for. */
export async function readJsonResponse(res: IncomingMessage): Promise<unknown> {
  const status = res.statusCode ?? 0;
  if (status < 200 || status >= 300) throw await errorFromResponse(res);
  const text = await readText(res);
  if (text === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`the server answered HTTP ${status} with something that is not JSON`, EXIT.failure);
  }
}

/** Turns a non-2xx answer into an ApiError carrying only the server's safe fields. */
export async function errorFromResponse(res: IncomingMessage): Promise<ApiError> {
  const status = res.statusCode ?? 0;
  const requestId = headerValue(res.headers['x-request-id']);
  let text = '';
  try {
    text = await readText(res, 1024 * 1024);
  } catch {
    // keep the status alone
  }
  let code = `http_${status}`;
  let message = `the server answered HTTP ${status}`;
  let hint: string | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    const e = typeof parsed === 'object' && parsed !== null && 'error' in parsed ? parsed.error : undefined;
    if (typeof e === 'object' && e !== null) {
      const o = e as Record<string, unknown>;
      if (typeof o.code === 'string') code = o.code;
      if (typeof o.message === 'string') message = o.message;
      if (typeof o.hint === 'string') hint = o.hint;
    }
  } catch {
    // not a Modelkeep error body (a proxy's HTML page, say): keep the generic text
  }
  if (status === 429) {
    const after = headerValue(res.headers['retry-after']);
    if (after && hint === undefined) hint = `retry after ${after} seconds`;
  }
  return new ApiError(status, code, safeText(message), hint === undefined ? undefined : safeText(hint), requestId);
}

export function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

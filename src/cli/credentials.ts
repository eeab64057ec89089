// The CLI's saved sessions, one per server, in $MODELKEEP_CONFIG_DIR/credentials.json
// (default ~/.config/modelkeep/). The file holds live session secrets: the folder is
// 0700, the file 0600, and it is replaced atomically so a crash never leaves half of it.

import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT, usageError } from './errors.ts';

/** A console session from password login (`login --username`). */
export interface SessionCredentials {
  kind?: 'session';
  server: string;
  cookieName: string;
  session: string;
  csrfToken: string;
  username: string;
}

/** OAuth tokens from the device login: a short-lived access token and a rotating refresh token. */
export interface TokenCredentials {
  kind: 'oauth';
  server: string;
  accessToken: string;
  refreshToken: string;
  /** ISO time the access token expires. */
  expiresAt: string;
  scope: string;
  username: string;
}

export type Credentials = SessionCredentials | TokenCredentials;

interface CredentialsFile {
  version: 1;
  servers: Record<string, Credentials>;
}

export function configDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MODELKEEP_CONFIG_DIR) return env.MODELKEEP_CONFIG_DIR;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'modelkeep');
}

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

function isLoopback(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname) || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/**
 * The canonical form of a server URL, used as the key of the saved sessions:
 * scheme, host, port and any path prefix, without a trailing slash.
 */
export function normalizeServer(raw: string, env: NodeJS.ProcessEnv = process.env): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw usageError(`invalid server URL '${raw}'`, 'pass --server http://127.0.0.1:7470 or https://modelkeep.example.com');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`invalid server URL '${raw}': only http:// and https:// are supported`);
  }
  if (url.username || url.password) {
    // a URL with user:pass@ would park a password in shell history and in credentials.json
    throw usageError('the server URL must not contain a user name or password', 'use `modelkeep login`');
  }
  if (url.search || url.hash) throw usageError(`invalid server URL '${raw}': no query or fragment allowed`);
  // passwords and session cookies must never cross a network in clear
  if (url.protocol === 'http:' && !isLoopback(url.hostname) && env.MODELKEEP_ALLOW_INSECURE_HTTP !== '1') {
    throw usageError(
      `refusing to talk to ${url.host} over plain HTTP: passwords and sessions would travel in clear`,
      'use https://, or set MODELKEEP_ALLOW_INSECURE_HTTP=1 on a network you trust',
    );
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export class CredentialStore {
  readonly dir: string;
  readonly file: string;

  constructor(dir: string) {
    this.dir = dir;
    this.file = join(dir, 'credentials.json');
  }

  async get(server: string): Promise<Credentials | null> {
    const all = await this.#read();
    const c = all.servers[server];
    return c && c.server === server ? c : null;
  }

  async save(creds: Credentials): Promise<void> {
    const all = await this.#read();
    all.servers[creds.server] = creds;
    await this.#write(all);
  }

  /** Removes the saved session for `server`; false when there was none. */
  async remove(server: string): Promise<boolean> {
    const all = await this.#read();
    if (!(server in all.servers)) return false;
    delete all.servers[server];
    await this.#write(all);
    return true;
  }

  async #read(): Promise<CredentialsFile> {
    let text: string;
    try {
      const st = await lstat(this.file);
      // a symlink here could point our secrets, or our reads, at a file someone else controls
      if (!st.isFile()) throw new CliError(`${this.file} is not a regular file; refusing to use it`, EXIT.failure);
      if ((st.mode & 0o077) !== 0) await chmod(this.file, 0o600);
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if (isNotFound(err)) return { version: 1, servers: {} };
      throw err;
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (isCredentialsFile(parsed)) return parsed;
    } catch {
      // fall through
    }
    throw new CliError(`${this.file} is damaged`, EXIT.failure, `delete it and run \`modelkeep login\` again`);
  }

  async #write(all: CredentialsFile): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const st = await lstat(this.dir);
    if (!st.isDirectory()) throw new CliError(`${this.dir} is not a directory`, EXIT.failure);
    if ((st.mode & 0o077) !== 0) await chmod(this.dir, 0o700);
    const tmp = join(this.dir, `.credentials.${randomBytes(6).toString('hex')}.tmp`);
    // 'wx' never follows or reuses a file planted under the temporary name
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(all, null, 2)}\n`, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT';
}

function isCredentialsFile(v: unknown): v is CredentialsFile {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as { version?: unknown; servers?: unknown };
  if (o.version !== 1 || typeof o.servers !== 'object' || o.servers === null) return false;
  return Object.values(o.servers).every((c: unknown) => {
    if (typeof c !== 'object' || c === null) return false;
    const r = c as Record<string, unknown>;
    const fields = r.kind === 'oauth' ? ['server', 'accessToken', 'refreshToken', 'expiresAt', 'scope', 'username'] : ['server', 'cookieName', 'session', 'csrfToken', 'username'];
    return fields.every((k) => typeof r[k] === 'string');
  });
}

// `modelkeep serve` and `modelkeep admin create-user`: the two commands that run the
// server's code in this process instead of talking to a server.

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { ConfigInput } from '../../core/index.ts';
import { isModelkeepError } from '../../core/index.ts';
import { type CommandContext, type CommandDef, optFlag, optList, optString, reqString } from '../command.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { note, print, renderJson, safeText } from '../output.ts';
import { parseNonNegativeInt } from '../refs.ts';
import { readPassword } from '../secret-input.ts';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const;

function dataDir(ctx: CommandContext): string {
  return optString(ctx, 'data-dir') ?? (ctx.env.MODELKEEP_DATA_DIR || './data');
}

/** The server's errors carry a safe message and a stable code; map the code to an exit code. */
function serverError(err: unknown): never {
  if (isModelkeepError(err)) {
    const exit =
      err.code === 'invalid_input'
        ? EXIT.badInput
        : err.code === 'conflict'
          ? EXIT.conflict
          : err.code === 'not_found'
            ? EXIT.notFound
            : EXIT.failure;
    throw new CliError(err.message, exit, err.hint);
  }
  const code = typeof err === 'object' && err !== null && 'code' in err ? err.code : undefined;
  if (code === 'EADDRINUSE') throw new CliError('the address is already in use', EXIT.failure, 'pick another --port, or stop the other server');
  if (code === 'EACCES') throw new CliError('not permitted to listen on that address or port', EXIT.failure);
  throw err;
}

export const serve: CommandDef = {
  path: ['serve'],
  summary: 'run the Modelkeep server',
  usage: '[--config FILE] [--data-dir DIR] [--policies DIR] [--host H] [--port N] [--tls-cert F --tls-key F] [--trusted-proxy ADDR]…',
  description:
    'Runs the server in the foreground until SIGINT or SIGTERM. Data lives in --data-dir (SQLite and blobs);\n' +
    'MODELKEEP_DATABASE_URL=postgres://… selects PostgreSQL instead of SQLite. Binding anything but a loopback\n' +
    'address needs TLS (--tls-cert/--tls-key) or a --trusted-proxy that terminates it.\n' +
    '--policies DIR loads the Cedar policy set (schema.cedarschema + *.cedar) from DIR instead of the shipped\n' +
    'policies/; a set that fails validation stops the start. SIGHUP reloads it (a refused set keeps the old one).\n' +
    '--config reads a JSON file with any setting of docs/configuration.md (sessions, limits, timeouts, audit\n' +
    'witnesses, detectors, alerts, metrics); flags given on the command line win over the file.',
  examples: ['modelkeep serve --data-dir /var/lib/modelkeep --port 7470', 'modelkeep serve --config /etc/modelkeep/config.json'],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: {
    config: { type: 'string', valueName: 'FILE', description: 'JSON configuration file (see docs/configuration.md)' },
    'data-dir': { type: 'string', valueName: 'DIR', description: 'data folder (default: $MODELKEEP_DATA_DIR, else ./data)' },
    policies: { type: 'string', valueName: 'DIR', description: 'Cedar policy folder (default: the shipped policies/)' },
    host: { type: 'string', valueName: 'H', description: 'address to listen on (default: 127.0.0.1)' },
    port: { type: 'string', valueName: 'N', description: 'port to listen on, 0 for any free one (default: 7470)' },
    'tls-cert': { type: 'string', valueName: 'FILE', description: 'PEM certificate chain; serves HTTPS' },
    'tls-key': { type: 'string', valueName: 'FILE', description: 'PEM private key for --tls-cert' },
    'trusted-proxy': {
      type: 'string',
      multiple: true,
      valueName: 'ADDR',
      description: 'accept X-Forwarded-For from this proxy address (repeatable)',
    },
    'log-level': { type: 'string', valueName: 'LEVEL', description: `one of ${LOG_LEVELS.join(', ')} (default: info)` },
  },
  async run(ctx) {
    const file = optString(ctx, 'config');
    const fromFile = file === undefined ? {} : readConfigFile(file);
    const dir = optString(ctx, 'data-dir') ?? fromFile.dataDir ?? (ctx.env.MODELKEEP_DATA_DIR || './data');
    const input: ConfigInput = { ...fromFile, dataDir: dir };
    // The environment carries the database URL (it usually holds a password): it wins over the file.
    const databaseUrl = ctx.env.MODELKEEP_DATABASE_URL || fromFile.databaseUrl;
    if (databaseUrl) input.databaseUrl = databaseUrl;
    const policiesDir = optString(ctx, 'policies');
    if (policiesDir !== undefined) input.policiesDir = resolve(policiesDir);
    const host = optString(ctx, 'host');
    if (host !== undefined) input.host = host;
    const port = optString(ctx, 'port');
    if (port !== undefined) {
      const n = parseNonNegativeInt(port, 'port');
      if (n > 65535) throw usageError(`invalid port '${port}'`);
      input.port = n;
    }
    const cert = optString(ctx, 'tls-cert');
    const key = optString(ctx, 'tls-key');
    if ((cert === undefined) !== (key === undefined)) throw usageError('--tls-cert and --tls-key go together');
    if (cert !== undefined && key !== undefined) input.tls = { certFile: cert, keyFile: key };
    const proxies = optList(ctx, 'trusted-proxy');
    if (proxies.length > 0) input.trustedProxies = proxies;
    const level = optString(ctx, 'log-level');
    if (level !== undefined) {
      if (!(LOG_LEVELS as readonly string[]).includes(level)) throw usageError(`invalid log level '${level}'`);
      input.logLevel = level as (typeof LOG_LEVELS)[number];
    }

    const { reloadPoliciesOnSighup, startServer } = await import('../../main.ts');
    const server = await startServer(input).catch(serverError);
    const stopSighup = reloadPoliciesOnSighup(server, (line) => note(ctx.io, `modelkeep: ${line}`));
    // never print the database URL: it usually carries a password
    const data = databaseUrl ? 'postgres' : resolve(dir);
    print(ctx.io, ctx.json ? `${JSON.stringify({ listening: server.url, data })}\n` : `modelkeep listening on ${server.url} (data: ${data})\n`);

    await new Promise<void>((done) => {
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        if (stopping) {
          note(ctx.io, `modelkeep: ${signal} again, exiting without waiting`);
          process.exit(EXIT.failure);
        }
        stopping = true;
        stopSighup();
        note(ctx.io, 'modelkeep: shutting down');
        server.close().then(done, (err: unknown) => {
          note(ctx.io, `modelkeep: error while shutting down: ${err instanceof Error ? err.message : String(err)}`);
          process.exit(EXIT.failure);
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    return EXIT.ok;
  },
};

export const adminCreateUser: CommandDef = {
  path: ['admin', 'create-user'],
  summary: 'create an account directly in the data folder (offline bootstrap)',
  usage: '--data-dir DIR --username NAME --password-stdin [--email E] [--platform-admin]',
  description:
    'Writes to the database without a running server: this is how the first platform admin is made.\n' +
    'The password is the first line of standard input (or a hidden prompt on a terminal); it is never echoed.\n' +
    'MODELKEEP_DATABASE_URL selects PostgreSQL as for `serve`.',
  examples: ["printf '%s\\n' \"$ADMIN_PASSWORD\" | modelkeep admin create-user --data-dir ./data --username alice --password-stdin --platform-admin"],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: {
    config: { type: 'string', valueName: 'FILE', description: 'JSON configuration file (see docs/configuration.md)' },
    'data-dir': { type: 'string', valueName: 'DIR', description: 'data folder (default: $MODELKEEP_DATA_DIR, else ./data)' },
    username: { type: 'string', valueName: 'NAME', description: 'the new account’s user name' },
    'password-stdin': { type: 'boolean', description: 'read the password from standard input' },
    email: { type: 'string', valueName: 'E', description: 'e-mail address' },
    'platform-admin': { type: 'boolean', description: 'make the account a platform admin' },
  },
  async run(ctx) {
    const username = reqString(ctx, 'username');
    const password = await readPassword(
      { stdin: ctx.stdin, stderr: ctx.io.stderr, fromStdin: optFlag(ctx, 'password-stdin') },
      'Password for the new account: ',
      true,
    );
    const store: { dataDir: string; databaseUrl?: string } = { dataDir: dataDir(ctx) };
    if (ctx.env.MODELKEEP_DATABASE_URL) store.databaseUrl = ctx.env.MODELKEEP_DATABASE_URL;
    const email = optString(ctx, 'email');
    const { bootstrapUser } = await import('../../main.ts');
    const user = await bootstrapUser(store, {
      username,
      password,
      platformAdmin: optFlag(ctx, 'platform-admin'),
      ...(email === undefined ? {} : { email }),
    }).catch(serverError);
    if (ctx.json) print(ctx.io, renderJson(user));
    else print(ctx.io, `created user ${safeText(user.username)} (${safeText(user.id)})${optFlag(ctx, 'platform-admin') ? ' as platform admin' : ''}\n`);
    return EXIT.ok;
  },
};

/** Reads a JSON configuration file; the server's schema validates it (unknown keys are refused). */
function readConfigFile(file: string): ConfigInput {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw usageError(`cannot read the configuration file ${file}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw usageError(`${file} is not valid JSON`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw usageError(`${file} must hold a JSON object`);
  return parsed as ConfigInput;
}

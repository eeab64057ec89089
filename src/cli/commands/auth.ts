// `login`, `logout`, `whoami`: the saved session for a server.

import { ApiClient, CLI_CLIENT_ID } from '../client.ts';
import { type CommandDef, optFlag, optString, reqString } from '../command.ts';
import { deviceLogin } from '../device-login.ts';
import { ApiError, EXIT } from '../errors.ts';
import { note, print, renderFields, renderJson, renderTable, safeText } from '../output.ts';
import { signIn } from '../password-login.ts';
import { credentialStore, signedInClient } from '../session.ts';

export const login: CommandDef = {
  path: ['login'],
  summary: 'sign in (device login in the browser) and save the credentials',
  usage: '[--scope "read download …"] | --username U [--password-stdin] [--totp-code CODE]',
  description:
    'By default signs in with the OAuth device flow: prints a URL and a code, which you approve\n' +
    'in the console (signed in, with your second factor where required). The access token\n' +
    '(5 minutes) and the refresh token (rotated on every use, refreshed transparently) are saved\n' +
    'for --server in $MODELKEEP_CONFIG_DIR/credentials.json (default ~/.config/modelkeep/, mode 0600).\n' +
    '--scope limits what the tokens may do (read download write release trigger admin;\n' +
    'default: read download write trigger; release and admin need a fresh second factor).\n' +
    'With --username, signs in with a password instead (a console session); an account with an\n' +
    'authenticator app also needs --totp-code (or types the code at the prompt). See `modelkeep mfa`.\n' +
    'In CI, set MODELKEEP_TOKEN to an API key (mkp_…) or access token instead of logging in.',
  examples: [
    'modelkeep login --server https://mk.example.com',
    'modelkeep login --scope "read download"',
    'modelkeep login --username alice',
    "printf '%s\\n' \"$PASSWORD\" | modelkeep login --username alice --password-stdin --totp-code 123456",
    "printf '%s\\n' \"$PASSWORD\" | modelkeep login --server https://mk.example.com --username ci --password-stdin",
  ],
  positionals: { min: 0, max: 0 },
  options: {
    username: { type: 'string', short: 'u', valueName: 'U', description: 'user name' },
    'password-stdin': { type: 'boolean', description: 'read the password from the first line of standard input' },
    'totp-code': { type: 'string', valueName: 'CODE', description: 'one-time code, when the account has TOTP' },
    scope: { type: 'string', valueName: 'SCOPES', description: 'space-separated scopes for the device login' },
  },
  async run(ctx) {
    if (optString(ctx, 'username') === undefined) {
      const creds = await deviceLogin({ server: ctx.server, scope: optString(ctx, 'scope'), stderr: ctx.io.stderr });
      await credentialStore(ctx).save(creds);
      if (ctx.json) print(ctx.io, renderJson({ server: ctx.server, username: creds.username, scope: creds.scope }));
      else print(ctx.io, `logged in to ${ctx.server} as ${safeText(creds.username)} (scope: ${safeText(creds.scope)})\n`);
      return EXIT.ok;
    }
    const username = reqString(ctx, 'username');
    const result = await signIn({
      server: ctx.server,
      username,
      passwordFromStdin: optFlag(ctx, 'password-stdin'),
      totpCode: optString(ctx, 'totp-code'),
      stdin: ctx.stdin,
      stderr: ctx.io.stderr,
    });
    await credentialStore(ctx).save(result.credentials);
    if (ctx.json) {
      print(ctx.io, renderJson({ server: ctx.server, username, mfaEnrollmentRequired: result.mfaEnrollmentRequired }));
    } else {
      print(ctx.io, `logged in to ${ctx.server} as ${safeText(username)}\n`);
    }
    if (result.mfaEnrollmentRequired) {
      note(ctx.io, 'modelkeep: this account must set up a second factor before it can do anything else: run `modelkeep mfa enroll` (or use the console)');
    }
    return EXIT.ok;
  },
};

export const logout: CommandDef = {
  path: ['logout'],
  summary: 'end the session and forget it',
  usage: '',
  description:
    'Ends the login on the server (revokes the refresh token and its whole family, RFC 7009;\n' +
    'or POST /v1/auth/logout for a password session) and deletes it from credentials.json.',
  examples: ['modelkeep logout'],
  positionals: { min: 0, max: 0 },
  options: {},
  async run(ctx) {
    const store = credentialStore(ctx);
    const creds = await store.get(ctx.server);
    if (!creds) {
      note(ctx.io, `not logged in to ${ctx.server}`);
      return EXIT.ok;
    }
    const client = new ApiClient(ctx.server, creds);
    if (creds.kind === 'oauth') {
      // RFC 7009 answers 200 whether or not the token was still live.
      const r = await client.oauthForm('/oauth/revoke', { token: creds.refreshToken, token_type_hint: 'refresh_token', client_id: CLI_CLIENT_ID });
      if (r.status !== 200) throw new ApiError(r.status, String(r.body.error ?? `http_${r.status}`), 'the server did not revoke the login', undefined, undefined);
    } else {
      try {
        await client.json('POST', '/v1/auth/logout');
      } catch (err) {
        // an expired or revoked session is already over on the server: forget it all the same
        if (!(err instanceof ApiError && err.status === 401)) throw err;
      }
    }
    await store.remove(ctx.server);
    if (ctx.json) print(ctx.io, renderJson({ server: ctx.server, loggedOut: true }));
    else print(ctx.io, `logged out of ${ctx.server}\n`);
    return EXIT.ok;
  },
};

interface MeResponse {
  user?: { id?: string; username?: string; email?: string };
  session?: { authTime?: string; mfaAt?: string | null; expiresAt?: string; amr?: string[] };
  roles?: { scope?: string; role?: string; expiresAt?: string | null }[];
}

export const whoami: CommandDef = {
  path: ['whoami'],
  summary: 'show who the saved login (or MODELKEEP_TOKEN) belongs to',
  usage: '',
  examples: ['modelkeep whoami', 'modelkeep whoami --json'],
  positionals: { min: 0, max: 0 },
  options: {},
  async run(ctx) {
    const client = await signedInClient(ctx);
    const me = await client.json<MeResponse>('GET', '/v1/me');
    if (ctx.json) {
      print(ctx.io, renderJson(me));
      return EXIT.ok;
    }
    print(
      ctx.io,
      renderFields([
        ['user', me.user?.username],
        ['id', me.user?.id],
        ['server', ctx.server],
        ['session expires', me.session?.expiresAt],
        ['mfa at', me.session?.mfaAt],
      ]),
    );
    const roles = me.roles ?? [];
    if (roles.length > 0) {
      print(
        ctx.io,
        `\n${renderTable(
          [
            { header: 'SCOPE', value: (r: (typeof roles)[number]) => r.scope },
            { header: 'ROLE', value: (r) => r.role },
            { header: 'EXPIRES', value: (r) => r.expiresAt },
          ],
          roles,
        )}`,
      );
    }
    return EXIT.ok;
  },
};

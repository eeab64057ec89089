// `login`, `logout`, `whoami`: the saved session for a server.

import { ApiClient } from '../client.ts';
import { type CommandDef, optFlag, optString, reqString } from '../command.ts';
import { ApiError, EXIT } from '../errors.ts';
import { note, print, renderFields, renderJson, renderTable, safeText } from '../output.ts';
import { signIn } from '../password-login.ts';
import { credentialStore, signedInClient } from '../session.ts';

export const login: CommandDef = {
  path: ['login'],
  summary: 'sign in and save the session',
  usage: '--username U [--password-stdin] [--totp-code CODE]',
  description:
    'Signs in with a password and saves the session for --server in\n' +
    '$MODELKEEP_CONFIG_DIR/credentials.json (default ~/.config/modelkeep/, file mode 0600).\n' +
    'On a terminal the password is asked with echo off; otherwise pass --password-stdin.\n' +
    'Accounts with an authenticator app are asked for a one-time code (or pass --totp-code).',
  examples: [
    'modelkeep login --username alice',
    "printf '%s\\n' \"$PASSWORD\" | modelkeep login --server https://mk.example.com --username ci --password-stdin",
  ],
  positionals: { min: 0, max: 0 },
  options: {
    username: { type: 'string', short: 'u', valueName: 'U', description: 'user name' },
    'password-stdin': { type: 'boolean', description: 'read the password from the first line of standard input' },
    'totp-code': { type: 'string', valueName: 'CODE', description: 'one-time code, when the account has TOTP' },
  },
  async run(ctx) {
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
      note(ctx.io, 'modelkeep: this account must enroll a second factor before it can do anything else; do it in the console');
    }
    return EXIT.ok;
  },
};

export const logout: CommandDef = {
  path: ['logout'],
  summary: 'end the session and forget it',
  usage: '',
  description: 'Ends the session on the server (POST /v1/auth/logout) and deletes it from credentials.json.',
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
    try {
      await client.json('POST', '/v1/auth/logout');
    } catch (err) {
      // an expired or revoked session is already over on the server: forget it all the same
      if (!(err instanceof ApiError && err.status === 401)) throw err;
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
  summary: 'show who the saved session belongs to',
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

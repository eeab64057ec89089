// `mfa enroll|status|step-up`: the signed-in user's second factor (an authenticator app, TOTP).
//
// Enrollment is two server calls: POST /v1/me/mfa/totp creates a pending secret, and
// POST /v1/me/mfa/totp/confirm with a current code from the app turns it on and returns the
// recovery codes. The code depends on the secret the first call creates, so a script cannot
// know it up front: without a terminal, `mfa enroll` stops after printing the secret (exit 2)
// and `mfa enroll --code CODE` finishes the pending enrollment. The secret and the recovery
// codes are printed by `mfa enroll` only — that is where the user asked for them.

import { ApiClient, findSessionCookie, readJsonResponse } from '../client.ts';
import { type CommandContext, type CommandDef, optString } from '../command.ts';
import type { SessionCredentials } from '../credentials.ts';
import { ApiError, CliError, EXIT, usageError } from '../errors.ts';
import { note, print, renderFields, renderJson, safeText } from '../output.ts';
import { readOneTimeCode } from '../secret-input.ts';
import { credentialStore, loginHint, signedInClient } from '../session.ts';

const CODE_OPTION = {
  code: { type: 'string', valueName: 'CODE', description: 'the 6-digit code your authenticator app shows now (else a prompt on the terminal)' },
} as const;

export const mfaEnroll: CommandDef = {
  path: ['mfa', 'enroll'],
  summary: 'set up an authenticator app (TOTP) as your second factor',
  usage: '[--code CODE]',
  description:
    'Starts the enrollment (POST /v1/me/mfa/totp) and prints the secret (base32) and an otpauth://\n' +
    'link: add either to your authenticator app. On a terminal it then asks for the 6-digit code\n' +
    'the app shows, confirms it (POST /v1/me/mfa/totp/confirm) and prints 10 recovery codes, once:\n' +
    'store them somewhere safe, away from this device.\n' +
    'Without a terminal it stops after printing the secret (exit 2); then\n' +
    '`modelkeep mfa enroll --code CODE` confirms that pending enrollment (it starts no new one).\n' +
    'Prefer a QR code? Sign in to the console: it shows one.\n' +
    '--json prints the server\'s answers as they come (the secret; then the recovery codes).',
  examples: ['modelkeep mfa enroll', 'modelkeep mfa enroll --code 123456'],
  positionals: { min: 0, max: 0 },
  options: CODE_OPTION,
  async run(ctx) {
    const client = await signedInClient(ctx);
    const given = optString(ctx, 'code');
    if (given === undefined) {
      await beginEnrollment(ctx, client);
      if (!ctx.stdin.isTTY) {
        throw usageError('no terminal to type the code in: the enrollment is waiting for a code', 'add the secret to your authenticator app, then run `modelkeep mfa enroll --code CODE` with the code it shows');
      }
    }
    const code = await readOneTimeCode({ stdin: ctx.stdin, stderr: ctx.io.stderr }, given, 'Code from the app: ', 'pass --code CODE');
    let answer: { recoveryCodes?: unknown };
    try {
      answer = await client.json<{ recoveryCodes?: unknown }>('POST', '/v1/me/mfa/totp/confirm', { json: { code } });
    } catch (err) {
      if (err instanceof ApiError && err.code === 'invalid_input') {
        throw new CliError(
          err.message,
          err.exitCode,
          given === undefined
            ? 'type the code the app shows now, for the secret printed above; run `modelkeep mfa enroll` to start over'
            : 'pass the code the app shows now, for the secret printed by the last `modelkeep mfa enroll` (run that first)',
        );
      }
      throw err;
    }
    const codes = Array.isArray(answer.recoveryCodes) ? answer.recoveryCodes : [];
    if (ctx.json) print(ctx.io, renderJson(answer));
    else {
      print(ctx.io, `Authenticator app confirmed. Recovery codes (each works once instead of a code from the app):\n${codes.map((c) => `  ${safeText(c)}\n`).join('')}`);
    }
    note(ctx.io, 'modelkeep: store the recovery codes now, somewhere safe and away from this device: they are shown only this once.');
    return EXIT.ok;
  },
};

async function beginEnrollment(ctx: CommandContext, client: ApiClient): Promise<void> {
  let begun: { secret?: unknown; otpauthUrl?: unknown };
  try {
    begun = await client.json<{ secret?: unknown; otpauthUrl?: unknown }>('POST', '/v1/me/mfa/totp');
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) throw new CliError(err.message, err.exitCode, '`modelkeep mfa status` shows what is set up');
    // No factor yet: the server asks for a recent sign-in instead of a second factor.
    if (err instanceof ApiError && err.status === 428) throw new CliError(err.message, err.exitCode, `sign in again (${loginHint(ctx.server)}) and retry`);
    throw err;
  }
  if (typeof begun.secret !== 'string' || typeof begun.otpauthUrl !== 'string') throw new CliError('the server did not return a secret', EXIT.failure);
  if (ctx.json) {
    print(ctx.io, renderJson(begun));
    return;
  }
  print(
    ctx.io,
    'Add this account to your authenticator app (type the secret, or open the link):\n' +
      renderFields([
        ['secret', begun.secret],
        ['link', begun.otpauthUrl],
      ]).replace(/^(?=.)/gm, '  '),
  );
}

export const mfaStatus: CommandDef = {
  path: ['mfa', 'status'],
  summary: 'show your second factors (GET /v1/me/mfa)',
  usage: '',
  examples: ['modelkeep mfa status', 'modelkeep mfa status --json'],
  positionals: { min: 0, max: 0 },
  options: {},
  async run(ctx) {
    const client = await signedInClient(ctx);
    const s = await client.json<{ totp?: unknown; recoveryCodesLeft?: unknown; factors?: unknown; enrollmentRequired?: unknown }>('GET', '/v1/me/mfa');
    if (ctx.json) {
      print(ctx.io, renderJson(s));
      return EXIT.ok;
    }
    const yesNo = (v: unknown) => (v === true ? 'yes' : v === false ? 'no' : v);
    print(
      ctx.io,
      renderFields([
        ['authenticator app', yesNo(s.totp)],
        ['recovery codes left', s.recoveryCodesLeft],
        ['second factors', s.factors],
        ['enrollment required', yesNo(s.enrollmentRequired)],
      ]),
    );
    return EXIT.ok;
  },
};

export const mfaStepUp: CommandDef = {
  path: ['mfa', 'step-up'],
  summary: 'confirm your second factor now (password login)',
  usage: '[--code CODE]',
  description:
    'Gives a current code from your authenticator app (POST /v1/auth/step-up/totp) so that actions\n' +
    'needing a recent second factor (mfa.freshMinutes, 15 by default: granting roles, production\n' +
    'promotion) work in this session. The server replaces the session (new cookie and CSRF token); the\n' +
    'CLI saves them in place of the old ones. For a password login (`login --username`); a device\n' +
    'login takes its second factor from the console that approves it (`promote` steps up itself).\n' +
    'Each code works once: after `mfa enroll` or a sign-in, wait for the app to show a new one.\n' +
    '--json prints the server\'s answer without the CSRF token.',
  examples: ['modelkeep mfa step-up', 'modelkeep mfa step-up --code 123456'],
  positionals: { min: 0, max: 0 },
  options: CODE_OPTION,
  async run(ctx) {
    if (ctx.env.MODELKEEP_TOKEN) {
      throw usageError('MODELKEEP_TOKEN is set: a token cannot step up', 'unset it and use a password login (`modelkeep login --username U`)');
    }
    const store = credentialStore(ctx);
    const creds = await store.get(ctx.server);
    if (!creds) throw new CliError(`not logged in to ${ctx.server}`, EXIT.unauthenticated, loginHint(ctx.server));
    if (creds.kind === 'oauth') {
      throw usageError(
        'this is a device login: its second factor comes from the console that approves it',
        'run `modelkeep login` again and approve it right after your second factor (`promote` does this by itself)',
      );
    }
    const code = await readOneTimeCode({ stdin: ctx.stdin, stderr: ctx.io.stderr }, optString(ctx, 'code'), 'Code from the app: ', 'pass --code CODE');
    // Not signedInClient: the rotated session must be saved together with its new CSRF token.
    const client = new ApiClient(ctx.server, creds);
    const res = await client.send('POST', '/v1/auth/step-up/totp', { json: { code } });
    const body = (await readJsonResponse(res)) as { status?: unknown; csrfToken?: unknown; mfaAt?: unknown };
    const cookie = findSessionCookie(res.headers['set-cookie']);
    if (body.status !== 'ok' || typeof body.csrfToken !== 'string' || !cookie || cookie.value === '') {
      throw new CliError('the server did not complete the step-up', EXIT.failure);
    }
    const fresh: SessionCredentials = { ...creds, cookieName: cookie.name, session: cookie.value, csrfToken: body.csrfToken };
    // The old session is dead on the server already: the new one must be on disk before anything else.
    await store.save(fresh);
    if (ctx.json) print(ctx.io, renderJson({ status: body.status, mfaAt: body.mfaAt }));
    else print(ctx.io, `second factor confirmed at ${safeText(body.mfaAt)}; actions that need a recent one work for the next minutes (mfa.freshMinutes, 15 by default)\n`);
    return EXIT.ok;
  },
};

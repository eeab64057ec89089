// How `modelkeep login` obtains a session: username + password against
// POST /v1/auth/login, with a TOTP second step when the account asks for one.
// This is the only file that knows the login method; the OAuth device flow
// (RFC 8628) will replace it behind the same `signIn` signature.

import { ApiClient, findSessionCookie, readJsonResponse } from './client.ts';
import type { Credentials } from './credentials.ts';
import { CliError, EXIT } from './errors.ts';
import { readOneTimeCode, readPassword } from './secret-input.ts';

export interface SignInInput {
  server: string;
  username: string;
  passwordFromStdin: boolean;
  /** A TOTP code given up front (it is single-use and short-lived, so argv is acceptable). */
  totpCode: string | undefined;
  stdin: NodeJS.ReadStream;
  stderr: NodeJS.WritableStream;
}

export interface SignInResult {
  credentials: Credentials;
  /** The account must enroll MFA before anything but /v1/me* and logout works. */
  mfaEnrollmentRequired: boolean;
}

export async function signIn(input: SignInInput): Promise<SignInResult> {
  const client = new ApiClient(input.server, null);
  const password = await readPassword({ stdin: input.stdin, stderr: input.stderr, fromStdin: input.passwordFromStdin });
  let res = await client.send('POST', '/v1/auth/login', { json: { username: input.username, password } });
  let body = asObject(await readJsonResponse(res));

  if (body.status === 'mfa_required') {
    const methods = Array.isArray(body.methods) ? body.methods : [];
    if (typeof body.mfaToken !== 'string' || !methods.includes('totp')) {
      throw new CliError(
        'this account signs in with a second factor the CLI cannot use here',
        EXIT.unauthenticated,
        'sign in with the console, or enroll an authenticator app (TOTP)',
      );
    }
    const code = await readOneTimeCode(input, input.totpCode, 'One-time code: ', 'pass --totp-code CODE from your authenticator app');
    res = await client.send('POST', '/v1/auth/mfa/totp', { json: { mfaToken: body.mfaToken, code } });
    body = asObject(await readJsonResponse(res));
  }

  if (body.status !== 'ok' || typeof body.csrfToken !== 'string') {
    throw new CliError('the server did not complete the sign-in', EXIT.failure);
  }
  const cookie = findSessionCookie(res.headers['set-cookie']);
  if (!cookie || cookie.value === '') {
    throw new CliError('the server did not return a session cookie', EXIT.failure);
  }
  return {
    credentials: {
      server: input.server,
      cookieName: cookie.name,
      session: cookie.value,
      csrfToken: body.csrfToken,
      username: input.username,
    },
    mfaEnrollmentRequired: body.mfaEnrollmentRequired === true,
  };
}

function asObject(v: unknown): Record<string, unknown> {
  return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
}

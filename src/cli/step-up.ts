// Step-up for the CLI: what to do when the server answers 428 mfa_required.
//
// A CLI credential is a device-flow token family whose MFA time is the MFA time of the
// console session that approved it; refreshing keeps that time. So the only honest way
// to get a fresh second factor into the CLI is a NEW device authorization that the user
// approves in the console right after a second factor. The server guarantees the
// freshness: approving a request whose scope holds `release` or `admin` needs a second
// factor within the last 15 minutes, for every user (DeviceFlow #mfaRequired), and the
// actions that answer 428 here (production promotion) are in the `release` scope, which
// the saved token must already carry (without it the server answers 403, not 428).
// The new tokens replace the saved ones, the old family is revoked, and the caller
// retries its request once.

import { type ApiClient, CLI_CLIENT_ID } from './client.ts';
import type { CommandContext } from './command.ts';
import { optFlag } from './command.ts';
import type { TokenCredentials } from './credentials.ts';
import { deviceLogin } from './device-login.ts';
import { ApiError, CliError, EXIT, usageError } from './errors.ts';
import { note, safeText } from './output.ts';
import { credentialStore } from './session.ts';

export const STEP_UP_OPTIONS = {
  'step-up': {
    type: 'boolean',
    description: 'when a fresh second factor is needed, start the step-up even without a terminal',
  },
  'no-step-up': { type: 'boolean', description: 'never start a step-up: exit 4 when a fresh second factor is needed' },
} as const;

export function isMfaRequired(err: unknown): err is ApiError {
  return err instanceof ApiError && err.status === 428 && err.code === 'mfa_required';
}

/** Whether to ask the person at the terminal for a step-up (flags first, else both ends are a TTY). */
function interactive(ctx: CommandContext): boolean {
  const yes = optFlag(ctx, 'step-up');
  const no = optFlag(ctx, 'no-step-up');
  if (yes && no) throw usageError('--step-up and --no-step-up exclude each other');
  if (yes) return true;
  if (no) return false;
  return ctx.stdin.isTTY === true && ctx.io.stderr.isTTY === true;
}

/**
 * Runs `request`; on 428 mfa_required, replaces the saved login by a freshly approved one
 * (see above) and runs it once more. Exit 4 with a hint when no step-up is possible here.
 */
export async function withStepUp<T>(ctx: CommandContext, client: ApiClient, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    if (!isMfaRequired(err)) throw err;
    const creds = client.credentials;
    if (creds?.kind !== 'oauth') {
      const how =
        creds === null
          ? 'MODELKEEP_TOKEN carries no second factor: use `modelkeep login` (device login) and confirm with your second factor'
          : 'this is a password session: run `modelkeep mfa step-up` with a code from your authenticator app, then retry';
      throw new CliError(err.message, EXIT.forbidden, how);
    }
    if (!interactive(ctx)) {
      throw new CliError(err.message, EXIT.forbidden, 'run it again in a terminal, or with --step-up, and approve the step-up in the console with your second factor');
    }
    await stepUp(ctx, client, creds);
    // Once: a second 428 (the approval carried no fresh second factor) ends the command.
    return await request();
  }
}

async function stepUp(ctx: CommandContext, client: ApiClient, old: TokenCredentials): Promise<void> {
  note(ctx.io, 'modelkeep: this needs a second factor within the last 15 minutes.');
  const fresh = await deviceLogin({
    server: ctx.server,
    scope: old.scope || undefined,
    stderr: ctx.io.stderr,
    purpose: 'To confirm it, sign in to the console with your second factor (or step up there)',
  });
  const revoke = (token: string) => client.oauthForm('/oauth/revoke', { token, token_type_hint: 'refresh_token', client_id: CLI_CLIENT_ID }).catch(() => undefined);
  if (fresh.username !== old.username) {
    // Someone else approved the code: their tokens must not act for this login.
    await revoke(fresh.refreshToken);
    throw new CliError(
      `the step-up was approved as ${safeText(fresh.username)}, not ${safeText(old.username)}; nothing was changed`,
      EXIT.unauthenticated,
      `approve it in a console signed in as ${safeText(old.username)}`,
    );
  }
  await credentialStore(ctx).save(fresh);
  client.useCredentials(fresh);
  // The old family is superseded: end it so that only one login stays live.
  await revoke(old.refreshToken);
  note(ctx.io, 'modelkeep: step-up approved; retrying');
}

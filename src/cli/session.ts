// Gives a command an ApiClient for its --server, carrying MODELKEEP_TOKEN (CI) or the
// saved login (OAuth tokens refreshed transparently, or a password-login session).

import { ApiClient } from './client.ts';
import type { CommandContext } from './command.ts';
import { CredentialStore, configDir } from './credentials.ts';
import { CliError, EXIT } from './errors.ts';

export function credentialStore(ctx: Pick<CommandContext, 'env'>): CredentialStore {
  return new CredentialStore(configDir(ctx.env));
}

export function loginHint(server: string): string {
  return `run \`modelkeep login --server ${server}\``;
}

/** A client signed in to ctx.server; exit 3 when there is no token and no saved login. */
export async function signedInClient(ctx: CommandContext): Promise<ApiClient> {
  const envToken = ctx.env.MODELKEEP_TOKEN;
  if (envToken !== undefined && envToken !== '') return new ApiClient(ctx.server, { kind: 'static', token: envToken.trim() });
  const store = credentialStore(ctx);
  const creds = await store.get(ctx.server);
  if (!creds) throw new CliError(`not logged in to ${ctx.server}`, EXIT.unauthenticated, loginHint(ctx.server));
  // Refresh tokens rotate and session ids may rotate (step-up): keep the new ones, atomically.
  return new ApiClient(ctx.server, creds, (fresh) => store.save(fresh));
}

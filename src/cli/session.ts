// Gives a command an ApiClient for its --server, carrying the saved session.

import { ApiClient } from './client.ts';
import type { CommandContext } from './command.ts';
import { CredentialStore, configDir } from './credentials.ts';
import { CliError, EXIT } from './errors.ts';

export function credentialStore(ctx: Pick<CommandContext, 'env'>): CredentialStore {
  return new CredentialStore(configDir(ctx.env));
}

export function loginHint(server: string): string {
  return `run \`modelkeep login --server ${server} --username NAME\``;
}

/** A client signed in to ctx.server; exit 3 when there is no saved session. */
export async function signedInClient(ctx: CommandContext): Promise<ApiClient> {
  const store = credentialStore(ctx);
  const creds = await store.get(ctx.server);
  if (!creds) throw new CliError(`not logged in to ${ctx.server}`, EXIT.unauthenticated, loginHint(ctx.server));
  // the server may rotate the session id (after step-up, say): keep the new one
  return new ApiClient(ctx.server, creds, (fresh) => store.save(fresh));
}

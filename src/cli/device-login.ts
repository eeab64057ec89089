// `modelkeep login` without --username: the OAuth 2.0 device authorization grant
// (RFC 8628). The CLI shows a URL and a code, the user approves in the console (signed
// in, with MFA where required), and the CLI polls, honouring `interval` and `slow_down`.

import { ApiClient, CLI_CLIENT_ID } from './client.ts';
import type { TokenCredentials } from './credentials.ts';
import { CliError, EXIT } from './errors.ts';
import { safeText } from './output.ts';

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export interface DeviceLoginInput {
  server: string;
  scope: string | undefined;
  stderr: NodeJS.WritableStream;
  /** What the approval is for, printed before the URL (default: signing in). */
  purpose?: string;
  sleep?: (ms: number) => Promise<void>;
}

const realSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function deviceLogin(input: DeviceLoginInput): Promise<TokenCredentials> {
  const client = new ApiClient(input.server, null);
  const sleep = input.sleep ?? realSleep;
  const start = await client.oauthForm('/oauth/device_authorization', { client_id: CLI_CLIENT_ID, ...(input.scope ? { scope: input.scope } : {}) });
  const d = start.body;
  if (start.status !== 200 || typeof d.device_code !== 'string' || typeof d.user_code !== 'string' || typeof d.verification_uri !== 'string') {
    throw new CliError(`the server refused to start a login: ${safeText(String(d.error_description ?? d.error ?? `HTTP ${start.status}`))}`, EXIT.failure);
  }
  const expiresIn = typeof d.expires_in === 'number' ? d.expires_in : 600;
  let interval = typeof d.interval === 'number' && d.interval > 0 ? d.interval : 5;
  input.stderr.write(
    `${input.purpose ?? 'To sign in'}, open ${safeText(d.verification_uri)} in a browser where you are signed in to Modelkeep,\n` +
      `and enter the code: ${safeText(d.user_code)}\n` +
      (typeof d.verification_uri_complete === 'string' ? `(or open ${safeText(d.verification_uri_complete)})\n` : '') +
      'Waiting for approval…\n',
  );
  const deadline = Date.now() + expiresIn * 1000;
  while (Date.now() < deadline) {
    await sleep(interval * 1000);
    const r = await client.oauthForm('/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: CLI_CLIENT_ID });
    const b = r.body;
    if (r.status === 200 && typeof b.access_token === 'string' && typeof b.refresh_token === 'string' && typeof b.expires_in === 'number') {
      const who = new ApiClient(input.server, { kind: 'static', token: b.access_token });
      const me = await who.json<{ user?: { username?: string } }>('GET', '/v1/me');
      return {
        kind: 'oauth',
        server: input.server,
        accessToken: b.access_token,
        refreshToken: b.refresh_token,
        expiresAt: new Date(Date.now() + b.expires_in * 1000).toISOString(),
        scope: typeof b.scope === 'string' ? b.scope : '',
        username: me.user?.username ?? '',
      };
    }
    switch (b.error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        interval += 5;
        continue;
      case 'access_denied':
        throw new CliError('the login was denied in the console', EXIT.unauthenticated);
      case 'expired_token':
        throw new CliError('the code expired before it was approved', EXIT.unauthenticated, 'run `modelkeep login` again');
      default:
        throw new CliError(`the login failed: ${safeText(String(b.error_description ?? b.error ?? `HTTP ${r.status}`))}`, EXIT.unauthenticated);
    }
  }
  throw new CliError('the code expired before it was approved', EXIT.unauthenticated, 'run `modelkeep login` again');
}

// OAuth helpers for tests: form posts to the token endpoints and a device login approved
// over HTTP by a signed-in console client.
import assert from 'node:assert/strict';
import type { Client } from './server.ts';

export const CLI = 'modelkeep-cli';
export const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

export function form(base: string, path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params).toString(),
  });
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  expires_in: number;
  scope: string;
  token_type: string;
}

export async function startDevice(base: string, scope?: string): Promise<{ device_code: string; user_code: string; interval: number; expires_in: number; verification_uri: string; verification_uri_complete: string }> {
  const r = await form(base, '/oauth/device_authorization', { client_id: CLI, ...(scope ? { scope } : {}) });
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as never;
}

/** A full device login: the CLI side asks, `approver` (a console session) approves, one poll redeems. */
export async function deviceLogin(base: string, approver: Client, scope?: string): Promise<Tokens> {
  const d = await startDevice(base, scope);
  const a = await approver.post('/v1/auth/device/approve', { userCode: d.user_code });
  assert.equal(a.status, 200, await a.clone().text());
  const t = await form(base, '/oauth/token', { grant_type: DEVICE_GRANT, device_code: d.device_code, client_id: CLI });
  assert.equal(t.status, 200, await t.clone().text());
  return (await t.json()) as Tokens;
}

export function refresh(base: string, rt: string, extra: Record<string, string> = {}): Promise<Response> {
  return form(base, '/oauth/token', { grant_type: 'refresh_token', refresh_token: rt, client_id: CLI, ...extra });
}

export function bearer(base: string, token: string, path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers as Record<string, string> | undefined) } });
}

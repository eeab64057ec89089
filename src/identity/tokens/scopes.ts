import { SCOPES, type Scope } from '../../core/index.ts';
import { OAuthError } from './oauth-error.ts';

/** What `modelkeep login` asks for when no --scope is given: everything but release and admin. */
export const DEFAULT_CLI_SCOPES: readonly Scope[] = ['read', 'download', 'write', 'trigger'];
/** Scopes whose grant needs a fresh second factor at approval time. */
export const SENSITIVE_SCOPES: readonly Scope[] = ['release', 'admin'];

/** Parses an RFC 6749 scope parameter (space-separated) into known scopes, in canonical order. */
export function parseScope(raw: unknown, fallback: readonly Scope[]): Scope[] {
  if (raw === undefined || raw === null || raw === '') return [...fallback];
  if (typeof raw !== 'string' || raw.length > 256) throw new OAuthError('invalid_scope', 'the scope is not valid');
  const asked = new Set(raw.split(' ').filter((s) => s !== ''));
  for (const s of asked) if (!(SCOPES as readonly string[]).includes(s)) throw new OAuthError('invalid_scope', `unknown scope '${s.slice(0, 32)}'`);
  if (asked.size === 0) return [...fallback];
  return SCOPES.filter((s) => asked.has(s));
}

export function scopeString(scopes: readonly string[]): string {
  return scopes.join(' ');
}

export function splitScope(s: string): Scope[] {
  return SCOPES.filter((x) => s.split(' ').includes(x));
}

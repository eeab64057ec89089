import { hash, verify } from '@node-rs/argon2';
import { invalidInput } from '../core/index.ts';

// OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1 (the library's default algorithm is argon2id).
const OPTIONS = { memoryCost: 19456, timeCost: 2, parallelism: 1, outputLen: 32 };
export const MIN_PASSWORD_LENGTH = 12;
const MAX_PASSWORD_LENGTH = 1024;

export function checkPasswordRules(password: unknown): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH) {
    throw invalidInput(`password must have at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  if (password.length > MAX_PASSWORD_LENGTH) throw invalidInput(`password must have at most ${MAX_PASSWORD_LENGTH} characters`);
  return password;
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, OPTIONS);
}

let dummy: Promise<string> | null = null;

/**
 * Verifies a password. With no stored hash (unknown user, or an account without a
 * password) it still runs one verification against a dummy hash, so that the time taken
 * does not tell whether the account exists (user enumeration).
 */
export async function verifyPassword(stored: string | null, password: string): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false;
  if (stored === null) {
    dummy ??= hashPassword('modelkeep-dummy-password-for-timing');
    await verify(await dummy, password).catch(() => false);
    return false;
  }
  try {
    return await verify(stored, password);
  } catch {
    return false;
  }
}

import { readFileSync } from 'node:fs';
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
  if (isCommonPassword(password)) {
    throw invalidInput('this password is on a list of commonly used passwords', 'choose a longer passphrase of unrelated words');
  }
  return password;
}

let common: Set<string> | null = null;

/** Comparison form: case and surrounding or repeated white space do not make a common password new. */
function normalise(password: string): string {
  return password.normalize('NFKC').toLowerCase().trim().replace(/\s+/g, ' ');
}

/** True for a password on the shipped list (common-passwords.txt) after normalisation (NIST SP 800-63B s3.1.1.2). */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    readFileSync(new URL('./common-passwords.txt', import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map(normalise),
  );
  const n = normalise(password);
  return common.has(n) || common.has(n.replace(/ /g, ''));
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

// TOTP authenticators (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, ±1 step of drift) and
// recovery codes. The code arithmetic is the otpauth library's; this file keeps the state
// that makes every code single-use: the last accepted step per user, and used_at per
// recovery code, both changed by one conditional UPDATE so two parallel uses of the same
// code cannot both win.
import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import { Secret, TOTP } from 'otpauth';
import type { Executor } from '../audit/index.ts';
import { newId, sha256Hex } from '../core/index.ts';
import type { Database } from '../storage/index.ts';

export const TOTP_PERIOD = 30;
const DIGITS = 6;
const WINDOW = 1;
export const RECOVERY_CODE_COUNT = 10;
const CODE = /^\d{6}$/;

function totpFor(secret: string, label: string): TOTP {
  return new TOTP({ issuer: 'Modelkeep', label, algorithm: 'SHA1', digits: DIGITS, period: TOTP_PERIOD, secret: Secret.fromBase32(secret) });
}

/** The time step a valid code belongs to, or null (wrong code, or outside the ±1 step window). */
export function matchingStep(secret: string, code: unknown, now: Date): number | null {
  if (typeof code !== 'string' || !CODE.test(code)) return null;
  const delta = totpFor(secret, 'x').validate({ token: code, timestamp: now.getTime(), window: WINDOW });
  if (delta === null) return null;
  return Math.floor(now.getTime() / 1000 / TOTP_PERIOD) + delta;
}

/** Lowercase, without separators: how a recovery code is compared (users type it back loosely). */
function normaliseRecovery(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '');
}

const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** 80 random bits as xxxx-xxxx-xxxx-xxxx (base32): high entropy, so a plain SHA-256 is a safe store. */
function newRecoveryCode(): string {
  const bytes = randomBytes(16);
  let s = '';
  for (let i = 0; i < 16; i++) s += BASE32[(bytes[i] ?? 0) & 31];
  return `${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}`;
}

export class TotpStore {
  readonly #db: Kysely<Database>;
  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /** A new pending secret (replacing an unconfirmed one). The caller has checked none is confirmed. */
  async begin(ex: Executor, userId: string, username: string, now: Date): Promise<{ secret: string; otpauthUrl: string }> {
    const secret = new Secret({ size: 20 }).base32;
    await ex.deleteFrom('mfa_totp').where('user_id', '=', userId).where('confirmed_at', 'is', null).execute();
    await ex.insertInto('mfa_totp').values({ user_id: userId, secret, created_at: now.toISOString(), confirmed_at: null, last_step: null }).execute();
    return { secret, otpauthUrl: totpFor(secret, username).toString() };
  }

  async get(userId: string, ex: Executor = this.#db): Promise<{ secret: string; confirmed: boolean; lastStep: number | null } | null> {
    const r = await ex.selectFrom('mfa_totp').select(['secret', 'confirmed_at', 'last_step']).where('user_id', '=', userId).executeTakeFirst();
    if (!r) return null;
    return { secret: r.secret, confirmed: r.confirmed_at !== null, lastStep: r.last_step === null ? null : Number(r.last_step) };
  }

  async isConfirmed(userId: string, ex: Executor = this.#db): Promise<boolean> {
    const r = await ex.selectFrom('mfa_totp').select('user_id').where('user_id', '=', userId).where('confirmed_at', 'is not', null).executeTakeFirst();
    return r !== undefined;
  }

  /**
   * Accepts a code at most once: true only when the code is valid now (±1 step) and its step
   * is later than every step accepted before for this user. `confirmed`: which state the
   * authenticator must be in (pending for enrollment, confirmed for sign-in).
   */
  async accept(ex: Executor, userId: string, code: unknown, now: Date, confirmed: boolean): Promise<boolean> {
    const t = await this.get(userId, ex);
    if (!t || t.confirmed !== confirmed) return false;
    const step = matchingStep(t.secret, code, now);
    if (step === null) return false;
    const r = await ex
      .updateTable('mfa_totp')
      .set({ last_step: step, ...(confirmed ? {} : { confirmed_at: now.toISOString() }) })
      .where('user_id', '=', userId)
      .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]))
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async remove(ex: Executor, userId: string): Promise<boolean> {
    const r = await ex.deleteFrom('mfa_totp').where('user_id', '=', userId).executeTakeFirst();
    await ex.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
    return Number(r.numDeletedRows) > 0;
  }

  /** Replaces every recovery code of the user with 10 new ones; returns them (shown once). */
  async newRecoveryCodes(ex: Executor, userId: string, now: Date): Promise<string[]> {
    await ex.deleteFrom('mfa_recovery_codes').where('user_id', '=', userId).execute();
    const codes = Array.from({ length: RECOVERY_CODE_COUNT }, newRecoveryCode);
    for (const c of codes) {
      await ex
        .insertInto('mfa_recovery_codes')
        .values({ id: newId('rec'), user_id: userId, code_hash: sha256Hex(normaliseRecovery(c)), created_at: now.toISOString(), used_at: null })
        .execute();
    }
    return codes;
  }

  /** Uses up a recovery code: true once, false for an unknown or already used code. */
  async useRecoveryCode(ex: Executor, userId: string, code: unknown, now: Date): Promise<boolean> {
    if (typeof code !== 'string' || code.length > 64) return false;
    const r = await ex
      .updateTable('mfa_recovery_codes')
      .set({ used_at: now.toISOString() })
      .where('user_id', '=', userId)
      .where('code_hash', '=', sha256Hex(normaliseRecovery(code)))
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async unusedRecoveryCodes(userId: string, ex: Executor = this.#db): Promise<number> {
    const r = await ex
      .selectFrom('mfa_recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('user_id', '=', userId)
      .where('used_at', 'is', null)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }
}

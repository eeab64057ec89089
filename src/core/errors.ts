// Errors that cross module boundaries carry a stable code from this catalogue and a
// message that is safe to show to the caller. HTTP statuses are mapped in http/.

export const ERROR_CODES = [
  'invalid_input',
  'invalid_credentials',
  'unauthenticated',
  'forbidden',
  'csrf_failed',
  'not_found',
  'conflict',
  'version_immutable',
  'digest_mismatch',
  'payload_too_large',
  'unsupported_media_type',
  'mfa_required',
  'mfa_enrollment_required',
  'throttled',
  'unavailable',
  'internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Detail for the audit log only; never shown to the caller. */
  detail?: string;
  retryAfterSeconds?: number;
}

export class ModelkeepError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly detail: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'ModelkeepError';
    this.code = code;
    this.hint = options.hint;
    this.detail = options.detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isModelkeepError(err: unknown): err is ModelkeepError {
  return err instanceof ModelkeepError;
}

export const invalidInput = (message: string, hint?: string) =>
  new ModelkeepError('invalid_input', message, hint === undefined ? {} : { hint });

export const notFound = (what = 'resource') => new ModelkeepError('not_found', `${what} not found`);

/** Mandatory MFA: the account must set up a second factor before anything else (HTTP layer and guard alike). */
export const MFA_ENROLLMENT_REASON = 'set up a second factor before anything else';
export const mfaEnrollmentRequired = () =>
  new ModelkeepError('mfa_enrollment_required', MFA_ENROLLMENT_REASON, {
    hint: 'POST /v1/me/mfa/totp, then POST /v1/me/mfa/totp/confirm with a code from the app (or register a passkey)',
  });

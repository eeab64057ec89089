// What the CLI does when a command fails: one exit code per kind of failure, so that
// scripts can branch on `$?` without parsing text. docs/cli.md lists the same table.

export const EXIT = {
  ok: 0,
  failure: 1,
  badInput: 2,
  unauthenticated: 3,
  forbidden: 4,
  notFound: 5,
  conflict: 6,
  /** `audit verify` found an edited, missing, reordered or cut-off event, or a bad tree head. */
  auditVerifyFailed: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports as `modelkeep: <message>` (+ `hint: …`) and an exit code. */
export class CliError extends Error {
  readonly exitCode: ExitCode;
  readonly hint: string | undefined;

  constructor(message: string, exitCode: ExitCode, hint?: string) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** Wrong flags, arguments or local input: exit 2. */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, EXIT.badInput, hint);
}

/** A non-2xx answer from the server, already reduced to its safe parts. */
export class ApiError extends CliError {
  readonly status: number;
  readonly code: string;
  readonly requestId: string | undefined;

  constructor(status: number, code: string, message: string, hint: string | undefined, requestId: string | undefined) {
    super(message, exitCodeForStatus(status), hint);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.requestId = requestId;
  }
}

/** The exit code for an HTTP status (API.md "Conventions" → docs/cli.md "Exit codes"). */
export function exitCodeForStatus(status: number): ExitCode {
  if (status === 401) return EXIT.unauthenticated;
  if (status === 403 || status === 428) return EXIT.forbidden;
  if (status === 404) return EXIT.notFound;
  if (status === 409) return EXIT.conflict;
  if (status === 400 || status === 413 || status === 415 || status === 422) return EXIT.badInput;
  return EXIT.failure;
}

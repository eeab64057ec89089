// The one place where error codes become HTTP statuses, and the error body shape of API.md.
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { type ErrorCode, isModelkeepError, ModelkeepError } from '../core/index.ts';

const STATUS: Record<ErrorCode, number> = {
  invalid_input: 422,
  invalid_credentials: 401,
  unauthenticated: 401,
  forbidden: 403,
  csrf_failed: 403,
  not_found: 404,
  conflict: 409,
  version_immutable: 409,
  digest_mismatch: 422,
  payload_too_large: 413,
  unsupported_media_type: 415,
  mfa_required: 428,
  mfa_enrollment_required: 403,
  throttled: 429,
  unavailable: 503,
  internal: 500,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code];
}

/** Fastify's own errors, translated to the catalogue (never echoing parser internals). */
function fromFastify(err: FastifyError): ModelkeepError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ModelkeepError('payload_too_large', 'request body too large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new ModelkeepError('unsupported_media_type', 'send JSON bodies with Content-Type: application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ModelkeepError('invalid_input', 'the request body is empty');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ModelkeepError('invalid_input', 'the request body is not valid JSON');
    default:
      if (err instanceof SyntaxError) return new ModelkeepError('invalid_input', 'the request body is not valid JSON');
      if (err.statusCode === 408) return new ModelkeepError('invalid_input', 'request timed out');
      return null;
  }
}

export function sendError(err: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const mk = isModelkeepError(err) ? err : fromFastify(err as FastifyError);
  if (!mk) {
    // No stack, SQL or path ever reaches the caller; the log gets the detail.
    request.log.error({ err }, 'unhandled error');
  }
  const e = mk ?? new ModelkeepError('internal', 'internal error');
  const status = statusOf(e.code);
  if (e.retryAfterSeconds !== undefined) reply.header('retry-after', String(e.retryAfterSeconds));
  return reply.code(status).send({
    error: { code: e.code, message: e.message, requestId: request.id, ...(e.hint ? { hint: e.hint } : {}) },
  });
}

// Layer 1: request ids, security headers, strict body types, body deadlines.
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { ModelkeepError } from '../core/index.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
// Exactly the JSON type our clients send. Variants ('application/json;', 'Application/JSON',
// 'application/json\tx', text/plain) are refused (surrounding whitespace is not part of a
// header value, RFC 9110 §5.5, so ' application/json' is plain JSON and still needs the CSRF token): a body type check
// that tolerates tricks is how cross-site form posts slip in (MC-SES-02, CVE-2025-32442).
const JSON_TYPE = /^application\/json(; ?charset=utf-8)?$/;

export function registerEdge(app: FastifyInstance, opts: { bodyMs: number; tls: boolean }): void {
  app.addHook('onRequest', async (request, reply) => {
    setResponseHeaders(reply, request.id, opts.tls);
  });

  // A JSON body must arrive within the deadline: a slow body holds a connection open
  // for nothing (MC-API-01). Raw uploads have their own minimum-rate check.
  app.addHook('preParsing', async (request, _reply, payload) => {
    if (SAFE_METHODS.has(request.method) || request.routeOptions.config.rawBody) return payload;
    let timer: NodeJS.Timeout | null = null;
    const t = new Transform({
      transform(chunk, _enc, cb) {
        cb(null, chunk);
      },
      flush(cb) {
        if (timer) clearTimeout(timer);
        cb();
      },
    });
    timer = setTimeout(() => {
      const err = Object.assign(new Error('request body timed out'), { statusCode: 408 });
      t.destroy(err);
      request.raw.destroy();
    }, opts.bodyMs);
    timer.unref();
    payload.on('error', (e) => t.destroy(e));
    return payload.pipe(t);
  });
}

/** The request id and security headers every response carries (hooks and framework errors alike). */
export function setResponseHeaders(reply: FastifyReply, requestId: string, tls: boolean): void {
  reply.header('x-request-id', requestId);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  reply.header('content-security-policy', "default-src 'none'; frame-ancestors 'none'");
  reply.header('cross-origin-resource-policy', 'same-origin');
  reply.header('cache-control', 'no-store');
  if (tls) reply.header('strict-transport-security', 'max-age=63072000; includeSubDomains');
}

/** 415 unless a body-carrying request says exactly application/json (or has no body). */
export function checkBodyType(method: string, headers: Record<string, string | string[] | undefined>, rawBody: boolean): void {
  if (SAFE_METHODS.has(method) || rawBody) return;
  const type = headers['content-type'];
  const len = headers['content-length'];
  const hasBody = headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
  if (type === undefined && !hasBody) return;
  if (typeof type !== 'string' || !JSON_TYPE.test(type)) {
    throw new ModelkeepError('unsupported_media_type', 'send JSON bodies with Content-Type: application/json');
  }
}

// Artifact bytes: streamed in both directions, never buffered whole.
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Clock } from '../../core/index.ts';
import { ModelkeepError } from '../../core/index.ts';
import type { RegistryService } from '../../registry/index.ts';
import { ctxOf } from '../context.ts';

type Params = { p: string; m: string; v: string; '*': string };

export interface UploadRate {
  minBytesPerSecond: number;
  windowSeconds: number;
}

/** Parses a single `bytes=` range (RFC 9110 §14.1.2); null means "send it all", 'unsatisfiable' means 416. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'unsatisfiable' {
  if (!header) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m) return null; // multiple or malformed ranges: ignore and send the whole representation
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return null;
  if (size === 0) return 'unsatisfiable';
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (start >= size || end < start) return 'unsatisfiable';
  }
  return { start, end };
}

const LINGER_MS = 2000;

/**
 * Lingering close (as web servers do for refused uploads): closing a socket while the
 * client is still sending makes the kernel answer with RST, which can destroy our 413
 * before the client reads it. So after the response we half-close, read and discard
 * what is still in flight for a short while, then drop the connection.
 */
function lingerOnClose(socket: Socket | null): void {
  if (!socket || socket.destroyed) return;
  socket.destroySoon = () => {
    socket.end();
    socket.resume();
    const t = setTimeout(() => socket.destroy(), LINGER_MS);
    t.unref();
    socket.once('close', () => clearTimeout(t));
    socket.once('end', () => socket.destroy());
  };
}

function contentLength(request: FastifyRequest): number | undefined {
  const h = request.headers['content-length'];
  if (h === undefined) return undefined;
  if (!/^\d{1,16}$/.test(h)) throw new ModelkeepError('invalid_input', 'invalid Content-Length');
  return Number(h);
}

export function artifactRoutes(app: FastifyInstance, deps: { registry: RegistryService; clock: Clock; rate: UploadRate }): void {
  const { registry, clock, rate } = deps;

  app.register(async (scope) => {
    // The body stays an unread stream for the route to pipe into the blob store.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));

    scope.put<{ Params: Params }>('/v1/projects/:p/models/:m/versions/:v/artifacts/*', { config: { rawBody: true } }, async (request, reply) => {
      const declared = request.headers['x-content-sha256'];
      // Held now: the request stream lets go of its socket once the body iterator is closed.
      const socket = request.raw.socket;
      const started = Date.now();
      try {
        const a = await registry.uploadArtifact(ctxOf(request, clock.now()), request.params.p, request.params.m, request.params.v, request.params['*'], request.raw, {
          declaredSha256: typeof declared === 'string' ? declared : undefined,
          contentLength: contentLength(request),
          onBytes: (total) => {
            // Slow-body defence: after the first window, an upload must keep a minimum average rate.
            const secs = (Date.now() - started) / 1000;
            if (rate.minBytesPerSecond > 0 && secs > rate.windowSeconds && total / secs < rate.minBytesPerSecond) {
              throw new ModelkeepError('invalid_input', 'upload too slow');
            }
          },
        });
        return reply.code(201).send(a);
      } catch (err) {
        // Whatever is left of the body is not read: close the connection after answering.
        if (!request.raw.complete) {
          reply.header('connection', 'close');
          lingerOnClose(socket);
        }
        throw err;
      }
    });
  });

  app.get<{ Params: Params }>('/v1/projects/:p/models/:m/versions/:v/artifacts/*', async (request, reply) => {
    const opened = await registry.openArtifact(ctxOf(request, clock.now()), request.params.p, request.params.m, request.params.v, request.params['*']);
    const { size, sha256 } = opened.artifact;
    reply.header('etag', `"${sha256}"`);
    reply.header('x-content-sha256', sha256);
    reply.header('digest', `sha-256=${Buffer.from(sha256, 'hex').toString('base64')}`);
    reply.header('accept-ranges', 'bytes');
    reply.header('content-type', 'application/octet-stream');
    reply.header('content-disposition', 'attachment');
    const range = parseRange(request.headers.range, size);
    if (range === 'unsatisfiable') {
      reply.header('content-range', `bytes */${size}`);
      return reply.code(416).send({ error: { code: 'invalid_input', message: 'range not satisfiable', requestId: request.id } });
    }
    if (range) {
      reply.header('content-range', `bytes ${range.start}-${range.end}/${size}`);
      reply.header('content-length', String(range.end - range.start + 1));
      return reply.code(206).send(await opened.open(range));
    }
    reply.header('content-length', String(size));
    return reply.send(await opened.open());
  });
}

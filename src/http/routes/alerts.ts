// Alerts from the detectors (guard-checked in AlertReader) and the Prometheus scrape
// endpoint (bearer token from config, checked in MetricsExporter).
import type { FastifyInstance } from 'fastify';
import type { MetricsExporter } from '../../audit/index.ts';
import type { Clock } from '../../core/index.ts';
import { invalidInput, notFound } from '../../core/index.ts';
import type { AlertReader } from '../../registry/index.ts';
import { ctxOf } from '../context.ts';

const ALERT_ID = /^alr_[A-Za-z0-9_-]{1,64}$/;

export function alertRoutes(app: FastifyInstance, deps: { alertReader: AlertReader; metrics: MetricsExporter; clock: Clock }): void {
  const { alertReader, metrics, clock } = deps;

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/alerts', async (request) => {
    const q = request.query;
    const un = q.unacknowledged;
    if (un !== undefined && un !== 'true' && un !== 'false') throw invalidInput('unacknowledged must be true or false');
    if (q.limit !== undefined && !/^[1-9][0-9]{0,3}$/.test(q.limit)) throw invalidInput('limit must be an integer from 1 to 1000');
    const limit = q.limit === undefined ? undefined : Number(q.limit);
    if (limit !== undefined && limit > 1000) throw invalidInput('limit must be an integer from 1 to 1000');
    const alerts = await alertReader.list(ctxOf(request, clock.now()), {
      ...(un === 'true' ? { unacknowledged: true } : {}),
      ...(limit !== undefined ? { limit } : {}),
    });
    return { alerts };
  });

  app.post<{ Params: { id: string } }>('/v1/alerts/:id/acknowledge', async (request) => {
    if (!ALERT_ID.test(request.params.id)) throw notFound('alert');
    return { alert: await alertReader.acknowledge(ctxOf(request, clock.now()), request.params.id) };
  });

  app.get('/metrics', { config: { auth: false, ownAuthorization: true } }, async (request, reply) => {
    const body = await metrics.scrape(request.headers.authorization);
    return reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').header('cache-control', 'no-store').send(body);
  });
}

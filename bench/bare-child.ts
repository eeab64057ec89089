// The request-rate baseline: a bare Fastify app (same Fastify version as the product,
// default options, no hooks) with routes returning a small JSON object.
// Forked by bench/run.ts with an IPC channel; reports its URL when listening.
import Fastify from 'fastify';

if (!process.send) {
  process.stderr.write('bare-child.ts must be forked with an IPC channel\n');
  process.exit(2);
}

const app = Fastify({ logger: false });
app.get('/v1/projects/:p/models/:m', async (request) => {
  const { p, m } = request.params as { p: string; m: string };
  return { project: p, name: m, description: '', sensitivity: 'internal', createdAt: '2025-01-01T00:00:00.000Z', createdBy: 'ml-engineer' };
});
// The authn section's baseline for GET /v1/me (bench/authn.ts).
app.get('/v1/me', async () => ({ user: { id: 'usr_bench', username: 'ml-engineer' }, platformAdmin: false }));
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
const port = typeof addr === 'object' && addr ? addr.port : 0;

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await app.close();
  process.exit(0);
}
process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') void stop();
});
process.on('disconnect', () => void stop());

process.send({ type: 'ready', url: `http://127.0.0.1:${port}`, pid: process.pid });

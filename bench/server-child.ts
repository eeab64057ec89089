// A Modelkeep server in its own process (forked by bench/run.ts): the load generator and
// the RSS sampler live in the parent, so they never share this process's heap or event loop.
// Usage (forked with IPC): server-child.ts <dataDir> [<config JSON>]
// The optional JSON holds more settings (detectors, trustedProxies): the audit section's
// time-to-detect server. parseConfig validates it; the data dir, address and log level stay.
import type { ConfigInput } from '../src/core/index.ts';
import { startServer } from '../src/main.ts';

const dataDir = process.argv[2];
if (!dataDir || !process.send) {
  process.stderr.write('server-child.ts must be forked with an IPC channel and a data dir\n');
  process.exit(2);
}
const extra = process.argv[3] ? (JSON.parse(process.argv[3]) as ConfigInput) : {};

const server = await startServer({ ...extra, dataDir, host: '127.0.0.1', port: 0, logLevel: 'silent' });

let stopping = false;
async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  try {
    await server.close();
  } finally {
    process.exit(code);
  }
}

process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') void stop(0);
  // bench/authz.ts: the guard's decision-cache counters (hit rate of a workload).
  if (m.type === 'guard-stats') process.send?.({ type: 'guard-stats', ...server.services.guard.cacheStats });
});
// The parent went away (crash or kill): never outlive it.
process.on('disconnect', () => void stop(0));

process.send({ type: 'ready', url: server.url, pid: process.pid });

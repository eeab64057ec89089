// A load generator in its own process: autocannon's API cycling through a list of paths
// (the all-distinct-resources workload), or one path. Forked by bench/authz.ts with IPC;
// sends the autocannon result back as its one message.
// Usage: load-child.ts <base url> <cookie> <durationS> <connections> <paths JSON>
import { createRequire } from 'node:module';

const [base, cookie, durationS, connections, pathsJson] = process.argv.slice(2);
if (!base || cookie === undefined || !durationS || !connections || !pathsJson || !process.send) {
  process.stderr.write('load-child.ts must be forked with IPC: <url> <cookie> <durationS> <connections> <paths JSON>\n');
  process.exit(2);
}
const paths = JSON.parse(pathsJson) as string[];
type Autocannon = (opts: Record<string, unknown>) => Promise<Record<string, unknown>>;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
let i = 0;
const result = await autocannon({
  url: base,
  connections: Number(connections),
  duration: Number(durationS),
  headers: cookie ? { cookie } : {},
  requests: [
    {
      method: 'GET',
      setupRequest: (req: Record<string, unknown>) => ({ ...req, path: paths[i++ % paths.length] }),
    },
  ],
});
process.send({ type: 'result', result }, () => process.exit(0));

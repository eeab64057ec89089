// The transport ceiling for downloads: a bare node:http server that pipes one file
// (1 MiB reads, as the blob store does) with a Content-Length, no auth, no hashing.
// Forked by bench/run.ts: file-child.ts <file>. Reports its URL over IPC.
import { createReadStream, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { pipeline } from 'node:stream';

const file = process.argv[2];
if (!file || !process.send) {
  process.stderr.write('file-child.ts must be forked with an IPC channel and a file\n');
  process.exit(2);
}
const size = statSync(file).size;
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(size) });
  pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), res, () => {});
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.send?.({ type: 'ready', url: `http://127.0.0.1:${port}/`, pid: process.pid });
});
const stop = () => server.close(() => process.exit(0));
process.on('message', (m: { type?: string }) => {
  if (m.type === 'stop') stop();
});
process.on('disconnect', stop);

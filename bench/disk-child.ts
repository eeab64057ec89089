// The throughput baselines: what plain Node does with the same bytes, no HTTP and no
// registry in the way. Forked by bench/run.ts (one measurement per process, so no run
// inherits another's heap); the result is sent back over IPC.
//
//   disk-child.ts read <file> [highWaterMark]   createReadStream, count the bytes
//   disk-child.ts hashcopy <src> <dst>          read, sha256, write, fsync (what an upload must do)
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';

export interface DiskResult {
  type: 'result';
  bytes: number;
  ms: number;
  sha256?: string;
}

async function read(file: string, highWaterMark: number | undefined): Promise<DiskResult> {
  const t0 = performance.now();
  let bytes = 0;
  const rs = createReadStream(file, highWaterMark ? { highWaterMark } : {});
  for await (const chunk of rs) bytes += (chunk as Buffer).byteLength;
  return { type: 'result', bytes, ms: performance.now() - t0 };
}

async function hashCopy(src: string, dst: string): Promise<DiskResult> {
  const t0 = performance.now();
  const hash = createHash('sha256');
  let bytes = 0;
  await pipeline(
    createReadStream(src),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        bytes += chunk.byteLength;
        yield chunk;
      }
    },
    // flush: fsync before close, as the blob store does before it renames a blob into place.
    createWriteStream(dst, { flush: true }),
  );
  return { type: 'result', bytes, ms: performance.now() - t0, sha256: hash.digest('hex') };
}

const [mode, a, b] = process.argv.slice(2);
const send = process.send?.bind(process);
if (!send || !a) {
  process.stderr.write('disk-child.ts must be forked with an IPC channel: read <file> [hwm] | hashcopy <src> <dst>\n');
  process.exit(2);
}
let result: DiskResult;
if (mode === 'read') result = await read(a, b ? Number(b) : undefined);
else if (mode === 'hashcopy' && b) result = await hashCopy(a, b);
else {
  process.stderr.write(`unknown mode ${mode}\n`);
  process.exit(2);
}
send(result, () => process.exit(0));

import { createHash } from 'node:crypto';
import { type Readable, Transform } from 'node:stream';
import { digestsEqual, ModelkeepError } from '../core/index.ts';

/** Passes bytes through and fails at the end when they do not hash to `sha256` (a tampered blob). */
export function verifyingStream(source: Readable, sha256: string): Readable {
  const hash = createHash('sha256');
  const t = new Transform({
    readableHighWaterMark: 1024 * 1024,
    writableHighWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (digestsEqual(hash.digest('hex'), sha256)) cb();
      else cb(new ModelkeepError('internal', 'stored artifact failed its integrity check'));
    },
  });
  source.on('error', (err) => t.destroy(err));
  return source.pipe(t);
}

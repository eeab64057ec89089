import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline, type Readable, Transform } from 'node:stream';
import { digestsEqual, isSha256Hex, ModelkeepError, newId } from '../core/index.ts';
import type { BlobInfo, BlobRange, BlobStore, PutOptions } from './blob-store.ts';

const CHUNK = 1024 * 1024; // 1 MiB reads and batched writes: ~2x the throughput of 64 KiB
const VERIFIED_CACHE_SIZE = 100_000;

/**
 * Blobs live at <root>/sha256/ab/<digest>. A new blob is written to <root>/tmp, fsynced,
 * then renamed into place and the directory fsynced: a crash at any point leaves either
 * no blob or a whole one, never a half artifact under its digest.
 */
export class FsBlobStore implements BlobStore {
  readonly #root: string;
  private constructor(root: string) {
    this.#root = root;
  }

  static async open(root: string): Promise<FsBlobStore> {
    await mkdir(join(root, 'sha256'), { recursive: true, mode: 0o700 });
    // Temp files left by a crash are never part of any blob: clear them at start.
    await rm(join(root, 'tmp'), { recursive: true, force: true });
    await mkdir(join(root, 'tmp'), { recursive: true, mode: 0o700 });
    return new FsBlobStore(root);
  }

  #pathOf(sha256: string): string {
    if (!isSha256Hex(sha256)) throw new ModelkeepError('internal', 'invalid blob key');
    return join(this.#root, 'sha256', sha256.slice(0, 2), sha256);
  }

  async put(source: AsyncIterable<Uint8Array>, options: PutOptions): Promise<BlobInfo> {
    const tmp = join(this.#root, 'tmp', newId('up'));
    const fh = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let pending: Uint8Array[] = [];
    let pendingBytes = 0;
    let closed = false;
    try {
      for await (const chunk of source) {
        size += chunk.byteLength;
        if (size > options.maxBytes) {
          throw new ModelkeepError('payload_too_large', `artifact larger than ${options.maxBytes} bytes`);
        }
        hash.update(chunk);
        options.onBytes?.(size);
        pending.push(chunk);
        pendingBytes += chunk.byteLength;
        if (pendingBytes >= CHUNK) {
          await fh.writev(pending);
          pending = [];
          pendingBytes = 0;
        }
      }
      if (pending.length > 0) await fh.writev(pending);
      const sha256 = hash.digest('hex');
      if (options.expectedSha256 !== undefined && !digestsEqual(sha256, options.expectedSha256)) {
        throw new ModelkeepError('digest_mismatch', 'the content does not match X-Content-SHA256', {
          detail: `declared ${options.expectedSha256}, got ${sha256}`,
        });
      }
      await fh.sync();
      await fh.close();
      closed = true;
      const dest = this.#pathOf(sha256);
      const dir = join(this.#root, 'sha256', sha256.slice(0, 2));
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await rename(tmp, dest);
      await fsyncDir(dir);
      return { sha256, size };
    } catch (err) {
      if (!closed) await fh.close().catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async stat(sha256: string): Promise<{ size: number } | null> {
    try {
      const s = await stat(this.#pathOf(sha256));
      return { size: s.size };
    } catch {
      return null;
    }
  }

  async open(sha256: string, range?: BlobRange): Promise<Readable | null> {
    const path = this.#pathOf(sha256);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch {
      return null;
    }
    const stream = createReadStream('', { fd: fh, highWaterMark: CHUNK, ...(range ? { start: range.start, end: range.end } : {}) });
    if (range) return stream;
    // Integrity on read. Hashing every download costs a core per ~1.4 GB/s, so a file
    // already verified is not re-hashed while its inode, size, mtime and ctime are
    // unchanged: any write to or replacement of the file changes one of them (ctime
    // cannot be set from user space), so this is as strong as re-hashing every time.
    const s = await fh.stat({ bigint: true });
    const fingerprint = `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
    if (this.#verified.get(sha256) === fingerprint) return stream;
    return verifyingStream(stream, sha256, () => this.#remember(sha256, fingerprint));
  }

  readonly #verified = new Map<string, string>();
  #remember(sha256: string, fingerprint: string): void {
    if (this.#verified.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.#verified.keys().next().value;
      if (oldest !== undefined) this.#verified.delete(oldest);
    }
    this.#verified.set(sha256, fingerprint);
  }

  /** Names of temp files in flight (tests use it to prove aborted uploads leave nothing). */
  async tempFiles(): Promise<string[]> {
    return readdir(join(this.#root, 'tmp'));
  }

  async close(): Promise<void> {}
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Passes bytes through and fails at the end when they do not hash to `sha256` (a tampered blob). */
function verifyingStream(source: Readable, sha256: string, onVerified: () => void): Readable {
  const hash = createHash('sha256');
  const t = new Transform({
    readableHighWaterMark: CHUNK,
    writableHighWaterMark: CHUNK,
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
    flush(cb) {
      if (digestsEqual(hash.digest('hex'), sha256)) {
        onVerified();
        cb();
      } else cb(new ModelkeepError('internal', 'stored artifact failed its integrity check'));
    },
  });
  // pipeline, not pipe: when the client goes away the file stream is closed too (no fd leak).
  pipeline(source, t, () => {});
  return t;
}

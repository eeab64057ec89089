// Content-addressed blob storage. Keys are sha256 digests computed by the server while
// streaming: a client-chosen name never becomes a file path (MC-ART-01).
import type { Readable } from 'node:stream';

export interface PutOptions {
  /** Abort with `payload_too_large` once more than this many bytes have arrived. */
  maxBytes: number;
  /** When given, the blob is kept only if the content hashes to exactly this. */
  expectedSha256?: string;
  /** Called with the running byte count (for progress and slow-body checks). */
  onBytes?: (total: number) => void;
}

export interface BlobInfo {
  sha256: string;
  size: number;
}

export interface BlobRange {
  start: number;
  /** Inclusive, as in HTTP Range. */
  end: number;
}

/** What an S3-compatible backend will implement too. */
export interface BlobStore {
  /**
   * Streams `source` into the store without buffering it whole. On any error (limit,
   * digest mismatch, client abort, disk) nothing becomes visible under any key.
   */
  put(source: AsyncIterable<Uint8Array>, options: PutOptions): Promise<BlobInfo>;
  /** Size of a stored blob, or null. */
  stat(sha256: string): Promise<{ size: number } | null>;
  /**
   * A stream of the blob (or of a byte range of it), or null when absent. A whole-blob
   * stream fails at its end if the bytes no longer hash to `sha256` (integrity on read).
   */
  open(sha256: string, range?: BlobRange): Promise<Readable | null>;
  close(): Promise<void>;
}

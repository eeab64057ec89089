import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/** A random, URL-safe identifier with a readable prefix (e.g. `usr_…`). */
export function newId(prefix: string): string {
  return `${prefix}_${randomBytes(12).toString('base64url')}`;
}

// Request ids are drawn on every request: one randomBytes call per id cost ~4 µs, more
// than a whole cached authorization. They come from a pool refilled 4 KiB at a time.
// Not for secrets (newSecret draws its own bytes): a request id only has to be unique
// and unguessable enough not to collide across processes.
const POOL_BYTES = 4096;
let pool = Buffer.alloc(0);
let used = 0;

/** A random request id, `req_` and 16 URL-safe characters (96 bits). */
export function newRequestId(): string {
  if (used + 12 > pool.length) {
    pool = randomBytes(POOL_BYTES);
    used = 0;
  }
  const id = pool.toString('base64url', used, used + 12);
  used += 12;
  return `req_${id}`;
}

/** A secret with 256 bits of entropy, URL-safe. */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

export function sha256Hex(value: string | Uint8Array): string {
  return createHash('sha256').update(value).digest('hex');
}

/** Constant-time comparison of two secrets (compares their hashes so lengths never leak). */
export function secretsEqual(a: string, b: string): boolean {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

/** Constant-time comparison of two hex digests of equal expected length. */
export function digestsEqual(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, 'hex');
  const b = Buffer.from(bHex, 'hex');
  return a.length === b.length && a.length > 0 && timingSafeEqual(a, b);
}

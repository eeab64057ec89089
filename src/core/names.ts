// Input rules shared by every interface (API.md "Conventions").
import { invalidInput } from './errors.ts';

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Project, model, deployment and pipeline names. */
export function validateName(value: unknown, field = 'name'): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw invalidInput(
      `${field} must be 1-63 characters of lowercase letters, digits and '-', starting with a letter or digit`,
    );
  }
  return value;
}

export function isValidName(value: unknown): value is string {
  return typeof value === 'string' && NAME.test(value);
}

// An allowlist, not a blocklist: only ASCII letters, digits and . _ - + = @ in a segment.
// This rejects encoded traversal ('%2e%2e'), full-width dots and slashes, backslashes,
// NUL and control bytes, drive letters ('C:') and spaces without needing to enumerate them.
const SEGMENT = /^[A-Za-z0-9._+=@-]{1,255}$/;
export const MAX_ARTIFACT_PATH_BYTES = 512;
const MAX_SEGMENTS = 32;

/**
 * Artifact paths are relative POSIX paths of safe segments. The path is metadata only:
 * blobs are stored under their content hash, so this never names a file on disk.
 */
export function validateArtifactPath(value: unknown): string {
  const bad = (why: string) => invalidInput(`invalid artifact path: ${why}`);
  if (typeof value !== 'string' || value.length === 0) throw bad('empty');
  if (Buffer.byteLength(value, 'utf8') > MAX_ARTIFACT_PATH_BYTES) throw bad(`longer than ${MAX_ARTIFACT_PATH_BYTES} bytes`);
  if (value.startsWith('/')) throw bad('absolute paths are not allowed');
  const segments = value.split('/');
  if (segments.length > MAX_SEGMENTS) throw bad(`more than ${MAX_SEGMENTS} segments`);
  for (const s of segments) {
    if (s === '' ) throw bad('empty segment');
    if (s === '.' || s === '..') throw bad("'.' and '..' segments are not allowed");
    if (!SEGMENT.test(s)) throw bad("segments may contain only letters, digits and . _ - + = @");
  }
  return value;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && SHA256_HEX.test(value);
}

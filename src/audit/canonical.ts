// The exact bytes of an audit event that become a Merkle leaf: RFC 8785 (JCS) canonical
// JSON of every stored field, so anyone holding the rows can recompute the tree.
import { createHash, hash as oneShotHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AuditEvent } from './audit-log.ts';
import { EVENT_KEYS, LEAF_FORMAT, leafFields } from './leaf-format.ts';
import { HAS_ONE_SHOT_HASH } from './merkle.ts';

export { LEAF_FORMAT, leafFields } from './leaf-format.ts';

/** The leaf bytes of an event (written by the log, recomputed by the verifier). */
export function eventLeafData(e: AuditEvent): Buffer {
  return Buffer.from(leafText(e), 'utf8');
}

// RFC 8785 §3.2.3: members sorted by their names' UTF-16 code units (Array#sort's default).
const SORTED_KEYS: readonly (typeof EVENT_KEYS)[number][] = [...EVENT_KEYS].sort();
const KEY_PREFIX: readonly string[] = SORTED_KEYS.map((k) => `${JSON.stringify(k)}:`);

// Characters JSON.stringify escapes (RFC 8785 §3.2.2.2), and surrogates (lone ones are errors).
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

class NotPlain extends Error {}

/** RFC 8785 text of a value as JSON.parse produces it; NotPlain for anything else. */
function jcs(v: unknown): string {
  if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? (canonicalize(v) as string) : `"${v}"`;
  if (v === null) return 'null';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new NotPlain();
    return JSON.stringify(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v !== 'object') throw new NotPlain();
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) throw new NotPlain();
    let s = '[';
    for (let i = 0; i < v.length; i++) s += (i === 0 ? '' : ',') + jcs(v[i]);
    return `${s}]`;
  }
  const proto: unknown = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) throw new NotPlain();
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort();
  let s = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    s += `${i === 0 ? '' : ','}${jcs(k)}:${jcs(o[k])}`;
  }
  return `${s}}`;
}

function jcsMember(v: unknown): string | undefined {
  if (typeof v === 'string') return NEEDS_ESCAPE.test(v) ? (canonicalize(v) as string) : `"${v}"`;
  if (v === null) return 'null';
  if (v === undefined) return undefined; // canonicalize drops undefined members
  try {
    return jcs(v);
  } catch (err) {
    if (!(err instanceof NotPlain)) throw err;
    return canonicalize(v);
  }
}

/** The canonical JSON text of an event's leaf (eventLeafData, as a string). */
export function eventLeafText(e: AuditEvent): string {
  const fields = leafFields(e);
  let s = '{';
  for (let i = 0; i < SORTED_KEYS.length; i++) {
    const x = jcsMember(fields[SORTED_KEYS[i]!]);
    if (x === undefined) continue;
    s += (s.length === 1 ? '' : ',') + KEY_PREFIX[i]! + x;
  }
  return `${s}}`;
}

// RFC 8785 has no place for lone surrogates (canonicalize refuses them; JSON.stringify
// would escape them): such a string goes to the generic writer, which refuses it.
const isWellFormed = (s: string): boolean => (s as string & { isWellFormed(): boolean }).isWellFormed();
const isText = (v: unknown): v is string | null => v === null || (typeof v === 'string' && isWellFormed(v));
const DETAILS_MARK = ',"details":0,"ip":';

/**
 * eventLeafText for the common shape (string-or-null fields, integer seq): the members are
 * inserted in RFC 8785 order and serialised by the native JSON.stringify, whose string
 * and integer output is exactly JCS's; only `details` (whose keys need sorting) goes
 * through the generic writer and is spliced in. `,"details":0,"ip":` cannot occur inside
 * a serialised string (its quotes would be escaped), so the splice point is unambiguous.
 */
export function leafText(e: AuditEvent): string {
  if (
    !isText(e.action) || !isText(e.actor) || !isText(e.actorId) || !isText(e.ip) || !isText(e.outcome) ||
    !isText(e.policyVersion) || !isText(e.projectId) || !isText(e.reason) || !isText(e.requestId) ||
    !isText(e.resource) || !isText(e.sessionId) || !isText(e.time) || !isText(e.userAgent) || !Number.isSafeInteger(e.seq)
  ) {
    return eventLeafText(e);
  }
  const details = jcsMember(e.details);
  if (details === undefined) return eventLeafText(e);
  const s = JSON.stringify({
    action: e.action,
    actor: e.actor,
    actorId: e.actorId,
    details: 0,
    ip: e.ip,
    outcome: e.outcome,
    policyVersion: e.policyVersion,
    projectId: e.projectId,
    reason: e.reason,
    requestId: e.requestId,
    resource: e.resource,
    seq: e.seq,
    sessionId: e.sessionId,
    time: e.time,
    userAgent: e.userAgent,
    v: LEAF_FORMAT,
  });
  const i = s.indexOf(DETAILS_MARK);
  return `${s.slice(0, i)},"details":${details},"ip":${s.slice(i + DETAILS_MARK.length)}`;
}


// ---------------------------------------------------------------------------------------
// Fast leaf hashing. Byte-for-byte the same as leafHash(eventLeafData(e)) (a test checks it
// on random events), without building an object for canonicalize to sort on every event.

/** SHA-256 as a 32-char latin1 string: a Buffer result costs Node ~1 µs more per hash. */
export function digest(data: string | Buffer): string {
  return HAS_ONE_SHOT_HASH ? oneShotHash('sha256', data, 'binary') : createHash('sha256').update(data).digest('binary');
}

/** The RFC 6962 leaf hash of an event as a latin1 string: SHA-256(0x00 || canonical JSON). */
export function leafDigest(e: AuditEvent): string {
  // "\u0000" is the single byte 0x00 in UTF-8: the leaf prefix.
  return digest(`\u0000${leafText(e)}`);
}

/** RFC 6962 leaf hash of an event: SHA-256(0x00 || canonical JSON). */
export function eventLeafHash(e: AuditEvent): Buffer {
  return Buffer.from(leafDigest(e), 'latin1');
}

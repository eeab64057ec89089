// The audit log's verifier: given the events, the signed tree heads and a pinned public
// key, it recomputes every leaf from the events' canonical JSON (RFC 8785) and the Merkle
// root (RFC 9162 §2.1.1) at every tree head, in one pass with an O(log n) frontier, and
// names the first event that the evidence shows was edited, deleted, reordered or cut off.
//
// Trust comes only from the pinned key: heads not signed by it prove nothing. Stored leaf
// hashes (the database's audit_nodes level 0) are never trusted, only used to pinpoint
// which event of a failing interval changed. Witness heads (copies kept outside the
// database) catch what signed heads in the database cannot: a rollback to an older copy,
// or a rewritten history re-signed with the same key (a fork).
import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditEventsTable, Database } from '../storage/index.ts';
import { type AuditEvent, toEvent } from './audit-log.ts';
import { digest, eventLeafHash, leafDigest } from './canonical.ts';
import { EMPTY_ROOT, HASH_BYTES } from './merkle.ts';
import { signTreeHead, type TreeHead, verifyTreeHead } from './tree-head.ts';

export { eventLeafHash };

export const FAILURE_KINDS = [
  'modified',
  'missing',
  'reordered',
  'truncated',
  'bad-signature',
  'unknown-key',
  'inconsistent-heads',
  'rollback',
  'fork',
] as const;
export type VerifyFailureKind = (typeof FAILURE_KINDS)[number];

export interface VerifyFailure {
  /** The first sequence number the failure is about (1-based). */
  seq: number;
  kind: VerifyFailureKind;
  message: string;
}

/** A stored row that could not even be turned into an event (its details are not JSON, say). */
export interface UnreadableEvent {
  seq: number;
  unreadable: string;
}

export type VerifiableEvent = AuditEvent | UnreadableEvent;

/** A stored leaf hash: audit_nodes level 0, index = seq - 1. */
export interface StoredLeaf {
  index: number;
  hash: Uint8Array;
}

/** The heads one witness holds, in the order it recorded them. */
export interface WitnessHeads {
  /** Where they came from, for messages (a file path, a URL). */
  source: string;
  heads: readonly TreeHead[];
}

export interface VerifyInput {
  /** Every event, in ascending seq order. */
  events: AsyncIterable<VerifiableEvent> | Iterable<VerifiableEvent>;
  /** The log's signed tree heads, in ascending tree size (the order they were signed). */
  heads: readonly TreeHead[];
  /** The pinned tree-head key and its key id (hex SHA-256 of the SPKI DER). */
  publicKey: KeyObject;
  keyId: string;
  /** Offline only: the stored leaf hashes in ascending index order, to pinpoint edits. */
  storedLeaves?: AsyncIterable<StoredLeaf> | Iterable<StoredLeaf>;
  witnesses?: readonly WitnessHeads[];
}

export interface VerifySummary {
  /** Events read. */
  events: number;
  /** Highest seq read (0 when none). */
  lastSeq: number;
  /** Log heads given, and how many of them verified. */
  heads: number;
  witnessHeads: number;
  /** The largest log head that is validly signed by the pinned key. */
  latestHead: TreeHead | null;
  /** The largest tree size whose signed root matched the recomputed one (0 when none). */
  verifiedSize: number;
  /** Events after verifiedSize: checked for order (and against stored leaves offline), but no signature covers them yet. */
  unsignedEvents: number;
  keyId: string;
}

export type VerifyResult =
  | (VerifySummary & { ok: true })
  | (VerifySummary & { ok: false; firstBadSeq: number; kind: VerifyFailureKind; message: string; failures: VerifyFailure[] });

// ---------------------------------------------------------------------------------------
// Hashing on 32-char latin1 digest strings (see digest() in canonical.ts).

const NODE_INPUT = Buffer.alloc(1 + 2 * HASH_BYTES);
NODE_INPUT[0] = 0x01;

function nodeDigest(left: string, right: string): string {
  NODE_INPUT.write(left, 1, 'latin1');
  NODE_INPUT.write(right, 1 + HASH_BYTES, 'latin1');
  return digest(NODE_INPUT);
}

/**
 * The right edge of an RFC 6962 tree being built leaf by leaf: the roots of its perfect
 * subtrees, largest first (one per set bit of the size), so O(log n) memory.
 */
export class LogFrontier {
  readonly #nodes: string[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  append(leafHash: Uint8Array): void {
    this.appendDigest(Buffer.from(leafHash.buffer, leafHash.byteOffset, leafHash.byteLength).toString('latin1'));
  }

  /** @internal a leaf hash as a 32-char latin1 string. */
  appendDigest(leaf: string): void {
    let h = leaf;
    let n = this.#size;
    while (n % 2 === 1) {
      h = nodeDigest(this.#nodes.pop()!, h);
      n = (n - 1) / 2;
    }
    this.#nodes.push(h);
    this.#size++;
  }

  /** MTH of the leaves so far (RFC 9162 §2.1.1): the split at the largest power of two is the largest subtree. */
  root(): Buffer {
    const nodes = this.#nodes;
    if (nodes.length === 0) return Buffer.from(EMPTY_ROOT);
    let acc = nodes[nodes.length - 1]!;
    for (let i = nodes.length - 2; i >= 0; i--) acc = nodeDigest(nodes[i]!, acc);
    return Buffer.from(acc, 'latin1');
  }
}

/**
 * Signed heads over `events` every `every` events and at the end, as the server would sign
 * them (for benchmarks and tests that generate a log: `verifyLog({events, heads, …})`).
 */
export function signHeadsOver(
  events: Iterable<AuditEvent>,
  key: { privateKey: KeyObject; keyId: string },
  every: number,
  timestamp: (size: number) => string = (size) => new Date(Date.UTC(2025, 0, 1) + size).toISOString(),
): TreeHead[] {
  const f = new LogFrontier();
  const heads: TreeHead[] = [];
  const sign = () =>
    heads.push(signTreeHead({ treeSize: f.size, rootHash: f.root().toString('hex'), timestamp: timestamp(f.size), keyId: key.keyId }, key.privateKey));
  for (const e of events) {
    f.appendDigest(leafDigest(e));
    if (f.size % every === 0) sign();
  }
  if (f.size % every !== 0 || f.size === 0) sign();
  return heads;
}

// ---------------------------------------------------------------------------------------
// Verification.

/** Event-level failures only the evidence at one seq can produce: they explain root mismatches after them. */
const PINPOINTED: ReadonlySet<VerifyFailureKind> = new Set(['modified', 'missing', 'reordered']);
/** Among failures at the same seq, the more specific is named. */
const PRIORITY: readonly VerifyFailureKind[] = [
  'reordered',
  'missing',
  'modified',
  'truncated',
  'rollback',
  'fork',
  'unknown-key',
  'bad-signature',
  'inconsistent-heads',
];
const MAX_EVENT_FAILURES = 1000;
const ZERO_DIGEST = '\u0000'.repeat(HASH_BYTES);
const MAX_SUSPECTS = 256;

interface Failure extends VerifyFailure {
  /** A root mismatch at this size: explained away by any pinpointed failure at or below it. */
  upTo?: number;
}

interface Checkpoint {
  head: TreeHead;
  from: 'log' | 'witness';
  label: string;
}

interface Suspect {
  seq: number;
  event: AuditEvent | null;
  stored: Buffer | null;
}

const short = (hex: string) => (typeof hex === 'string' ? `${hex.slice(0, 12)}…` : String(hex));

function isHeadShape(h: unknown): h is TreeHead {
  if (typeof h !== 'object' || h === null) return false;
  const o = h as Record<string, unknown>;
  return (
    typeof o.treeSize === 'number' &&
    Number.isSafeInteger(o.treeSize) &&
    o.treeSize >= 0 &&
    typeof o.rootHash === 'string' &&
    /^[0-9a-f]{64}$/.test(o.rootHash) &&
    typeof o.timestamp === 'string' &&
    Number.isFinite(Date.parse(o.timestamp)) &&
    typeof o.keyId === 'string' &&
    typeof o.signature === 'string'
  );
}

function isUnreadable(e: VerifiableEvent): e is UnreadableEvent {
  return 'unreadable' in e;
}

export async function verifyLog(input: VerifyInput): Promise<VerifyResult> {
  const failures: Failure[] = [];
  let eventFailures = 0;
  const fail = (f: Failure) => failures.push(f);
  const failEvent = (f: Failure) => {
    if (eventFailures++ < MAX_EVENT_FAILURES) failures.push(f);
  };

  // 1. Which heads are signed by the pinned key. Nothing else is evidence.
  const signed = (h: unknown): h is TreeHead => isHeadShape(h) && h.keyId === input.keyId && verifyTreeHead(h, input.publicKey, input.keyId);
  const validLogSizes = [...new Set(input.heads.filter(signed).map((h) => h.treeSize))].sort((a, b) => a - b);
  /** First seq of the interval a head of `size` covers beyond the previous signed log head. */
  const intervalStart = (size: unknown): number => {
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1) return 1;
    let prev = 0;
    for (const s of validLogSizes) if (s < size) prev = s;
    return prev + 1;
  };
  const checkSignature = (h: unknown, what: string): h is TreeHead => {
    if (!isHeadShape(h)) {
      const size = typeof h === 'object' && h !== null ? (h as Record<string, unknown>).treeSize : undefined;
      fail({ seq: intervalStart(size), kind: 'bad-signature', message: `${what} is malformed` });
      return false;
    }
    if (h.keyId !== input.keyId) {
      fail({
        seq: intervalStart(h.treeSize),
        kind: 'unknown-key',
        message: `${what} (size ${h.treeSize}) is signed by key ${short(h.keyId)}, not by the pinned key ${short(input.keyId)}`,
      });
      return false;
    }
    if (!verifyTreeHead(h, input.publicKey, input.keyId)) {
      fail({ seq: intervalStart(h.treeSize), kind: 'bad-signature', message: `${what} (size ${h.treeSize}) has an invalid signature` });
      return false;
    }
    return true;
  };

  const checkpoints = new Map<number, Checkpoint[]>();
  const addCheckpoint = (c: Checkpoint) => {
    const list = checkpoints.get(c.head.treeSize);
    if (list) list.push(c);
    else checkpoints.set(c.head.treeSize, [c]);
  };

  // 2. The log's heads: in order of size, timestamps never going back, one root per size.
  let latestHead: TreeHead | null = null;
  const logRoots = new Map<number, string>();
  {
    let prev: TreeHead | null = null;
    for (const [i, h] of input.heads.entries()) {
      if (!checkSignature(h, `tree head #${i + 1}`)) continue;
      const seq = intervalStart(h.treeSize);
      const known = logRoots.get(h.treeSize);
      if (known !== undefined && known !== h.rootHash) {
        fail({ seq, kind: 'inconsistent-heads', message: `two signed tree heads for size ${h.treeSize} have different roots` });
        continue;
      }
      if (prev) {
        if (h.treeSize < prev.treeSize) {
          fail({ seq, kind: 'inconsistent-heads', message: `tree head for size ${h.treeSize} comes after one for the larger size ${prev.treeSize}` });
          continue;
        }
        if (Date.parse(h.timestamp) < Date.parse(prev.timestamp)) {
          fail({
            seq,
            kind: 'inconsistent-heads',
            message: `tree head for size ${h.treeSize} is dated ${h.timestamp}, before the head for size ${prev.treeSize} (${prev.timestamp})`,
          });
          continue;
        }
      }
      prev = h;
      if (known === undefined) {
        logRoots.set(h.treeSize, h.rootHash);
        addCheckpoint({ head: h, from: 'log', label: `signed tree head for size ${h.treeSize}` });
      }
      if (!latestHead || h.treeSize > latestHead.treeSize) latestHead = h;
    }
  }

  // 3. Witness heads: signed by the same key, never shrinking, and agreeing with the log.
  let witnessHeads = 0;
  for (const w of input.witnesses ?? []) {
    let prev: TreeHead | null = null;
    const roots = new Map<number, string>();
    for (const [i, h] of w.heads.entries()) {
      witnessHeads++;
      if (!checkSignature(h, `witness ${w.source} head #${i + 1}`)) continue;
      const seq = intervalStart(h.treeSize);
      const mine = roots.get(h.treeSize);
      const logs = logRoots.get(h.treeSize);
      if ((mine !== undefined && mine !== h.rootHash) || (logs !== undefined && logs !== h.rootHash)) {
        fail({ seq, kind: 'fork', message: `witness ${w.source} holds a different root for tree size ${h.treeSize} than ${mine !== undefined && mine !== h.rootHash ? 'it held before' : 'the log'}` });
        continue;
      }
      if (prev) {
        if (h.treeSize < prev.treeSize) {
          fail({ seq, kind: 'rollback', message: `witness ${w.source} recorded size ${h.treeSize} after size ${prev.treeSize}` });
          continue;
        }
        if (Date.parse(h.timestamp) < Date.parse(prev.timestamp)) {
          fail({ seq, kind: 'inconsistent-heads', message: `witness ${w.source}: head for size ${h.treeSize} is dated before the head for size ${prev.treeSize}` });
          continue;
        }
      }
      prev = h;
      if (mine === undefined) {
        roots.set(h.treeSize, h.rootHash);
        addCheckpoint({ head: h, from: 'witness', label: `witness ${w.source} head for size ${h.treeSize}` });
      }
    }
  }

  // 4. One pass over the events.
  const sizes = [...checkpoints.keys()].sort((a, b) => a - b);
  let next = 0;
  let verifiedSize = 0;
  const frontier = new LogFrontier();
  const checkRoots = () => {
    const size = frontier.size;
    let root: string | null = null;
    while (next < sizes.length && sizes[next]! <= size) {
      const s = sizes[next++]!;
      if (s !== size) continue; // never: this runs after every append that reaches a checkpoint
      root ??= frontier.root().toString('hex');
      let all = true;
      for (const c of checkpoints.get(s) ?? []) {
        if (c.head.rootHash === root) continue;
        all = false;
        fail(
          c.from === 'log'
            ? {
                seq: intervalStart(s),
                upTo: s,
                kind: 'modified',
                message: `the root recomputed from events 1..${s} differs from the ${c.label}: an event in ${intervalStart(s)}..${s} was changed, removed, inserted or reordered`,
              }
            : { seq: intervalStart(s), upTo: s, kind: 'fork', message: `the ${c.label} differs from the root recomputed from events 1..${s}: the log's history was rewritten` },
        );
      }
      if (all) verifiedSize = s;
    }
  };
  checkRoots(); // size-0 heads

  const suspects: Suspect[] = [];
  const suspect = (s: Suspect) => {
    if (suspects.length < MAX_SUSPECTS) suspects.push(s);
  };
  let expected = 1;
  let count = 0;
  let lastSeq = 0;

  const leafIt = input.storedLeaves ? toAsyncIterator(input.storedLeaves) : null;
  let stored: StoredLeaf | null = leafIt ? await nextLeaf(leafIt) : null;

  const step = (e: VerifiableEvent, storedHash: Buffer | null) => {
    const seq = e.seq;
    if (!Number.isSafeInteger(seq) || seq < expected) {
      failEvent({ seq: Number.isSafeInteger(seq) && seq >= 1 ? seq : expected, kind: 'reordered', message: `event seq ${String(seq)} comes after seq ${expected - 1}` });
      return;
    }
    if (seq > expected) {
      failEvent({
        seq: expected,
        kind: 'missing',
        message: seq === expected + 1 ? `event ${expected} is missing` : `events ${expected}..${seq - 1} are missing`,
      });
    }
    expected = seq + 1;
    lastSeq = seq;
    let leaf: string;
    if (isUnreadable(e)) {
      failEvent({ seq, kind: 'modified', message: `event ${seq} is unreadable: ${e.unreadable}` });
      leaf = ZERO_DIGEST;
    } else {
      try {
        leaf = leafDigest(e);
      } catch (err) {
        failEvent({ seq, kind: 'modified', message: `event ${seq} cannot be canonicalized: ${err instanceof Error ? err.message : String(err)}` });
        leaf = ZERO_DIGEST;
      }
      if (storedHash && storedHash.toString('latin1') !== leaf) suspect({ seq, event: e, stored: storedHash });
    }
    frontier.appendDigest(leaf);
    count++;
    if (next < sizes.length && sizes[next]! <= count) checkRoots();
  };

  const events = input.events;
  if (!leafIt && Symbol.iterator in events) {
    for (const e of events) step(e, null);
  } else {
    for await (const e of events) {
      let storedHash: Buffer | null = null;
      if (leafIt && Number.isSafeInteger(e.seq)) {
        const index = e.seq - 1;
        // A stored leaf with no event at its position: kept to recognise a moved event.
        while (stored && stored.index < index) {
          if (stored.index >= expected - 1) suspect({ seq: stored.index + 1, event: null, stored: Buffer.from(stored.hash) });
          stored = await nextLeaf(leafIt);
        }
        if (stored && stored.index === index) {
          storedHash = Buffer.from(stored.hash);
          stored = await nextLeaf(leafIt);
        }
      }
      step(e, storedHash);
    }
  }

  // 5. What the log should hold but does not.
  if (leafIt && stored) {
    // Leaves are written in the transaction of their event: leaves past the last event mean events were cut off.
    let last = stored.index;
    for (let s: StoredLeaf | null = stored; s; s = await nextLeaf(leafIt)) last = s.index;
    if (last >= lastSeq) {
      failEvent({ seq: lastSeq + 1, kind: 'truncated', message: `the stored Merkle tree has ${last + 1} leaves but the events end at seq ${lastSeq}` });
    }
  }
  for (const s of sizes) {
    if (s <= count) continue;
    for (const c of checkpoints.get(s) ?? []) {
      fail(
        c.from === 'log'
          ? { seq: count + 1, kind: 'truncated', message: `the ${c.label} covers ${s} events but the log holds ${count}` }
          : { seq: count + 1, kind: 'rollback', message: `the ${c.label} shows ${s} events but the log holds only ${count}: the database was rolled back` },
      );
    }
  }

  // 6. Leaves that disagree with the stored tree: moved (matches another position) or edited.
  for (const s of suspects) {
    if (!s.event) continue;
    const other = suspects.find((o) => o !== s && o.stored && o.seq !== s.seq && o.stored.equals(leafAt(s.event!, o.seq)));
    if (other) {
      const lo = Math.min(s.seq, other.seq);
      failEvent({ seq: lo, kind: 'reordered', message: `event ${s.seq} holds the content recorded for seq ${other.seq}: events were reordered` });
    } else {
      failEvent({ seq: s.seq, kind: 'modified', message: `event ${s.seq} does not match its recorded leaf hash: it was edited` });
    }
  }

  const summary: VerifySummary = {
    events: count,
    lastSeq,
    heads: input.heads.length,
    witnessHeads,
    latestHead,
    verifiedSize,
    unsignedEvents: Math.max(0, count - verifiedSize),
    keyId: input.keyId,
  };
  const pinpointed = failures.filter((f) => PINPOINTED.has(f.kind) && f.upTo === undefined);
  const standing = failures.filter((f) => f.upTo === undefined || !pinpointed.some((p) => p.seq <= f.upTo!));
  if (standing.length === 0) return { ...summary, ok: true };
  const ordered = standing
    .map(({ seq, kind, message }) => ({ seq, kind, message }))
    .sort((a, b) => a.seq - b.seq || PRIORITY.indexOf(a.kind) - PRIORITY.indexOf(b.kind));
  const first = ordered[0]!;
  return { ...summary, ok: false, firstBadSeq: first.seq, kind: first.kind, message: first.message, failures: ordered };
}

function leafAt(e: AuditEvent, seq: number): Buffer {
  try {
    return eventLeafHash({ ...e, seq });
  } catch {
    return Buffer.alloc(HASH_BYTES);
  }
}

function toAsyncIterator<T>(it: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in it ? it[Symbol.asyncIterator]() : it[Symbol.iterator]();
}

async function nextLeaf(it: AsyncIterator<StoredLeaf> | Iterator<StoredLeaf>): Promise<StoredLeaf | null> {
  const r = await it.next();
  return r.done ? null : r.value;
}

// ---------------------------------------------------------------------------------------
// Reading a log from its database (offline verification).

export interface DatabaseLog {
  heads: TreeHead[];
  events: AsyncIterable<VerifiableEvent>;
  storedLeaves: AsyncIterable<StoredLeaf>;
}

/**
 * The log as stored: heads read first, then events and level-0 leaves streamed in pages.
 * Safe against a running server: it only appends, and leaves are read only up to the
 * size the log had (or claimed in a head) when reading began.
 */
export async function readDatabaseLog(db: Kysely<Database>, pageSize = 2000): Promise<DatabaseLog> {
  const rows = await db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size', 'asc').execute();
  const heads: TreeHead[] = rows.map((r) => ({
    treeSize: Number(r.tree_size),
    rootHash: r.root_hash,
    timestamp: r.timestamp,
    keyId: r.key_id,
    signature: r.signature,
  }));
  const counter = await db.selectFrom('audit_head').select('next_seq').where('id', '=', 1).executeTakeFirst();
  const size = counter ? Number(counter.next_seq) - 1 : 0;
  const leafBound = Math.max(size, ...heads.map((h) => h.treeSize));
  // A database opened read-only is read in the layout it has: before migration 0009 the
  // nodes have no end_seq and are keyed (level, idx).
  const nodes = (await db.introspection.getTables()).find((t) => t.name === 'audit_nodes');
  const keyedByEnd = nodes?.columns.some((c) => c.name === 'end_seq') ?? true;

  async function* events(): AsyncGenerator<VerifiableEvent> {
    let after = 0;
    for (;;) {
      const page = await db.selectFrom('audit_events').selectAll().where('seq', '>', after).orderBy('seq', 'asc').limit(pageSize).execute();
      for (const r of page) yield readRow(r);
      if (page.length < pageSize) return;
      after = Number(page[page.length - 1]!.seq);
    }
  }
  async function* storedLeaves(): AsyncGenerator<StoredLeaf> {
    let from = 0;
    while (from < leafBound) {
      const base = db.selectFrom('audit_nodes').select(['idx', 'hash']).where('level', '=', 0);
      const page = await (
        keyedByEnd
          ? // Leaf i ends at seq i + 1 (the key, migration 0009).
            base.where('end_seq', '>', from).where('end_seq', '<=', leafBound).orderBy('end_seq', 'asc')
          : base.where('idx', '>=', from).where('idx', '<', leafBound).orderBy('idx', 'asc')
      )
        .limit(pageSize)
        .execute();
      for (const r of page) yield { index: Number(r.idx), hash: Buffer.from(r.hash, 'hex') };
      if (page.length < pageSize) return;
      from = Number(page[page.length - 1]!.idx) + 1;
    }
  }
  return { heads, events: events(), storedLeaves: storedLeaves() };
}

function readRow(r: AuditEventsTable): VerifiableEvent {
  try {
    return toEvent(r);
  } catch (err) {
    return { seq: Number(r.seq), unreadable: err instanceof Error ? err.message : String(err) };
  }
}

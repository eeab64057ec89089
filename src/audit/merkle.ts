// The pure Merkle-tree core of the tamper-evident audit log: RFC 6962 §2.1 / RFC 9162 §2.1.
//
//   leaf hash  = SHA-256(0x00 || data)
//   node hash  = SHA-256(0x01 || left || right)
//   MTH({})    = SHA-256("")
//
// Everything here is a pure function of its arguments (plus a NodeReader for the proof
// generators). Tree positions are plain JavaScript numbers, so every index and size must be
// a non-negative safe integer; shifts are done with arithmetic, never with 32-bit bitwise
// operators. "leaf" arguments (verifyInclusion, completedNodes, rootFromLeafHashes) are
// 32-byte LEAF HASHES, as in RFC 9162 §2.1.3.2 ("hash"): compute them with leafHash(data).
// Generators throw a plain Error on misuse; verifiers return false and never throw.
import { createHash, hash as oneShotHash } from 'node:crypto';

export const HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

export function leafHash(data: Uint8Array): Buffer {
  return createHash('sha256').update(LEAF_PREFIX).update(data).digest();
}

/**
 * crypto.hash (one call, no Hash object) works in this Node: node and leaf hashes are the
 * hot part of an append and of the verifier (here and in canonical.ts).
 */
export const HAS_ONE_SHOT_HASH = (() => {
  try {
    return typeof oneShotHash === 'function' && Buffer.isBuffer(oneShotHash('sha256', '', 'buffer'));
  } catch {
    return false;
  }
})();

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (HAS_ONE_SHOT_HASH) return oneShotHash('sha256', Buffer.concat([NODE_PREFIX, left, right]), 'buffer');
  return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
}

/**
 * The tree size at which node (level, index) is completed: (index + 1) * 2^level, the seq
 * of the append that stores it. With level, the key of a stored node (migration 0009).
 */
export function completedAt(level: number, index: number): number {
  return (index + 1) * 2 ** level;
}

export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

// ---------------------------------------------------------------------------------------
// Small arithmetic helpers (safe for the whole safe-integer range, unlike `>>` and `&`).

function isCount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_BYTES;
}

function isOdd(n: number): boolean {
  return n % 2 === 1;
}

function half(n: number): number {
  return Math.floor(n / 2);
}

function isPowerOfTwo(n: number): boolean {
  if (n < 1) return false;
  let x = n;
  while (x % 2 === 0) x /= 2;
  return x === 1;
}

/** log2 of a power of two. */
function log2Exact(n: number): number {
  let level = 0;
  let x = n;
  while (x > 1) {
    x /= 2;
    level++;
  }
  return level;
}

function equalHash(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function requireCount(name: string, n: number): void {
  if (!isCount(n)) throw new Error(`${name} must be a non-negative safe integer, got ${String(n)}`);
}

function requireHash(name: string, h: Uint8Array): void {
  if (!isHash(h)) throw new Error(`${name} must be a ${HASH_BYTES}-byte hash`);
}

async function readChecked(read: NodeReader, level: number, index: number): Promise<Buffer> {
  const h = await read(level, index);
  if (!isHash(h)) throw new Error(`node reader returned a malformed hash for level ${level} index ${index}`);
  return Buffer.isBuffer(h) ? h : Buffer.from(h);
}

// ---------------------------------------------------------------------------------------
// In-memory MTH.

/** MTH over leaf hashes already computed (in memory; for tests and the offline verifier). */
export function rootFromLeafHashes(leaves: readonly Uint8Array[]): Buffer {
  leaves.forEach((h, i) => {
    requireHash(`leaf hash ${i}`, h);
  });
  if (leaves.length === 0) return Buffer.from(EMPTY_ROOT);
  // Bottom-up over the RFC structure: at each level pair up neighbours; an unpaired last
  // node is carried up unchanged (equivalent to the recursive split at the largest power
  // of two strictly below n).
  let level: Uint8Array[] = [...leaves];
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return Buffer.from(level[0]!);
}

/** Largest power of two strictly less than n (n >= 2). */
export function splitPoint(n: number): number {
  if (!isCount(n) || n < 2) throw new Error(`splitPoint needs a safe integer n >= 2, got ${String(n)}`);
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// ---------------------------------------------------------------------------------------
// Store-backed hashing and proof generation.

/**
 * Reads the hash of a perfect, aligned subtree: level L (0 = leaf hashes), index i covers
 * leaves [i*2^L, (i+1)*2^L). The store keeps exactly these nodes.
 */
export type NodeReader = (level: number, index: number) => Promise<Buffer>;

/** MTH(D[start:end]) for any range that is a subtree of the RFC tree structure of some size
 *  (i.e. every range PATH/PROOF ever asks for), using O(log n) NodeReader calls: split at
 *  splitPoint(size); the left part is always a perfect aligned node; recurse right. */
export async function rangeHash(start: number, end: number, read: NodeReader): Promise<Buffer> {
  requireCount('start', start);
  requireCount('end', end);
  if (end < start) throw new Error(`rangeHash: end ${end} < start ${start}`);
  if (end === start) return Buffer.from(EMPTY_ROOT);
  // Plan every read before issuing any, so a bad range throws without reading.
  const nodes: [number, number][] = [];
  let s = start;
  let size = end - start;
  while (!(isPowerOfTwo(size) && s % size === 0)) {
    const k = splitPoint(size);
    if (s % k !== 0) throw new Error(`rangeHash: [${start}, ${end}) is not a subtree of any RFC 6962 tree`);
    nodes.push([log2Exact(k), s / k]);
    s += k;
    size -= k;
  }
  nodes.push([log2Exact(size), s / size]);
  const hashes = await Promise.all(nodes.map(([level, index]) => readChecked(read, level, index)));
  let acc = hashes[hashes.length - 1]!;
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc);
  return acc;
}

/** RFC 9162 §2.1.3.1 PATH(m, D[n]): audit path for 0-based leaf `index` in a tree of `size`. */
export async function inclusionProof(index: number, size: number, read: NodeReader): Promise<Buffer[]> {
  requireCount('index', index);
  requireCount('size', size);
  if (index >= size) throw new Error(`inclusionProof: index ${index} out of range for tree size ${size}`);
  // Walk from the root down to the leaf, collecting the sibling ranges; the path lists
  // them leaf-first.
  const siblings: [number, number][] = [];
  let start = 0;
  let n = size;
  let m = index;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) {
      siblings.push([start + k, start + n]);
      n = k;
    } else {
      siblings.push([start, start + k]);
      start += k;
      m -= k;
      n -= k;
    }
  }
  siblings.reverse();
  return Promise.all(siblings.map(([s, e]) => rangeHash(s, e, read)));
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[n]) for 0 < m <= n (m == n → empty proof). */
export async function consistencyProof(m: number, n: number, read: NodeReader): Promise<Buffer[]> {
  requireCount('m', m);
  requireCount('n', n);
  if (m === 0 || m > n) throw new Error(`consistencyProof needs 0 < m <= n, got m=${m} n=${n}`);
  // SUBPROOF(m, D[n], true), unrolled: walk down collecting sibling ranges; at the bottom
  // (m == size of the current subtree) emit MTH of that subtree unless it is the whole
  // old tree (b still true).
  const siblings: [number, number][] = [];
  let start = 0;
  let size = n;
  let mm = m;
  let b = true;
  while (mm !== size) {
    const k = splitPoint(size);
    if (mm <= k) {
      siblings.push([start + k, start + size]);
      size = k;
    } else {
      siblings.push([start, start + k]);
      start += k;
      size -= k;
      mm -= k;
      b = false;
    }
  }
  const ranges: [number, number][] = b ? [] : [[start, start + size]];
  ranges.push(...siblings.reverse());
  return Promise.all(ranges.map(([s, e]) => rangeHash(s, e, read)));
}

/**
 * Appending leaf `index` (0-based) completes some perfect subtrees; returns the new nodes
 * [{level, index, hash}] for levels >= 1 that become complete, reading left siblings via `read`.
 */
export async function completedNodes(
  index: number,
  leaf: Uint8Array,
  read: NodeReader,
): Promise<{ level: number; index: number; hash: Buffer }[]> {
  requireCount('index', index);
  requireHash('leaf', leaf);
  const out: { level: number; index: number; hash: Buffer }[] = [];
  let hash: Buffer = Buffer.from(leaf);
  let level = 0;
  let i = index;
  while (isOdd(i)) {
    const left = await readChecked(read, level, i - 1);
    hash = nodeHash(left, hash);
    level++;
    i = half(i);
    out.push({ level, index: i, hash });
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Verification.

function isHashList(path: unknown): path is readonly Uint8Array[] {
  return Array.isArray(path) && path.every(isHash);
}

/** RFC 9162 §2.1.3.2, exactly (including the final sn == 0 check). False, never throws, on any malformed input. */
export function verifyInclusion(
  leaf: Uint8Array,
  index: number,
  size: number,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  try {
    if (!isCount(index) || !isCount(size) || !isHash(leaf) || !isHash(root) || !isHashList(path)) return false;
    // 1. leaf_index >= tree_size fails.
    if (index >= size) return false;
    // 2. fn = leaf_index, sn = tree_size - 1.
    let fn = index;
    let sn = size - 1;
    // 3. r = hash.
    let r: Buffer = Buffer.from(leaf);
    // 4. For each p in inclusion_path:
    for (const p of path) {
      // a. sn == 0 → fail.
      if (sn === 0) return false;
      // b.
      if (isOdd(fn) || fn === sn) {
        r = nodeHash(p, r);
        if (!isOdd(fn)) {
          while (!(isOdd(fn) || fn === 0)) {
            fn = half(fn);
            sn = half(sn);
          }
        }
      } else {
        r = nodeHash(r, p);
      }
      // c.
      fn = half(fn);
      sn = half(sn);
    }
    // 5. sn == 0 and r == root.
    return sn === 0 && equalHash(r, root);
  } catch {
    return false;
  }
}

/** RFC 9162 §2.1.4.2, exactly. m == n requires an empty proof and equal roots; m > n, m == 0 with a non-empty proof, wrong lengths → false. */
export function verifyConsistency(
  m: number,
  n: number,
  oldRoot: Uint8Array,
  newRoot: Uint8Array,
  proof: readonly Uint8Array[],
): boolean {
  try {
    if (!isCount(m) || !isCount(n) || !isHash(oldRoot) || !isHash(newRoot) || !isHashList(proof)) return false;
    if (m > n) return false;
    if (m === n) return proof.length === 0 && equalHash(oldRoot, newRoot);
    // The empty tree is consistent with every tree, but only with an empty proof, and its
    // root is MTH({}).
    if (m === 0) return proof.length === 0 && equalHash(oldRoot, EMPTY_ROOT);
    // 1. Empty consistency_path → fail.
    if (proof.length === 0) return false;
    // 2. first is an exact power of 2 → prepend first_hash.
    const path: readonly Uint8Array[] = isPowerOfTwo(m) ? [oldRoot, ...proof] : proof;
    // 3. fn = first - 1, sn = second - 1.
    let fn = m - 1;
    let sn = n - 1;
    // 4. While LSB(fn) is set, right-shift fn and sn.
    while (isOdd(fn)) {
      fn = half(fn);
      sn = half(sn);
    }
    // 5. fr = sr = first value.
    const [first, ...rest] = path as [Uint8Array, ...Uint8Array[]];
    let fr: Buffer = Buffer.from(first);
    let sr: Buffer = Buffer.from(first);
    // 6. For each subsequent value c:
    for (const c of rest) {
      // a. sn == 0 → fail.
      if (sn === 0) return false;
      // b.
      if (isOdd(fn) || fn === sn) {
        fr = nodeHash(c, fr);
        sr = nodeHash(c, sr);
        if (!isOdd(fn)) {
          while (!(isOdd(fn) || fn === 0)) {
            fn = half(fn);
            sn = half(sn);
          }
        }
      } else {
        sr = nodeHash(sr, c);
      }
      // c.
      fn = half(fn);
      sn = half(sn);
    }
    // 7. fr == first_hash, sr == second_hash, sn == 0.
    return sn === 0 && equalHash(fr, oldRoot) && equalHash(sr, newRoot);
  } catch {
    return false;
  }
}

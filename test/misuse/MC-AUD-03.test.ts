// MC-AUD-03 — proof-verifier robustness. Starting from the RFC 6962 known-answer vectors
// and from proofs generated for every leaf / every pair of sizes of small trees, every
// mutation is rejected by verifyInclusion / verifyConsistency (RFC 9162 §2.1.3.2 and
// §2.1.4.2, including the final sn == 0 check), without throwing: leaf index ±1 and ^2,
// tree size ×2 and /2, wrong leaf, empty or random root, trailing or leading garbage
// components, every single bit flip in every component (and in the leaf and roots), a
// removed or inserted component, swapped roots, an empty proof when m < n, m > n, and an
// interior node presented as a leaf.
//
// Note on the interior-node case: verifyInclusion takes a leaf HASH (as RFC 9162 does).
// What stops a second-preimage forgery is that the caller computes that hash itself with
// leafHash(data) = SHA-256(0x00 || data) and takes the tree size from the signed tree head:
// an interior node's preimage (left || right) presented as leaf data never hashes to the
// node, and a node hash fed in with the real tree size fails the sn == 0 check.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  consistencyProof,
  EMPTY_ROOT,
  inclusionProof,
  leafHash,
  type NodeReader,
  nodeHash,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from '../../src/audit/merkle.ts';
import { loadVectors } from '../conformance/vectors/load.ts';

// ---------------------------------------------------------------------------------------
// Vectors and trees.

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

/** A tree over leaf data: leaf hashes, all perfect aligned nodes, a NodeReader, roots. */
class Tree {
  readonly data: readonly Buffer[];
  readonly leaves: readonly Buffer[];
  readonly nodes = new Map<string, Buffer>();

  constructor(data: readonly Buffer[]) {
    this.data = data;
    this.leaves = data.map((d) => leafHash(d));
    let row = [...this.leaves];
    for (let level = 0; row.length > 0; level++) {
      row.forEach((h, i) => {
        this.nodes.set(`${level}:${i}`, h);
      });
      const next: Buffer[] = [];
      for (let i = 0; i + 1 < row.length; i += 2) next.push(nodeHash(row[i]!, row[i + 1]!));
      row = next;
    }
  }

  node(level: number, index: number): Buffer | undefined {
    return this.nodes.get(`${level}:${index}`);
  }

  /** Reads only nodes inside the first `size` leaves. */
  reader(size: number): NodeReader {
    return async (level, index) => {
      const h = (index + 1) * 2 ** level <= size ? this.node(level, index) : undefined;
      if (h === undefined) throw new Error(`no node ${level}:${index} in a tree of ${size}`);
      return h;
    };
  }

  readonly #roots = new Map<number, Buffer>();

  root(size: number): Buffer {
    let r = this.#roots.get(size);
    if (r === undefined) {
      r = rootFromLeafHashes(this.leaves.slice(0, size));
      this.#roots.set(size, r);
    }
    return r;
  }
}

const V = loadVectors();
const VECTOR_TREE = new Tree(V.leaves.map(hex));
/** Trees up to this size get every single-bit flip; larger ones a sample of them. */
const FULL = 16;
const GEN_TREE = new Tree(Array.from({ length: 40 }, (_, i) => Buffer.from(`modelkeep audit event #${i}`)));

// ---------------------------------------------------------------------------------------
// Mutation helpers.

let garbageCounter = 0;
/** Deterministic "random" 32-byte values, so a failure is reproducible. */
const garbage = (): Buffer => createHash('sha256').update(`garbage ${garbageCounter++}`).digest();

function flipBit(b: Uint8Array, bit: number): Buffer {
  const out = Buffer.from(b);
  out[bit >> 3] = out[bit >> 3]! ^ (1 << (bit & 7));
  return out;
}

/** Every single-bit flip of `b`, or (for the cheaper sweeps over larger trees) a sample of
 *  them: the first and last bit and one in each half. */
function* bitFlips(b: Uint8Array, all: boolean): Generator<[number, Buffer]> {
  const last = b.length * 8 - 1;
  const bits = all ? Array.from({ length: last + 1 }, (_, bit) => bit) : [0, 77, 130, last].filter((bit) => bit <= last);
  for (const bit of bits) yield [bit, flipBit(b, bit)];
}

/** Mutations of a hash list shared by audit paths and consistency proofs. */
function* listMutations(list: readonly Buffer[], extra: readonly Buffer[], flips: boolean): Generator<[string, Buffer[]]> {
  yield ['trailing garbage component', [...list, garbage()]];
  yield ['leading garbage component', [garbage(), ...list]];
  for (const e of extra) {
    yield ['trailing known hash', [...list, e]];
    yield ['leading known hash', [e, ...list]];
  }
  if (list.length > 0) {
    yield ['trailing duplicate', [...list, list[list.length - 1]!]];
    yield ['leading duplicate', [list[0]!, ...list]];
  }
  for (const [k, c] of list.entries()) {
    for (const [bit, flipped] of bitFlips(c, flips)) yield [`bit ${bit} of component ${k} flipped`, list.map((x, j) => (j === k ? flipped : x))];
    yield [`component ${k} removed`, list.filter((_, j) => j !== k)];
    yield [`component ${k} truncated`, list.map((x, j) => (j === k ? x.subarray(0, 31) : x))];
    yield [`component ${k} extended`, list.map((x, j) => (j === k ? Buffer.concat([x, Buffer.alloc(1)]) : x))];
    yield [`component ${k} zeroed`, list.map((x, j) => (j === k ? Buffer.alloc(32) : x))];
  }
  for (let k = 0; k <= list.length; k++) {
    yield [`garbage inserted at ${k}`, [...list.slice(0, k), garbage(), ...list.slice(k)]];
    if (k > 0) yield [`component ${k - 1} repeated`, [...list.slice(0, k), list[k - 1]!, ...list.slice(k)]];
  }
  if (list.length > 1) {
    yield ['components reversed', [...list].reverse()];
    yield ['first two swapped', [list[1]!, list[0]!, ...list.slice(2)]];
  }
}

/** Mutations of a root hash. */
function* rootMutations(root: Buffer, flips: boolean): Generator<[string, Buffer]> {
  yield ['empty', Buffer.alloc(0)];
  yield ['EMPTY_ROOT', EMPTY_ROOT];
  yield ['random', garbage()];
  yield ['zero', Buffer.alloc(32)];
  yield ['truncated', root.subarray(0, 31)];
  yield ['extended', Buffer.concat([root, Buffer.alloc(1)])];
  yield ['hex string bytes', Buffer.from(root.toString('hex'))];
  for (const [bit, flipped] of bitFlips(root, flips)) yield [`bit ${bit} flipped`, flipped];
}

/** Largest power of two strictly below n (test-side, independent of merkle.ts). */
function split(n: number): number {
  let k = 1;
  while (k < n) k *= 2;
  return k / 2;
}

/** Shape of PATH(i, D[n]), leaf first: for each component, is it a right (R) or left (L)
 *  sibling. Two positions with the same shape are indistinguishable to any verifier. */
function pathShape(i: number, n: number): string {
  if (n <= 1) return '';
  const k = split(n);
  return i < k ? `${pathShape(i, k)}R` : `${pathShape(i - k, n - k)}L`;
}

/** Shape of PROOF(m, D[n]) (RFC 9162 §2.1.4.1 SUBPROOF), in the same spirit. */
function proofShape(m: number, n: number, b = true): string {
  if (m === n) return b ? '=' : '*';
  const k = split(n);
  return m <= k ? `${proofShape(m, k, b)}R` : `${proofShape(m - k, n - k, false)}L`;
}

// ---------------------------------------------------------------------------------------
// Inclusion.

interface InclusionCase {
  tree: Tree;
  index: number;
  size: number;
  path: Buffer[];
}

type InclusionArgs = [leaf: Uint8Array, index: number, size: number, path: readonly Uint8Array[], root: Uint8Array];

function* inclusionMutations({ tree, index: i, size: n, path }: InclusionCase, flips: boolean): Generator<[string, InclusionArgs]> {
  const leaf = tree.leaves[i]!;
  const root = tree.root(n);
  // Index and size.
  yield ['index + 1', [leaf, i + 1, n, path, root]];
  yield ['index - 1', [leaf, i - 1, n, path, root]];
  yield ['index ^ 2', [leaf, i ^ 2, n, path, root]];
  yield ['size * 2', [leaf, i, n * 2, path, root]];
  yield ['size / 2', [leaf, i, Math.floor(n / 2), path, root]];
  yield ['index = size', [leaf, n, n, path, root]];
  yield ['size 0', [leaf, 0, 0, path, root]];
  yield ['index and size swapped', [leaf, n, i, path, root]];
  // The same path claimed for a position in a smaller tree (what the in-loop "sn == 0 →
  // fail" step of RFC 9162 §2.1.3.2 catches), skipping positions of the very same shape,
  // which are the same claim: a root does not commit to its size, the signed head does.
  for (let d = 1; d <= i; d++) {
    if (pathShape(i - d, n - d) !== pathShape(i, n)) yield [`index and size both - ${d}`, [leaf, i - d, n - d, path, root]];
  }
  // Wrong leaf.
  yield ['leaf of data not in the log', [leafHash(Buffer.from('not in the log')), i, n, path, root]];
  yield ['leaf hashed without the 0x00 prefix', [createHash('sha256').update(tree.data[i]!).digest(), i, n, path, root]];
  yield ['leaf data instead of its hash', [Buffer.concat([tree.data[i]!, Buffer.alloc(32)]).subarray(0, 32), i, n, path, root]];
  for (let j = 0; j < n; j++) if (j !== i) yield [`leaf ${j} presented at index ${i}`, [tree.leaves[j]!, i, n, path, root]];
  for (const [bit, flipped] of bitFlips(leaf, flips)) yield [`leaf bit ${bit} flipped`, [flipped, i, n, path, root]];
  // Root.
  for (const [what, r] of rootMutations(root, flips)) yield [`root ${what}`, [leaf, i, n, path, r]];
  for (let s = 1; s <= tree.leaves.length; s++) if (s !== n) yield [`root of size ${s}`, [leaf, i, n, path, tree.root(s)]];
  if (n > 1) yield ['leaf and root swapped', [root, i, n, path, leaf]];
  // Path.
  if (path.length > 0) yield ['empty path', [leaf, i, n, [], root]];
  for (const [what, p] of listMutations(path, [root, leaf], flips)) yield [`path: ${what}`, [leaf, i, n, p, root]];
  // An interior node presented as a leaf: every complete ancestor of leaf i.
  for (let level = 1; (Math.floor(i / 2 ** level) + 1) * 2 ** level <= n; level++) {
    const j = Math.floor(i / 2 ** level);
    const node = tree.node(level, j)!;
    const left = tree.node(level - 1, 2 * j)!;
    const right = tree.node(level - 1, 2 * j + 1)!;
    const short = path.slice(level);
    yield [`level-${level} node as leaf, same index/size/path`, [node, i, n, path, root]];
    yield [`level-${level} node as leaf ${j}, real size, remaining path`, [node, j, n, short, root]];
    yield [`level-${level} node as leaf ${i}, real size, remaining path`, [node, i, n, short, root]];
    for (const data of [Buffer.concat([left, right]), Buffer.concat([Buffer.from([1]), left, right])]) {
      const forged = leafHash(data);
      for (const size of new Set([n, Math.ceil(n / 2 ** level), Math.floor(n / 2 ** level)])) {
        yield [`level-${level} node preimage as leaf data (${data.length} bytes) at ${j} of ${size}`, [forged, j, size, short, root]];
      }
      yield [`level-${level} node preimage as leaf data at ${i} of ${n}`, [forged, i, n, path, root]];
    }
  }
}

function checkInclusion(c: InclusionCase, flips = true): number {
  const leaf = c.tree.leaves[c.index]!;
  assert.equal(verifyInclusion(leaf, c.index, c.size, c.path, c.tree.root(c.size)), true, `unmutated leaf ${c.index} of ${c.size}`);
  let count = 0;
  for (const [what, args] of inclusionMutations(c, flips)) {
    let ok: boolean;
    try {
      ok = verifyInclusion(...args);
    } catch (err) {
      assert.fail(`leaf ${c.index} of ${c.size}, ${what}: threw ${String(err)}`);
    }
    assert.equal(ok, false, `leaf ${c.index} of ${c.size}: ${what} was accepted`);
    count++;
  }
  return count;
}

// ---------------------------------------------------------------------------------------
// Consistency.

interface ConsistencyCase {
  tree: Tree;
  m: number;
  n: number;
  proof: Buffer[];
}

type ConsistencyArgs = [m: number, n: number, oldRoot: Uint8Array, newRoot: Uint8Array, proof: readonly Uint8Array[]];

function* consistencyMutations({ tree, m, n, proof }: ConsistencyCase, flips: boolean): Generator<[string, ConsistencyArgs]> {
  const r1 = tree.root(m);
  const r2 = tree.root(n);
  // Sizes.
  yield ['m + 1', [m + 1, n, r1, r2, proof]];
  yield ['m - 1', [m - 1, n, r1, r2, proof]];
  yield ['m ^ 2', [m ^ 2, n, r1, r2, proof]];
  yield ['m * 2', [m * 2, n, r1, r2, proof]];
  yield ['m / 2', [Math.floor(m / 2), n, r1, r2, proof]];
  yield ['n * 2', [m, n * 2, r1, r2, proof]];
  yield ['n / 2', [m, Math.floor(n / 2), r1, r2, proof]];
  yield ['m = 0', [0, n, r1, r2, proof]];
  yield ['m = 0 with the empty root', [0, n, EMPTY_ROOT, r2, proof]];
  yield ['m = n', [n, n, r1, r2, proof]];
  for (let d = 1; d < m; d++) {
    if (proofShape(m - d, n - d) !== proofShape(m, n)) yield [`m and n both - ${d}`, [m - d, n - d, r1, r2, proof]];
  }
  yield ['m > n (sizes swapped)', [n, m, r1, r2, proof]];
  yield ['m > n (sizes and roots swapped)', [n, m, r2, r1, proof]];
  // Roots.
  yield ['roots swapped', [m, n, r2, r1, proof]];
  yield ['old root for both', [m, n, r1, r1, proof]];
  yield ['new root for both', [m, n, r2, r2, proof]];
  for (const [what, r] of rootMutations(r1, flips)) yield [`old root ${what}`, [m, n, r, r2, proof]];
  for (const [what, r] of rootMutations(r2, flips)) yield [`new root ${what}`, [m, n, r1, r, proof]];
  for (let s = 1; s <= tree.leaves.length; s++) {
    if (s !== m) yield [`old root of size ${s}`, [m, n, tree.root(s), r2, proof]];
    if (s !== n) yield [`new root of size ${s}`, [m, n, r1, tree.root(s), proof]];
  }
  // Proof.
  yield ['empty proof', [m, n, r1, r2, []]];
  yield ['old root prepended (non-RFC generators)', [m, n, r1, r2, [r1, ...proof]]];
  for (const [what, p] of listMutations(proof, [r1, r2], flips)) yield [`proof: ${what}`, [m, n, r1, r2, p]];
}

function checkConsistency(c: ConsistencyCase, flips = true): number {
  const { tree, m, n, proof } = c;
  assert.ok(m < n && proof.length > 0);
  assert.equal(verifyConsistency(m, n, tree.root(m), tree.root(n), proof), true, `unmutated ${m} -> ${n}`);
  let count = 0;
  for (const [what, args] of consistencyMutations(c, flips)) {
    let ok: boolean;
    try {
      ok = verifyConsistency(...args);
    } catch (err) {
      assert.fail(`${m} -> ${n}, ${what}: threw ${String(err)}`);
    }
    assert.equal(ok, false, `${m} -> ${n}: ${what} was accepted`);
    count++;
  }
  return count;
}

// ---------------------------------------------------------------------------------------

describe('MC-AUD-03 proof-verifier robustness', () => {
  describe('known-answer vectors', () => {
    for (const v of V.inclusion) {
      test(`inclusion vector: leaf ${v.leaf} (1-based) of ${v.treeSize}`, (t) => {
        const count = checkInclusion({ tree: VECTOR_TREE, index: v.leaf - 1, size: v.treeSize, path: v.path.map(hex) });
        t.diagnostic(`${count} mutations rejected`);
      });
    }
    for (const v of V.consistency) {
      test(`consistency vector: ${v.first} -> ${v.second}`, (t) => {
        const count = checkConsistency({ tree: VECTOR_TREE, m: v.first, n: v.second, proof: v.proof.map(hex) });
        t.diagnostic(`${count} mutations rejected`);
      });
    }
    test('the vector roots are the roots of the vector leaves', () => {
      for (const [i, r] of V.rootAfter.entries()) assert.equal(VECTOR_TREE.root(i + 1).toString('hex'), r);
    });
  });

  describe('generated proofs', () => {
    test('inclusion: every leaf of every tree of 1..16 leaves', async (t) => {
      let count = 0;
      for (let n = 1; n <= FULL; n++) {
        for (let i = 0; i < n; i++) {
          const path = await inclusionProof(i, n, GEN_TREE.reader(n));
          count += checkInclusion({ tree: GEN_TREE, index: i, size: n, path });
        }
      }
      t.diagnostic(`${count} mutations rejected`);
    });

    test('consistency: every 1 <= m < n <= 16', async (t) => {
      let count = 0;
      for (let n = 2; n <= FULL; n++) {
        for (let m = 1; m < n; m++) {
          const proof = await consistencyProof(m, n, GEN_TREE.reader(n));
          count += checkConsistency({ tree: GEN_TREE, m, n, proof });
        }
      }
      t.diagnostic(`${count} mutations rejected`);
    });

    test('larger trees (17..40 leaves): every mutation, bit flips sampled', async (t) => {
      let count = 0;
      for (let n = FULL + 1; n <= GEN_TREE.leaves.length; n++) {
        const read = GEN_TREE.reader(n);
        for (let i = 0; i < n; i++) {
          const path = await inclusionProof(i, n, read);
          count += checkInclusion({ tree: GEN_TREE, index: i, size: n, path }, false);
        }
        for (let m = 1; m < n; m++) {
          const proof = await consistencyProof(m, n, read);
          count += checkConsistency({ tree: GEN_TREE, m, n, proof }, false);
        }
      }
      t.diagnostic(`${count} mutations rejected`);
    });
  });
});

// Unit and property tests for the Merkle core (src/audit/merkle.ts) against a reference
// implementation written straight from the recursive definitions of RFC 9162 §2.1
// (MTH, PATH, PROOF/SUBPROOF) over in-memory arrays, and an in-memory node store that
// keeps exactly the perfect aligned subtrees, as the database does.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import {
  completedNodes,
  consistencyProof,
  EMPTY_ROOT,
  HASH_BYTES,
  inclusionProof,
  leafHash,
  type NodeReader,
  nodeHash,
  rangeHash,
  rootFromLeafHashes,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
} from './merkle.ts';

const MAX = 70;

// ---------------------------------------------------------------------------------------
// Reference implementation (deliberately naive and independent of merkle.ts).

function refSplit(n: number): number {
  let k = 1;
  while (k < n) k *= 2;
  return k / 2;
}

function refMTH(d: readonly Buffer[]): Buffer {
  if (d.length === 0) return createHash('sha256').update(Buffer.alloc(0)).digest();
  if (d.length === 1) return d[0]!;
  const k = refSplit(d.length);
  return nodeHash(refMTH(d.slice(0, k)), refMTH(d.slice(k)));
}

function refPATH(m: number, d: readonly Buffer[]): Buffer[] {
  if (d.length === 1) return [];
  const k = refSplit(d.length);
  return m < k ? [...refPATH(m, d.slice(0, k)), refMTH(d.slice(k))] : [...refPATH(m - k, d.slice(k)), refMTH(d.slice(0, k))];
}

function refSUBPROOF(m: number, d: readonly Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [refMTH(d)];
  const k = refSplit(n);
  return m <= k
    ? [...refSUBPROOF(m, d.slice(0, k), b), refMTH(d.slice(k))]
    : [...refSUBPROOF(m - k, d.slice(k), false), refMTH(d.slice(0, k))];
}

function refPROOF(m: number, d: readonly Buffer[]): Buffer[] {
  return refSUBPROOF(m, d, true);
}

// ---------------------------------------------------------------------------------------
// In-memory store of perfect aligned nodes.

const key = (level: number, index: number): string => `${level}:${index}`;

/** Every perfect aligned node over `leaves` (level 0 = the leaf hashes themselves). */
function perfectNodes(leaves: readonly Buffer[]): Map<string, Buffer> {
  const nodes = new Map<string, Buffer>();
  let row: Buffer[] = [...leaves];
  for (let level = 0; row.length > 0; level++) {
    row.forEach((h, i) => {
      nodes.set(key(level, i), h);
    });
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < row.length; i += 2) next.push(nodeHash(row[i]!, row[i + 1]!));
    row = next;
  }
  return nodes;
}

interface Store {
  read: NodeReader;
  reads(): number;
  reset(): void;
}

/** A reader over exactly `leaves`: asking for any node outside that tree is an error. */
function memoryStore(leaves: readonly Buffer[]): Store {
  const nodes = perfectNodes(leaves);
  let count = 0;
  return {
    read: async (level, index) => {
      count++;
      const h = nodes.get(key(level, index));
      if (h === undefined) throw new Error(`no node at level ${level} index ${index} in a tree of ${leaves.length}`);
      return h;
    },
    reads: () => count,
    reset: () => {
      count = 0;
    },
  };
}

const LEAVES: readonly Buffer[] = Array.from({ length: MAX }, (_, i) => leafHash(Buffer.from(`audit event ${i}`)));

const ceilLog2 = (n: number): number => {
  let l = 0;
  while (2 ** l < n) l++;
  return l;
};

// ---------------------------------------------------------------------------------------

describe('hash primitives', () => {
  test('HASH_BYTES, EMPTY_ROOT and domain separation', () => {
    assert.equal(HASH_BYTES, 32);
    assert.equal(EMPTY_ROOT.toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    assert.equal(leafHash(Buffer.alloc(0)).toString('hex'), '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const l = leafHash(Buffer.from('a'));
    const r = leafHash(Buffer.from('b'));
    assert.deepEqual(nodeHash(l, r), createHash('sha256').update(Buffer.from([1])).update(l).update(r).digest());
    assert.deepEqual(leafHash(Buffer.from('a')), createHash('sha256').update(Buffer.from([0, 0x61])).digest());
    assert.notDeepEqual(leafHash(Buffer.concat([l, r])), nodeHash(l, r));
    assert.ok(Buffer.isBuffer(leafHash(new Uint8Array([1, 2, 3]))));
    assert.equal(nodeHash(l, r).length, HASH_BYTES);
  });

  test('splitPoint is the largest power of two strictly below n', () => {
    for (let n = 2; n <= 1100; n++) {
      const k = splitPoint(n);
      assert.ok(k < n && 2 * k >= n && Number.isInteger(Math.log2(k)), `n=${n} k=${k}`);
    }
    assert.equal(splitPoint(2 ** 32), 2 ** 31);
    assert.equal(splitPoint(2 ** 32 + 1), 2 ** 32);
    assert.equal(splitPoint(Number.MAX_SAFE_INTEGER), 2 ** 52);
    for (const bad of [0, 1, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53]) {
      assert.throws(() => splitPoint(bad), Error, String(bad));
    }
  });

  test('rootFromLeafHashes equals the recursive MTH for 0..70 leaves', () => {
    assert.deepEqual(rootFromLeafHashes([]), EMPTY_ROOT);
    for (let n = 0; n <= MAX; n++) assert.deepEqual(rootFromLeafHashes(LEAVES.slice(0, n)), refMTH(LEAVES.slice(0, n)), `n=${n}`);
    assert.throws(() => rootFromLeafHashes([Buffer.alloc(31)]), Error);
    assert.throws(() => rootFromLeafHashes([LEAVES[0]!, Buffer.alloc(33)]), Error);
  });
});

describe('rangeHash', () => {
  test('[0, n) is the root for n = 0..70, in O(log n) reads', async () => {
    for (let n = 0; n <= MAX; n++) {
      const store = memoryStore(LEAVES.slice(0, n));
      assert.deepEqual(await rangeHash(0, n, store.read), rootFromLeafHashes(LEAVES.slice(0, n)), `n=${n}`);
      assert.ok(store.reads() <= Math.max(1, ceilLog2(n)), `n=${n} reads=${store.reads()}`);
    }
  });

  test('every subtree of every RFC tree up to 70 leaves', async () => {
    const store = memoryStore(LEAVES);
    let checked = 0;
    const walk = async (start: number, end: number): Promise<void> => {
      assert.deepEqual(await rangeHash(start, end, store.read), refMTH(LEAVES.slice(start, end)), `[${start}, ${end})`);
      checked++;
      if (end - start < 2) return;
      const k = refSplit(end - start);
      await walk(start, start + k);
      await walk(start + k, end);
    };
    for (let n = 1; n <= MAX; n++) await walk(0, n);
    assert.ok(checked > 4000);
  });

  test('any other range: the correct MTH or a plain Error, never a wrong hash', async () => {
    const store = memoryStore(LEAVES);
    let computed = 0;
    let refused = 0;
    for (let s = 0; s < MAX; s++) {
      for (let e = s + 1; e <= MAX; e++) {
        let got: Buffer | undefined;
        try {
          got = await rangeHash(s, e, store.read);
        } catch (err) {
          assert.match(String(err), /not a subtree/, `[${s}, ${e})`);
          refused++;
          continue;
        }
        assert.deepEqual(got, refMTH(LEAVES.slice(s, e)), `[${s}, ${e})`);
        computed++;
      }
    }
    assert.ok(computed > 0 && refused > 0);
    await assert.rejects(rangeHash(1, 4, store.read), /not a subtree/);
    await assert.rejects(rangeHash(3, 6, store.read), /not a subtree/);
  });

  test('bad arguments throw', async () => {
    const store = memoryStore(LEAVES);
    for (const [s, e] of [
      [5, 3],
      [-1, 2],
      [0, 2.5],
      [0, Number.NaN],
      [0, 2 ** 53],
    ] as const) {
      await assert.rejects(rangeHash(s, e, store.read), Error, `[${s}, ${e})`);
    }
    await assert.rejects(rangeHash(0, MAX + 1, store.read), /no node/);
    const short: NodeReader = async () => Buffer.alloc(31);
    await assert.rejects(rangeHash(0, 1, short), /malformed/);
  });
});

describe('inclusion proofs', () => {
  test('sizes 1..70, every index: equals PATH, verifies, O(log n) length and reads', async () => {
    let count = 0;
    for (let n = 1; n <= MAX; n++) {
      const leaves = LEAVES.slice(0, n);
      const store = memoryStore(leaves);
      const root = rootFromLeafHashes(leaves);
      for (let i = 0; i < n; i++) {
        store.reset();
        const path = await inclusionProof(i, n, store.read);
        assert.deepEqual(path, refPATH(i, leaves), `i=${i} n=${n}`);
        assert.ok(path.length <= ceilLog2(n), `length ${path.length} for n=${n}`);
        assert.ok(store.reads() <= 2 * ceilLog2(n), `reads ${store.reads()} for i=${i} n=${n}`);
        assert.equal(verifyInclusion(leaves[i]!, i, n, path, root), true, `i=${i} n=${n}`);
        // The same path is not valid for any other leaf of the tree.
        for (let j = 0; j < n; j++) if (j !== i) assert.equal(verifyInclusion(leaves[j]!, j, n, path, root), false);
        count++;
      }
    }
    assert.equal(count, (MAX * (MAX + 1)) / 2);
  });

  test('generator misuse throws', async () => {
    const store = memoryStore(LEAVES.slice(0, 8));
    for (const [i, n] of [
      [8, 8],
      [0, 0],
      [-1, 8],
      [1.5, 8],
      [0, Number.NaN],
      [0, 2 ** 53],
    ] as const) {
      await assert.rejects(inclusionProof(i, n, store.read), Error, `i=${i} n=${n}`);
    }
    // A reader that is asked for nodes beyond its tree fails loudly.
    await assert.rejects(inclusionProof(0, 9, store.read), /no node/);
  });

  test('verifier returns false, never throws, on malformed input', () => {
    const leaves = LEAVES.slice(0, 5);
    const root = rootFromLeafHashes(leaves);
    const path = refPATH(2, leaves);
    assert.equal(verifyInclusion(leaves[2]!, 2, 5, path, root), true);
    const junk = (v: unknown): Uint8Array => v as Uint8Array;
    const junkPath = (v: unknown): readonly Uint8Array[] => v as readonly Uint8Array[];
    const cases: [Uint8Array, number, number, readonly Uint8Array[], Uint8Array][] = [
      [leaves[2]!, 2, 5, path, root.subarray(0, 31)],
      [leaves[2]!.subarray(1), 2, 5, path, root],
      [leaves[2]!, 2, 5, [...path.slice(0, 1), Buffer.alloc(33), ...path.slice(2)], root],
      [leaves[2]!, 2, 5, junkPath(null), root],
      [leaves[2]!, 2, 5, junkPath('path'), root],
      [leaves[2]!, 2, 5, junkPath([...path.slice(0, 2), 'x'.repeat(32)]), root],
      [leaves[2]!, 2, 5, junkPath([undefined, ...path]), root],
      [junk(null), 2, 5, path, root],
      [junk('x'.repeat(32)), 2, 5, path, root],
      [leaves[2]!, 2, 5, path, junk(undefined)],
      [leaves[2]!, Number.NaN, 5, path, root],
      [leaves[2]!, 2, Number.POSITIVE_INFINITY, path, root],
      [leaves[2]!, -3, 5, path, root],
      [leaves[2]!, 2.5, 5, path, root],
      [leaves[2]!, 2, 5.5, path, root],
      [leaves[2]!, 2, 2 ** 53, path, root],
      [leaves[2]!, 2 ** 53 + 2, 2 ** 53 + 4, path, root],
      [leaves[2]!, 5, 5, path, root],
      [leaves[2]!, 0, 0, [], EMPTY_ROOT],
    ];
    for (const [k, c] of cases.entries()) assert.equal(verifyInclusion(...c), false, `case ${k}`);
    // A single-leaf tree: empty path, the root is the leaf hash.
    assert.equal(verifyInclusion(leaves[0]!, 0, 1, [], leaves[0]!), true);
    assert.equal(verifyInclusion(leaves[0]!, 0, 1, [leaves[1]!], nodeHash(leaves[0]!, leaves[1]!)), false);
    // Plain Uint8Array inputs (not Buffers) work.
    assert.equal(verifyInclusion(new Uint8Array(leaves[2]!), 2, 5, path.map((p) => new Uint8Array(p)), new Uint8Array(root)), true);
  });
});

describe('consistency proofs', () => {
  test('every 1 <= m <= n <= 70: equals PROOF, verifies, O(log n) length and reads', async () => {
    let count = 0;
    for (let n = 1; n <= MAX; n++) {
      const leaves = LEAVES.slice(0, n);
      const store = memoryStore(leaves);
      const newRoot = rootFromLeafHashes(leaves);
      for (let m = 1; m <= n; m++) {
        const oldRoot = rootFromLeafHashes(leaves.slice(0, m));
        store.reset();
        const proof = await consistencyProof(m, n, store.read);
        assert.deepEqual(proof, refPROOF(m, leaves), `m=${m} n=${n}`);
        assert.ok(proof.length <= ceilLog2(n) + 1, `length ${proof.length} for m=${m} n=${n}`);
        assert.ok(store.reads() <= 2 * ceilLog2(n) + 1, `reads ${store.reads()} for m=${m} n=${n}`);
        if (m === n) assert.equal(proof.length, 0);
        assert.equal(verifyConsistency(m, n, oldRoot, newRoot, proof), true, `m=${m} n=${n}`);
        count++;
      }
    }
    assert.equal(count, (MAX * (MAX + 1)) / 2);
  });

  test('a proof does not link unrelated trees', async () => {
    const other = Array.from({ length: 20 }, (_, i) => leafHash(Buffer.from(`other ${i}`)));
    const store = memoryStore(LEAVES.slice(0, 20));
    for (let m = 1; m < 20; m++) {
      const proof = await consistencyProof(m, 20, store.read);
      const forkRoot = rootFromLeafHashes(other.slice(0, m));
      assert.equal(verifyConsistency(m, 20, forkRoot, rootFromLeafHashes(LEAVES.slice(0, 20)), proof), false, `m=${m}`);
      // A history rewritten after m: old root matches, new root is of a forked tree.
      const forked = [...LEAVES.slice(0, m), ...other.slice(m, 20)];
      assert.equal(verifyConsistency(m, 20, rootFromLeafHashes(LEAVES.slice(0, m)), rootFromLeafHashes(forked), proof), false, `m=${m}`);
    }
  });

  test('generator misuse throws', async () => {
    const store = memoryStore(LEAVES.slice(0, 8));
    for (const [m, n] of [
      [0, 8],
      [9, 8],
      [-1, 8],
      [1.5, 8],
      [1, Number.NaN],
      [1, 2 ** 53],
    ] as const) {
      await assert.rejects(consistencyProof(m, n, store.read), Error, `m=${m} n=${n}`);
    }
  });

  test('edge cases: m == n, m == 0, m > n, malformed input', () => {
    const r = (n: number): Buffer => rootFromLeafHashes(LEAVES.slice(0, n));
    assert.equal(verifyConsistency(5, 5, r(5), r(5), []), true);
    assert.equal(verifyConsistency(5, 5, r(5), r(4), []), false);
    assert.equal(verifyConsistency(5, 5, r(5), r(5), [r(5)]), false);
    assert.equal(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []), true);
    assert.equal(verifyConsistency(0, 7, EMPTY_ROOT, r(7), []), true);
    assert.equal(verifyConsistency(0, 7, r(1), r(7), []), false);
    assert.equal(verifyConsistency(0, 7, EMPTY_ROOT, r(7), [r(7)]), false);
    assert.equal(verifyConsistency(7, 5, r(7), r(5), []), false);
    assert.equal(verifyConsistency(7, 5, r(7), r(5), refPROOF(5, LEAVES.slice(0, 7))), false);
    const proof = refPROOF(3, LEAVES.slice(0, 7));
    assert.equal(verifyConsistency(3, 7, r(3), r(7), proof), true);
    const junk = (v: unknown): Uint8Array => v as Uint8Array;
    const junkProof = (v: unknown): readonly Uint8Array[] => v as readonly Uint8Array[];
    const cases: [number, number, Uint8Array, Uint8Array, readonly Uint8Array[]][] = [
      [3, 7, r(3).subarray(1), r(7), proof],
      [3, 7, r(3), Buffer.concat([r(7), Buffer.alloc(1)]), proof],
      [3, 7, junk(null), r(7), proof],
      [3, 7, r(3), junk('r'), proof],
      [3, 7, r(3), r(7), junkProof(undefined)],
      [3, 7, r(3), r(7), junkProof({ length: 3 })],
      [3, 7, r(3), r(7), junkProof([...proof.slice(0, -1), 42])],
      [3, 7, r(3), r(7), proof.map((p) => p.subarray(0, 31))],
      [Number.NaN, 7, r(3), r(7), proof],
      [3, Number.POSITIVE_INFINITY, r(3), r(7), proof],
      [-3, 7, r(3), r(7), proof],
      [3.5, 7, r(3), r(7), proof],
      [3, 2 ** 53, r(3), r(7), proof],
      [2 ** 53, 2 ** 53, r(3), r(3), []],
    ];
    for (const [k, c] of cases.entries()) assert.equal(verifyConsistency(...c), false, `case ${k}`);
  });
});

describe('completedNodes', () => {
  test('appending 1..70 leaves one by one reproduces exactly the perfect node set', async () => {
    const stored = new Map<string, Buffer>();
    const read: NodeReader = async (level, index) => {
      const h = stored.get(key(level, index));
      if (h === undefined) throw new Error(`no node at level ${level} index ${index}`);
      return h;
    };
    for (let i = 0; i < MAX; i++) {
      const leaf = LEAVES[i]!;
      const created = await completedNodes(i, leaf, read);
      stored.set(key(0, i), leaf);
      for (const node of created) {
        assert.ok(node.level >= 1);
        assert.ok(!stored.has(key(node.level, node.index)), `node ${key(node.level, node.index)} created twice`);
        stored.set(key(node.level, node.index), node.hash);
      }
      // Levels ascend 1, 2, ... and there is one per trailing 1-bit of i.
      assert.deepEqual(
        created.map((c) => c.level),
        Array.from({ length: created.length }, (_, l) => l + 1),
      );
      let ones = 0;
      for (let x = i; x % 2 === 1; x = (x - 1) / 2) ones++;
      assert.equal(created.length, ones, `i=${i}`);
      const expected = perfectNodes(LEAVES.slice(0, i + 1));
      assert.deepEqual(new Map([...stored].sort()), new Map([...expected].sort()), `after ${i + 1} leaves`);
    }
  });

  test('misuse throws', async () => {
    const read: NodeReader = async () => LEAVES[0]!;
    await assert.rejects(completedNodes(-1, LEAVES[0]!, read), Error);
    await assert.rejects(completedNodes(1.5, LEAVES[0]!, read), Error);
    await assert.rejects(completedNodes(0, Buffer.alloc(31), read), Error);
    await assert.rejects(completedNodes(1, LEAVES[1]!, async () => Buffer.alloc(0)), /malformed/);
    assert.deepEqual(await completedNodes(0, LEAVES[0]!, read), []);
  });
});

describe('huge trees (beyond 32-bit arithmetic)', () => {
  // Every leaf is the same hash, so every perfect node of level L is the same hash h[L]
  // and the store can be simulated in O(1) per read for trees of up to 2^53 - 1 leaves.
  const h: Buffer[] = [leafHash(Buffer.from('same'))];
  for (let l = 1; l <= 53; l++) h.push(nodeHash(h[l - 1]!, h[l - 1]!));
  const rootOf = (n: number): Buffer => {
    // Independent of rangeHash: bottom-up over the binary expansion of n (the RFC tree of
    // n leaves is its perfect subtrees of sizes 2^b for the set bits b, largest first).
    const bits: number[] = [];
    for (let b = 0, x = n; x > 0; b++, x = Math.floor(x / 2)) if (x % 2 === 1) bits.push(b);
    let acc = h[bits[0]!]!;
    for (const b of bits.slice(1)) acc = nodeHash(h[b]!, acc);
    return acc;
  };
  let reads = 0;
  const sizeLimit = { n: 0 };
  const read: NodeReader = async (level, index) => {
    reads++;
    assert.ok(Number.isSafeInteger(index) && index >= 0 && (index + 1) * 2 ** level <= sizeLimit.n, `read ${level}:${index}`);
    return h[level]!;
  };
  const sizes = [2 ** 31 + 1, 2 ** 32, 2 ** 32 + 3, 2 ** 40 + 12345, 2 ** 52 + 7, Number.MAX_SAFE_INTEGER];

  test('rootOf agrees with the RFC recursion on small sizes', () => {
    for (let n = 1; n <= 40; n++) assert.deepEqual(rootOf(n), refMTH(Array.from({ length: n }, () => h[0]!)), `n=${n}`);
  });

  test('inclusion and consistency at sizes up to 2^53 - 1', async () => {
    for (const n of sizes) {
      sizeLimit.n = n;
      reads = 0;
      assert.deepEqual(await rangeHash(0, n, read), rootOf(n));
      for (const i of [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, Math.floor(n / 2), n - 2, n - 1]) {
        if (i >= n) continue;
        reads = 0;
        const path = await inclusionProof(i, n, read);
        assert.ok(path.length <= 53 && reads <= 2 * 53, `n=${n} i=${i}: ${path.length} components, ${reads} reads`);
        assert.equal(verifyInclusion(h[0]!, i, n, path, rootOf(n)), true, `n=${n} i=${i}`);
        assert.equal(verifyInclusion(h[1]!, i, n, path, rootOf(n)), false, `n=${n} i=${i} wrong leaf`);
      }
      for (const m of [1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + 1, Math.floor(n / 3), n - 1, n]) {
        if (m > n) continue;
        reads = 0;
        const proof = await consistencyProof(m, n, read);
        assert.ok(proof.length <= 54 && reads <= 2 * 54, `m=${m} n=${n}: ${proof.length} components, ${reads} reads`);
        assert.equal(verifyConsistency(m, n, rootOf(m), rootOf(n), proof), true, `m=${m} n=${n}`);
        if (m < n) assert.equal(verifyConsistency(m, n, rootOf(n), rootOf(m), proof), false, `swapped m=${m} n=${n}`);
      }
    }
  });

  test('completedNodes at a huge index', async () => {
    sizeLimit.n = 2 ** 52;
    const created = await completedNodes(2 ** 52 - 1, h[0]!, read);
    assert.equal(created.length, 52);
    assert.deepEqual(created.at(-1), { level: 52, index: 0, hash: h[52] });
  });
});

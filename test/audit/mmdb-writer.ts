// A small MaxMind DB writer (format 2.0, IPv6 tree, 32-bit records) for tests: enough to
// build a GeoIP file with a few networks and read it back through the `maxmind` package.
// Spec: https://maxmind.github.io/MaxMind-DB/
import { isIP } from 'node:net';
import { ipv6Bytes } from '../../src/audit/index.ts';

type Value = string | number | boolean | Value[] | { [k: string]: Value };

type Rec = { kind: 'empty' } | { kind: 'node'; index: number } | { kind: 'data'; value: Value };

function ctrl(type: number, size: number): number[] {
  const head = (t: number, s: number) => (type <= 7 ? [(t << 5) | s] : [s, type - 7]);
  if (size < 29) return head(type, size);
  if (size < 29 + 256) return [...head(type, 29), size - 29];
  throw new Error('value too large for this writer');
}

function uint(type: number, v: number | bigint): number[] {
  const bytes: number[] = [];
  let n = BigInt(v);
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return [...ctrl(type, bytes.length), ...bytes];
}

export function encode(v: Value): number[] {
  if (typeof v === 'string') {
    const b = [...Buffer.from(v, 'utf8')];
    return [...ctrl(2, b.length), ...b];
  }
  if (typeof v === 'boolean') return ctrl(14, v ? 1 : 0);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && v >= 0 && v < 2 ** 32) return uint(6, v);
    const b = Buffer.alloc(8);
    b.writeDoubleBE(v);
    return [...ctrl(3, 8), ...b];
  }
  if (Array.isArray(v)) return [...ctrl(11, v.length), ...v.flatMap(encode)];
  const entries = Object.entries(v);
  return [...ctrl(7, entries.length), ...entries.flatMap(([k, x]) => [...encode(k), ...encode(x)])];
}

function bitsOf(cidr: string): { bits: number[]; prefix: number } {
  const [addr = '', p = ''] = cidr.split('/');
  const v4 = isIP(addr) === 4;
  const bytes = v4 ? [...new Uint8Array(12), ...addr.split('.').map(Number)] : [...(ipv6Bytes(addr) ?? [])];
  const bits = bytes.flatMap((b) => [7, 6, 5, 4, 3, 2, 1, 0].map((i) => (b >> i) & 1));
  return { bits, prefix: Number(p) + (v4 ? 96 : 0) };
}

/** Builds an .mmdb holding `data` for each network (networks must not overlap). */
export function buildMmdb(networks: readonly { cidr: string; data: Value }[], databaseType = 'GeoLite2-City'): Buffer {
  const nodes: [Rec, Rec][] = [[{ kind: 'empty' }, { kind: 'empty' }]];
  for (const n of networks) {
    const { bits, prefix } = bitsOf(n.cidr);
    let node = 0;
    for (let depth = 0; depth < prefix - 1; depth++) {
      const bit = bits[depth] ?? 0;
      const pair = nodes[node];
      if (!pair) throw new Error('broken tree');
      const rec = pair[bit];
      if (rec?.kind === 'node') {
        node = rec.index;
        continue;
      }
      nodes.push([{ kind: 'empty' }, { kind: 'empty' }]);
      pair[bit] = { kind: 'node', index: nodes.length - 1 };
      node = nodes.length - 1;
    }
    const pair = nodes[node];
    if (!pair) throw new Error('broken tree');
    pair[bits[prefix - 1] ?? 0] = { kind: 'data', value: n.data };
  }
  const nodeCount = nodes.length;
  const data: number[] = [];
  const offsets = new Map<Value, number>();
  const value = (r: Rec): number => {
    if (r.kind === 'empty') return nodeCount;
    if (r.kind === 'node') return r.index;
    let off = offsets.get(r.value);
    if (off === undefined) {
      off = data.length;
      offsets.set(r.value, off);
      data.push(...encode(r.value));
    }
    return nodeCount + 16 + off;
  };
  const tree = Buffer.alloc(nodeCount * 8);
  nodes.forEach(([l, r], i) => {
    tree.writeUInt32BE(value(l), i * 8);
    tree.writeUInt32BE(value(r), i * 8 + 4);
  });
  const metadata = [
    ...ctrl(7, 9),
    ...encode('node_count'),
    ...uint(6, nodeCount),
    ...encode('record_size'),
    ...uint(5, 32),
    ...encode('ip_version'),
    ...uint(5, 6),
    ...encode('database_type'),
    ...encode(databaseType),
    ...encode('languages'),
    ...encode(['en']),
    ...encode('binary_format_major_version'),
    ...uint(5, 2),
    ...encode('binary_format_minor_version'),
    ...uint(5, 0),
    ...encode('build_epoch'),
    ...uint(9, 1_767_225_600n),
    ...encode('description'),
    ...encode({ en: 'modelkeep test database' }),
  ];
  return Buffer.concat([tree, Buffer.alloc(16), Buffer.from(data), Buffer.from('abcdef4d61784d696e642e636f6d', 'hex'), Buffer.from(metadata)]);
}

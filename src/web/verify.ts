// Checking the audit log from the browser, trusting nothing but the public key: the signed
// tree head (Ed25519, WebCrypto), an event's inclusion proof and the consistency proof
// between two heads (RFC 9162 §2.1.3.2 and §2.1.4.2), with leaves recomputed from the
// events the API returns (the server's own leaf format, src/audit/leaf-format.ts, as RFC 8785 JSON).
import canonicalize from 'canonicalize';
import { leafFields } from '../audit/leaf-format.ts';
import type { AuditEvent, TreeHead } from './api.ts';

const HEAD_DOMAIN = 'modelkeep-tree-head/1\n';

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
function unhex(s: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(s)) throw new Error('not a hex string');
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(s.slice(i * 2, i * 2 + 2), 16);
  return out;
}
async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}
const node = (l: Uint8Array, r: Uint8Array) => sha256(new Uint8Array([1]), l, r);
const odd = (n: number) => n % 2 === 1;
const half = (n: number) => Math.floor(n / 2);

export function cryptoAvailable(): boolean {
  return typeof crypto !== 'undefined' && crypto.subtle !== undefined;
}

/** SHA-256 of a file, hex (for the upload's X-Content-SHA256). */
export async function fileSha256(file: Blob): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest('SHA-256', await file.arrayBuffer())));
}

export async function eventLeafHash(e: AuditEvent): Promise<string> {
  const text = canonicalize(leafFields(e));
  if (text === undefined) throw new Error('event cannot be canonicalized');
  return hex(await sha256(new Uint8Array([0]), new TextEncoder().encode(text)));
}

function pemToDer(pem: string): Uint8Array<ArrayBuffer> {
  const b64 = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

export async function verifyHeadSignature(head: TreeHead, publicKeyPem: string, keyId: string): Promise<boolean> {
  if (head.keyId !== keyId || !/^[0-9a-f]{64}$/.test(head.rootHash)) return false;
  const key = await crypto.subtle.importKey('spki', pemToDer(publicKeyPem), { name: 'Ed25519' }, false, ['verify']);
  const body = canonicalize({ keyId: head.keyId, rootHash: head.rootHash, timestamp: head.timestamp, treeSize: head.treeSize });
  const sig = Uint8Array.from(atob(head.signature), (c) => c.charCodeAt(0));
  return crypto.subtle.verify({ name: 'Ed25519' }, key, sig, new TextEncoder().encode(HEAD_DOMAIN + body));
}

/** RFC 9162 §2.1.3.2. */
export async function verifyInclusion(leafHex: string, leafIndex: number, treeSize: number, path: string[], rootHex: string): Promise<boolean> {
  if (leafIndex >= treeSize) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = unhex(leafHex);
  for (const p of path.map(unhex)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      r = await node(p, r);
      if (!odd(fn)) {
        while (!(odd(fn) || fn === 0)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = await node(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && hex(r) === rootHex;
}

/** RFC 9162 §2.1.4.2. */
export async function verifyConsistency(first: number, second: number, firstRoot: string, secondRoot: string, proofHex: string[]): Promise<boolean> {
  if (first > second || first === 0) return false;
  if (first === second) return proofHex.length === 0 && firstRoot === secondRoot;
  let proof = proofHex.map(unhex);
  // An exact power of two: the first tree is a complete subtree, its root starts the proof.
  if (Number.isInteger(Math.log2(first))) proof = [unhex(firstRoot), ...proof];
  if (proof.length === 0) return false;
  let fn = first - 1;
  let sn = second - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = proof[0]!;
  let sr = proof[0]!;
  for (const c of proof.slice(1)) {
    if (sn === 0) return false;
    if (odd(fn) || fn === sn) {
      fr = await node(c, fr);
      sr = await node(c, sr);
      if (!odd(fn)) {
        while (!(odd(fn) || fn === 0)) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = await node(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return hex(fr) === firstRoot && hex(sr) === secondRoot && sn === 0;
}

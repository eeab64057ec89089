// Signed tree heads (STH): the size and root of the audit Merkle tree at a time, signed
// with the audit key. Anyone holding the public key can check a head and, with
// consistency proofs, that a later head extends an earlier one.
import { type KeyObject, sign, verify } from 'node:crypto';
import canonicalize from 'canonicalize';

export interface TreeHead {
  treeSize: number;
  /** Hex SHA-256. */
  rootHash: string;
  /** ISO-8601 UTC. */
  timestamp: string;
  keyId: string;
  /** Base64 Ed25519 signature over treeHeadMessage(). */
  signature: string;
}

const DOMAIN = 'modelkeep-tree-head/1\n';

/** The exact bytes signed: a domain-separation prefix and the canonical JSON of the head. */
export function treeHeadMessage(h: Omit<TreeHead, 'signature'>): Buffer {
  const body = canonicalize({ keyId: h.keyId, rootHash: h.rootHash, timestamp: h.timestamp, treeSize: h.treeSize });
  if (body === undefined) throw new Error('tree head cannot be canonicalized');
  return Buffer.from(DOMAIN + body, 'utf8');
}

export function signTreeHead(h: Omit<TreeHead, 'signature'>, privateKey: KeyObject): TreeHead {
  return { ...h, signature: sign(null, treeHeadMessage(h), privateKey).toString('base64') };
}

export function verifyTreeHead(h: TreeHead, publicKey: KeyObject, keyId: string): boolean {
  if (h.keyId !== keyId) return false;
  if (!Number.isSafeInteger(h.treeSize) || h.treeSize < 0 || !/^[0-9a-f]{64}$/.test(h.rootHash)) return false;
  try {
    return verify(null, treeHeadMessage(h), publicKey, Buffer.from(h.signature, 'base64'));
  } catch {
    return false;
  }
}

// The tree-head signing key: Ed25519, its own key (never the token-signing key), created at
// first start in the data folder with 0600 permissions, or supplied by the operator.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Hex SHA-256 of the DER SubjectPublicKeyInfo. */
  keyId: string;
  publicKeyPem: string;
}

export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function publicKeyInfo(publicKey: KeyObject): { keyId: string; publicKeyPem: string } {
  return { keyId: keyIdOf(publicKey), publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

export const DEFAULT_KEY_FILE = 'audit-signing-key.pem';

/** Loads the operator's key file, or the data folder's, creating the latter on first start. */
export function loadSigningKey(opts: { dataDir: string; keyFile?: string | undefined }): SigningKey {
  const file = opts.keyFile ?? join(opts.dataDir, DEFAULT_KEY_FILE);
  if (!existsSync(file)) {
    if (opts.keyFile) throw new Error(`audit signing key file ${opts.keyFile} does not exist`);
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('ed25519');
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    // Written whole to a temp file (0600 from creation), fsynced, renamed: never half a key.
    const tmp = `${file}.tmp-${process.pid}`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, pem);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
  }
  const privateKey = createPrivateKey(readFileSync(file));
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('the audit signing key must be an Ed25519 key');
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, ...publicKeyInfo(publicKey) };
}

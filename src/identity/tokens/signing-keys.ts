// Ed25519 keys that sign access tokens. They live in the database so that every server
// process signs with, and accepts, the same keys. A key signs new tokens until its
// retire_at; it stays published and accepted until not_after, when every token it signed
// has expired (rotation with overlap). The algorithm is pinned per key here: a token's
// own header never chooses how it is verified (MC-JWT-02).
import { performance } from 'node:perf_hooks';
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

type CryptoKey = import('node:crypto').webcrypto.CryptoKey;

import type { Kysely } from 'kysely';
import type { Clock } from '../../core/index.ts';
import { newId } from '../../core/index.ts';
import type { Database, SigningKeysTable } from '../../storage/index.ts';

export const TOKEN_ALG = 'EdDSA';
/** An unknown kid re-reads the table at most this often (another process may have rotated). */
const RELOAD_EVERY_MS = 1000;

export interface KeyTiming {
  rotationHours: number;
  /** Longest lifetime of a token signed by a key, plus the tolerated clock skew. */
  overlapMs: number;
}

interface LoadedKey {
  row: SigningKeysTable;
  retireAt: number;
  notAfter: number;
  createdAt: number;
  publicKey: CryptoKey | null;
  privateKey: CryptoKey | null;
}

export class SigningKeys {
  readonly #db: Kysely<Database>;
  readonly #clock: Clock;
  readonly #timing: KeyTiming;
  #keys = new Map<string, LoadedKey>();
  #lastReload = Number.NEGATIVE_INFINITY;
  #creating: Promise<LoadedKey> | null = null;

  constructor(db: Kysely<Database>, clock: Clock, timing: KeyTiming) {
    this.#db = db;
    this.#clock = clock;
    this.#timing = timing;
  }

  async #reload(): Promise<void> {
    this.#lastReload = performance.now();
    const rows = await this.#db.selectFrom('signing_keys').selectAll().execute();
    const next = new Map<string, LoadedKey>();
    for (const row of rows) {
      if (row.alg !== TOKEN_ALG) continue;
      const known = this.#keys.get(row.kid);
      next.set(
        row.kid,
        known ?? { row, retireAt: Date.parse(row.retire_at), notAfter: Date.parse(row.not_after), createdAt: Date.parse(row.created_at), publicKey: null, privateKey: null },
      );
    }
    this.#keys = next;
  }

  #newest(now: number): LoadedKey | null {
    let best: LoadedKey | null = null;
    for (const k of this.#keys.values()) {
      if (k.createdAt <= now && now < k.retireAt && (!best || k.createdAt > best.createdAt)) best = k;
    }
    return best;
  }

  /** The key new tokens are signed with; creates (rotates to) a new one when the current one retired. */
  async current(): Promise<{ kid: string; key: CryptoKey }> {
    const now = this.#clock.now().getTime();
    let k = this.#newest(now);
    if (!k) {
      await this.#reload();
      k = this.#newest(now);
    }
    if (!k) {
      this.#creating ??= this.#create().finally(() => {
        this.#creating = null;
      });
      k = await this.#creating;
    }
    k.privateKey ??= (await importJWK(JSON.parse(k.row.private_jwk) as JWK, TOKEN_ALG)) as CryptoKey;
    return { kid: k.row.kid, key: k.privateKey };
  }

  async #create(): Promise<LoadedKey> {
    const now = this.#clock.now();
    const { publicKey, privateKey } = await generateKeyPair(TOKEN_ALG, { crv: 'Ed25519', extractable: true });
    const kid = newId('key');
    const retireAt = new Date(now.getTime() + this.#timing.rotationHours * 3600_000);
    const notAfter = new Date(retireAt.getTime() + this.#timing.overlapMs);
    const row: SigningKeysTable = {
      kid,
      alg: TOKEN_ALG,
      public_jwk: JSON.stringify(await exportJWK(publicKey)),
      private_jwk: JSON.stringify(await exportJWK(privateKey)),
      created_at: now.toISOString(),
      retire_at: retireAt.toISOString(),
      not_after: notAfter.toISOString(),
    };
    await this.#db.insertInto('signing_keys').values(row).execute();
    // Keys whose every token expired long ago are of no use to anyone.
    await this.#db
      .deleteFrom('signing_keys')
      .where('not_after', '<', new Date(now.getTime() - 24 * 3600_000).toISOString())
      .execute();
    const loaded: LoadedKey = { row, retireAt: retireAt.getTime(), notAfter: notAfter.getTime(), createdAt: now.getTime(), publicKey, privateKey };
    this.#keys.set(kid, loaded);
    return loaded;
  }

  /** The public key for `kid` if it is one of ours and still accepted; null otherwise. */
  async verificationKey(kid: string): Promise<CryptoKey | null> {
    const now = this.#clock.now().getTime();
    let k = this.#keys.get(kid);
    if (!k && performance.now() - this.#lastReload >= RELOAD_EVERY_MS) {
      await this.#reload();
      k = this.#keys.get(kid);
    }
    if (!k || now >= k.notAfter || k.row.alg !== TOKEN_ALG) return null;
    k.publicKey ??= (await importJWK(JSON.parse(k.row.public_jwk) as JWK, TOKEN_ALG)) as CryptoKey;
    return k.publicKey;
  }

  /** The JWK set: public parts only, of every key still accepted. */
  async jwks(): Promise<{ keys: JWK[] }> {
    await this.#reload();
    const now = this.#clock.now().getTime();
    const keys: JWK[] = [];
    for (const k of [...this.#keys.values()].sort((a, b) => b.createdAt - a.createdAt)) {
      if (now >= k.notAfter) continue;
      const { kty, crv, x } = JSON.parse(k.row.public_jwk) as JWK;
      keys.push({ kty, crv, x, kid: k.row.kid, alg: TOKEN_ALG, use: 'sig' } as JWK);
    }
    return { keys };
  }
}

// JWT access tokens (RFC 9068 profile, EdDSA). Issuing is one signature; verifying is
// strict and fail-closed: exact compact serialisation (canonical base64url, the JSON this
// server writes — so no duplicate keys, no padding), the key chosen by kid among our own
// keys with the algorithm pinned server-side, iss/aud/exp/nbf checked with a bounded skew,
// and exp required as a number. Verified tokens are cached (bounded, keyed by the SHA-256 of
// the token, dropped at exp) so that a repeated token costs a hash and a map lookup; the
// revocation check is the caller's and runs on every request.
import { createHash } from 'node:crypto';
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import type { Clock } from '../../core/index.ts';
import { newId } from '../../core/index.ts';
import { type SigningKeys, TOKEN_ALG } from './signing-keys.ts';

export const ACCESS_TOKEN_TYPE = 'at+jwt';

export interface AccessClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  iat: number;
  jti: string;
  /** 'user' or 'service'. */
  mk_kind: 'user' | 'service';
  client_id: string;
  scope: string;
  amr: string[];
  auth_time: number;
  /** Session (for a device login: the token family) and family id; absent for service tokens. */
  sid?: string;
  fid?: string;
  /** When MFA last succeeded before the grant (epoch seconds), if it did. */
  mfa_time?: number;
}

export type NewClaims = Omit<AccessClaims, 'iss' | 'aud' | 'exp' | 'iat' | 'jti'>;

const SEGMENT = /^[A-Za-z0-9_-]+$/;

function canonicalSegment(seg: string): Buffer | null {
  if (!SEGMENT.test(seg)) return null;
  const bytes = Buffer.from(seg, 'base64url');
  // Non-canonical encodings (stray trailing bits) decode to the same bytes: refuse them.
  return bytes.toString('base64url') === seg ? bytes : null;
}

/** The JSON of a segment, only if it is exactly how JSON.stringify writes it (no duplicates, no whitespace). */
function strictJson(bytes: Buffer): Record<string, unknown> | null {
  const text = bytes.toString('utf8');
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
    return JSON.stringify(v) === text ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

export interface VerifyOptions {
  issuer: () => string;
  clockSkewSeconds: number;
  maxEntries: number;
}

export class AccessTokens {
  readonly #keys: SigningKeys;
  readonly #clock: Clock;
  readonly #opts: VerifyOptions;
  readonly #lifetimeSeconds: number;
  readonly #cache = new Map<string, { claims: AccessClaims; expMs: number }>();

  constructor(keys: SigningKeys, clock: Clock, lifetimeSeconds: number, opts: VerifyOptions) {
    this.#keys = keys;
    this.#clock = clock;
    this.#lifetimeSeconds = lifetimeSeconds;
    this.#opts = opts;
  }

  get lifetimeSeconds(): number {
    return this.#lifetimeSeconds;
  }

  async issue(claims: NewClaims): Promise<{ token: string; claims: AccessClaims }> {
    const { kid, key } = await this.#keys.current();
    const iat = Math.floor(this.#clock.now().getTime() / 1000);
    const iss = this.#opts.issuer();
    const full: AccessClaims = { ...claims, iss, aud: iss, iat, exp: iat + this.#lifetimeSeconds, jti: newId('at') };
    const token = await new SignJWT({ ...full }).setProtectedHeader({ alg: TOKEN_ALG, kid, typ: ACCESS_TOKEN_TYPE }).sign(key);
    return { token, claims: full };
  }

  /** The verified claims, or null for any token that is not exactly one of ours and currently valid. */
  async verify(token: string): Promise<AccessClaims | null> {
    if (token.length > 4096) return null;
    const nowMs = this.#clock.now().getTime();
    const cacheKey = createHash('sha256').update(token).digest('base64url');
    const hit = this.#cache.get(cacheKey);
    if (hit) {
      if (nowMs < hit.expMs) return hit.claims;
      this.#cache.delete(cacheKey);
    }
    const claims = await this.#verifyFully(token, nowMs);
    if (!claims) return null;
    const expMs = claims.exp * 1000;
    if (this.#opts.maxEntries > 0 && nowMs < expMs) {
      if (this.#cache.size >= this.#opts.maxEntries) this.#evict(nowMs);
      this.#cache.set(cacheKey, { claims, expMs });
    }
    return claims;
  }

  #evict(nowMs: number): void {
    for (const [k, v] of this.#cache) if (nowMs >= v.expMs) this.#cache.delete(k);
    // Still full: drop the oldest insertions (a Map iterates in insertion order).
    for (const k of this.#cache.keys()) {
      if (this.#cache.size < this.#opts.maxEntries) break;
      this.#cache.delete(k);
    }
  }

  async #verifyFully(token: string, nowMs: number): Promise<AccessClaims | null> {
    const parts = token.split('.');
    if (parts.length !== 3) return null;
    const [h, p, s] = parts as [string, string, string];
    const hb = canonicalSegment(h);
    const pb = canonicalSegment(p);
    const sb = canonicalSegment(s);
    if (!hb || !pb || !sb || sb.length !== 64) return null;
    const header = strictJson(hb);
    const payload = strictJson(pb);
    if (!header || !payload) return null;
    // Exactly the header this server writes; crit, jku, jwk, x5u… are never honoured.
    const headerKeys = Object.keys(header).sort().join(',');
    if (headerKeys !== 'alg,kid,typ' || header.alg !== TOKEN_ALG || header.typ !== ACCESS_TOKEN_TYPE || typeof header.kid !== 'string') return null;
    const key = await this.#keys.verificationKey(header.kid);
    if (!key) return null;
    if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp)) return null;
    if (typeof payload.iat !== 'number' || payload.iat * 1000 > nowMs + this.#opts.clockSkewSeconds * 1000) return null;
    try {
      const iss = this.#opts.issuer();
      const { payload: verified } = await jwtVerify(token, key, {
        algorithms: [TOKEN_ALG],
        issuer: iss,
        audience: iss,
        typ: ACCESS_TOKEN_TYPE,
        clockTolerance: this.#opts.clockSkewSeconds,
        currentDate: new Date(nowMs),
        requiredClaims: ['exp', 'iat', 'sub', 'jti'],
      });
      return checkShape(verified);
    } catch (err) {
      if (err instanceof joseErrors.JOSEError) return null;
      throw err;
    }
  }
}

function checkShape(v: Record<string, unknown>): AccessClaims | null {
  const strs = ['iss', 'sub', 'aud', 'jti', 'client_id', 'scope'] as const;
  if (!strs.every((k) => typeof v[k] === 'string')) return null;
  if (v.mk_kind !== 'user' && v.mk_kind !== 'service') return null;
  if (typeof v.auth_time !== 'number' || !Array.isArray(v.amr) || !v.amr.every((a) => typeof a === 'string')) return null;
  if (v.mk_kind === 'user' && (typeof v.fid !== 'string' || typeof v.sid !== 'string')) return null;
  if (v.mfa_time !== undefined && typeof v.mfa_time !== 'number') return null;
  return v as unknown as AccessClaims;
}

// A software WebAuthn authenticator plus the browser's part of a ceremony, for tests. It
// builds REAL objects (W3C WebAuthn L2 §6.1 authenticator data, §6.5 attestation object in
// the 'none' format, §5.8.1 client data) and signs assertions with node:crypto, so the
// server's real @simplewebauthn verification path checks them. Knobs let a test tamper
// with exactly one thing (origin, RP ID hash, flags, counter, algorithm, credential id).
import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from 'node:crypto';

// ---- a tiny CBOR encoder (RFC 8949), only what attestation objects and COSE keys need

type Cbor = number | string | Uint8Array | Cbor[] | Map<number | string, Cbor>;

function head(major: number, n: number): Uint8Array {
  if (n < 24) return Uint8Array.of((major << 5) | n);
  if (n < 0x100) return Uint8Array.of((major << 5) | 24, n);
  if (n < 0x10000) return Uint8Array.of((major << 5) | 25, n >> 8, n & 0xff);
  const b = new Uint8Array(5);
  b[0] = (major << 5) | 26;
  new DataView(b.buffer).setUint32(1, n);
  return b;
}

export function cbor(v: Cbor): Uint8Array {
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error('cbor: integers only');
    return v >= 0 ? head(0, v) : head(1, -1 - v);
  }
  if (typeof v === 'string') {
    const b = new TextEncoder().encode(v);
    return concat(head(3, b.length), b);
  }
  if (v instanceof Uint8Array) return concat(head(2, v.length), v);
  if (Array.isArray(v)) return concat(head(4, v.length), ...v.map(cbor));
  const parts: Uint8Array[] = [head(5, v.size)];
  for (const [k, x] of v) parts.push(cbor(k), cbor(x));
  return concat(...parts);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const sha256 = (b: Uint8Array | string) => new Uint8Array(createHash('sha256').update(b).digest());
const b64u = (b: Uint8Array) => Buffer.from(b).toString('base64url');
const fromB64u = (s: string) => new Uint8Array(Buffer.from(s, 'base64url'));

// ---- authenticator

export const FLAG_UP = 0x01;
export const FLAG_UV = 0x04;
export const FLAG_AT = 0x40;

export type SoftAlg = 'ES256' | 'ES384';

export interface SoftCredential {
  id: Uint8Array;
  idB64u: string;
  privateKey: KeyObject;
  alg: SoftAlg;
  /** Signature counter; incremented before every assertion. */
  counter: number;
  /** The user handle (user.id) the relying party gave at registration, base64url. */
  userHandle: string;
}

export interface CreationOptions {
  challenge: string;
  rp: { id?: string; name: string };
  user: { id: string; name: string };
}

export interface RequestOptions {
  challenge: string;
  rpId?: string;
}

export interface Tamper {
  /** The origin the "browser" puts in clientDataJSON. */
  origin?: string;
  /** The RP ID whose hash goes into authenticatorData. */
  rpId?: string;
  /** Exact flags byte (default UP|UV, plus AT at registration). */
  flags?: number;
  /** Counter to report (default: the credential's next value). */
  counter?: number;
  /** A different challenge (base64url) in clientDataJSON. */
  challenge?: string;
}

const AAGUID = new Uint8Array(16); // all zero: 'none' attestation makes no model claim

export class SoftAuthenticator {
  readonly origin: string;
  readonly rpId: string;
  constructor(opts: { origin: string; rpId: string }) {
    this.origin = opts.origin;
    this.rpId = opts.rpId;
  }

  /** navigator.credentials.create(): a new key pair and the RegistrationResponseJSON. */
  create(options: CreationOptions, t: Tamper & { alg?: SoftAlg; credentialId?: Uint8Array } = {}): { response: Record<string, unknown>; credential: SoftCredential } {
    const alg = t.alg ?? 'ES256';
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: alg === 'ES256' ? 'P-256' : 'P-384' });
    const jwk = publicKey.export({ format: 'jwk' });
    const coseKey = new Map<number, Cbor>([
      [1, 2], // kty: EC2
      [3, alg === 'ES256' ? -7 : -35], // alg
      [-1, alg === 'ES256' ? 1 : 2], // crv: P-256 / P-384
      [-2, fromB64u(jwk.x ?? '')],
      [-3, fromB64u(jwk.y ?? '')],
    ]);
    const id = t.credentialId ?? new Uint8Array(randomBytes(32));
    const counter = t.counter ?? 0;
    const idLen = Uint8Array.of(id.length >> 8, id.length & 0xff);
    const authData = concat(
      sha256(t.rpId ?? options.rp.id ?? this.rpId),
      Uint8Array.of(t.flags ?? FLAG_UP | FLAG_UV | FLAG_AT),
      u32(counter),
      AAGUID,
      idLen,
      id,
      cbor(coseKey),
    );
    const attestationObject = cbor(
      new Map<string, Cbor>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', authData],
      ]),
    );
    const clientDataJSON = this.#clientData('webauthn.create', t.challenge ?? options.challenge, t.origin);
    const credential: SoftCredential = { id, idB64u: b64u(id), privateKey, alg, counter, userHandle: options.user.id };
    return {
      credential,
      response: {
        id: b64u(id),
        rawId: b64u(id),
        type: 'public-key',
        response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal', 'hybrid'] },
        authenticatorAttachment: 'platform',
        clientExtensionResults: {},
      },
    };
  }

  /** navigator.credentials.get(): an AuthenticationResponseJSON signed by `credential`. */
  get(options: RequestOptions, credential: SoftCredential, t: Tamper & { userHandle?: string | null } = {}): Record<string, unknown> {
    if (t.counter === undefined) credential.counter += 1;
    const counter = t.counter ?? credential.counter;
    const authData = concat(sha256(t.rpId ?? options.rpId ?? this.rpId), Uint8Array.of(t.flags ?? FLAG_UP | FLAG_UV), u32(counter));
    const clientDataJSON = this.#clientData('webauthn.get', t.challenge ?? options.challenge, t.origin);
    // §6.3.3 step 11: the signature covers authenticatorData || SHA-256(clientDataJSON); ECDSA in DER.
    const signature = sign(credential.alg === 'ES256' ? 'sha256' : 'sha384', concat(authData, sha256(clientDataJSON)), { key: credential.privateKey, dsaEncoding: 'der' });
    const userHandle = t.userHandle === undefined ? credential.userHandle : t.userHandle;
    return {
      id: credential.idB64u,
      rawId: credential.idB64u,
      type: 'public-key',
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(new Uint8Array(signature)),
        ...(userHandle === null ? {} : { userHandle }),
      },
      authenticatorAttachment: 'platform',
      clientExtensionResults: {},
    };
  }

  #clientData(type: string, challenge: string, origin?: string): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ type, challenge, origin: origin ?? this.origin, crossOrigin: false }));
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}

// ---- ceremony drivers over HTTP, as the console would run them

interface HttpClient {
  base: string;
  cookie: string | null;
  csrf: string | null;
  post(path: string, body?: unknown): Promise<Response>;
}

/** An authenticator for a test server: the console opened as http://localhost:PORT (the default RP). */
export function authenticatorFor(serverUrl: string): SoftAuthenticator {
  return new SoftAuthenticator({ origin: `http://localhost:${new URL(serverUrl).port}`, rpId: 'localhost' });
}

/** Registration options from the server (throws unless 200). */
export async function registrationOptions(client: HttpClient): Promise<CreationOptions> {
  const r = await client.post('/v1/me/passkeys/options', {});
  if (r.status !== 200) throw new Error(`registration options: ${r.status} ${await r.text()}`);
  return (await r.json()) as CreationOptions;
}

/** Registers a new passkey for the signed-in client; returns the server's answer and the credential. */
export async function enrollPasskey(
  client: HttpClient,
  auth: SoftAuthenticator,
  name = 'laptop',
  t: Tamper & { alg?: SoftAlg; credentialId?: Uint8Array } = {},
): Promise<{ res: Response; credential: SoftCredential; response: Record<string, unknown> }> {
  const options = await registrationOptions(client);
  const { response, credential } = auth.create(options, t);
  const res = await client.post('/v1/me/passkeys', { name, response });
  return { res, credential, response };
}

/** Login options (optionally for a username), without a session. */
export async function loginOptions(base: string, username?: string): Promise<RequestOptions & { allowCredentials?: { id: string }[]; userVerification?: string }> {
  const r = await fetch(`${base}/v1/auth/passkey/options`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(username === undefined ? {} : { username }),
  });
  if (r.status !== 200) throw new Error(`login options: ${r.status} ${await r.text()}`);
  return (await r.json()) as RequestOptions;
}

export async function postLogin(base: string, response: unknown): Promise<Response> {
  return fetch(`${base}/v1/auth/passkey`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ response }) });
}

/** Sets a client's cookie and CSRF token from a successful login or step-up answer. */
export async function adopt(client: HttpClient, res: Response): Promise<void> {
  client.cookie = (res.headers.get('set-cookie') ?? '').split(';')[0] ?? null;
  client.csrf = ((await res.clone().json()) as { csrfToken: string }).csrfToken;
}

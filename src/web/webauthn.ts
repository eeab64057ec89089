// Passkey ceremonies in the browser: the server sends WebAuthn options as JSON, the
// browser parses them (PublicKeyCredential.parse*OptionsFromJSON), the authenticator
// answers, and the credential's toJSON() goes back. No key material passes through here.

interface JsonCapable {
  parseCreationOptionsFromJSON(o: unknown): PublicKeyCredentialCreationOptions;
  parseRequestOptionsFromJSON(o: unknown): PublicKeyCredentialRequestOptions;
}
const PKC = (): (typeof PublicKeyCredential & JsonCapable) | null => {
  const p = (globalThis as { PublicKeyCredential?: typeof PublicKeyCredential & Partial<JsonCapable> }).PublicKeyCredential;
  return p && typeof p.parseCreationOptionsFromJSON === 'function' && typeof p.parseRequestOptionsFromJSON === 'function' ? (p as typeof PublicKeyCredential & JsonCapable) : null;
};

export function passkeysSupported(): boolean {
  return window.isSecureContext && PKC() !== null && typeof navigator.credentials?.create === 'function';
}

function unsupported(): Error {
  return new Error('This browser cannot use passkeys here (it needs a recent browser and a secure page: HTTPS or localhost).');
}

function toJSON(c: Credential | null): unknown {
  if (!c) throw new Error('No passkey was used.');
  return (c as PublicKeyCredential & { toJSON(): unknown }).toJSON();
}

/** Registration: options from the server → a new credential's JSON. */
export async function createPasskey(options: unknown): Promise<unknown> {
  const p = PKC();
  if (!p || !window.isSecureContext) throw unsupported();
  return toJSON(await navigator.credentials.create({ publicKey: p.parseCreationOptionsFromJSON(options) }));
}

/** Authentication: options from the server → an assertion's JSON. */
export async function usePasskey(options: unknown): Promise<unknown> {
  const p = PKC();
  if (!p || !window.isSecureContext) throw unsupported();
  return toJSON(await navigator.credentials.get({ publicKey: p.parseRequestOptionsFromJSON(options) }));
}

// WebAuthn passkeys (W3C WebAuthn Level 2): registration, passwordless login, step-up and
// second factor. Every cryptographic check is @simplewebauthn/server's; this module owns
// the policy around it: challenges kept server-side and spent once, bound to one ceremony
// and one user or session; credential ids unique across accounts; signature counters
// that never go back; one vague error outside and the detail in the audit log.
import { createHmac, randomBytes } from 'node:crypto';
import {
  type AuthenticationResponseJSON,
  generateAuthenticationOptions,
  generateRegistrationOptions,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
} from '@simplewebauthn/server';
import { decodeClientDataJSON, isoBase64URL } from '@simplewebauthn/server/helpers';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { AuditLog } from '../audit/index.ts';
import type { RequestContext } from '../core/index.ts';
import { invalidInput, ModelkeepError, newId, notFound, sha256Hex } from '../core/index.ts';
import type { Database, WebauthnCredentialsTable } from '../storage/index.ts';
import type { IdentityService, LoginResult } from './identity-service.ts';
import { type Ceremony, PasskeyStore } from './passkey-store.ts';

/** COSE algorithms accepted: Ed25519 (-8), ES256 (-7), RS256 (-257). Anything else is refused at registration. */
export const PASSKEY_ALGORITHMS: readonly number[] = [-8, -7, -257];
/** A challenge is good for this long (and once). */
export const CHALLENGE_TTL_MS = 5 * 60_000;
/** Registering a passkey needs a full authentication this recent; removing one, an MFA this recent. */
export const RECENT_AUTH_MS = 15 * 60_000;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
const NAME = /^[\p{L}\p{N} ._'()-]{1,64}$/u;

export interface WebAuthnConfig {
  rpId?: string | undefined;
  rpName: string;
  origins?: readonly string[] | undefined;
}

export interface RelyingParty {
  rpId: string;
  rpName: string;
  origins: readonly string[];
}

export interface PasskeyView {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  transports: string[];
  aaguid: string;
}

type UserPrincipal = Extract<RequestContext['principal'], { kind: 'user' }>;

// The browser's JSON, checked for shape before it reaches the verifier (which trusts types).
const b64u = z.string().min(1).max(16_384).regex(/^[A-Za-z0-9_-]+$/);
const registrationSchema = z.object({
  id: b64u.max(1024),
  rawId: b64u.max(1024),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64u,
    attestationObject: b64u,
    transports: z.array(z.string().max(32)).max(8).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
});
const assertionSchema = z.object({
  id: b64u.max(1024),
  rawId: b64u.max(1024),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: b64u,
    authenticatorData: b64u,
    signature: b64u,
    userHandle: b64u.max(512).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
});

/** Raised inside a ceremony; turned into the one generic error after its detail is audited. */
class CeremonyFailure extends Error {}

export class WebAuthnService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #identity: IdentityService;
  readonly #store: PasskeyStore;
  readonly #cfg: WebAuthnConfig;
  #rp: RelyingParty | null = null;
  /** Keys the decoy credential ids shown for unknown usernames (stable for the process). */
  readonly #decoyKey = randomBytes(32);
  #lastPurge = 0;

  constructor(deps: { db: Kysely<Database>; audit: AuditLog; identity: IdentityService; config: WebAuthnConfig }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#identity = deps.identity;
    this.#store = new PasskeyStore(deps.db);
    this.#cfg = deps.config;
    // A passkey is a second factor: it counts for mandatory MFA and is offered after a password.
    deps.identity.registerFactor({ methods: ['webauthn'], count: async (userId, ex) => (await this.#store.listOfUser(userId, ex)).length });
    if (deps.config.rpId && deps.config.origins) this.#rp = { rpId: deps.config.rpId, rpName: deps.config.rpName, origins: [...deps.config.origins] };
  }

  /** Settles the relying party once the listening address is known (defaults need the port). */
  listening(addr: { host: string; port: number; tls: boolean }): void {
    this.#rp ??= resolveRelyingParty(this.#cfg, addr);
  }

  get relyingParty(): RelyingParty {
    if (!this.#rp) throw new ModelkeepError('unavailable', 'passkeys are not configured on this server', { hint: 'set webauthn.rpId and webauthn.origins' });
    return this.#rp;
  }

  // ---- registration

  async registrationOptions(ctx: RequestContext): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const p = consoleUser(ctx);
    await this.#requireRecentAuth(ctx, p);
    const rp = this.relyingParty;
    const existing = await this.#store.listOfUser(p.id);
    const options = await generateRegistrationOptions({
      rpName: rp.rpName,
      rpID: rp.rpId,
      userName: p.username,
      userDisplayName: p.username,
      userID: userHandle(p.id),
      timeout: CHALLENGE_TTL_MS,
      attestationType: 'none',
      // The same authenticator cannot be registered twice for this account.
      excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
      supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
    });
    await this.#saveChallenge(ctx, options.challenge, 'register', p.id, p.sessionId);
    return options;
  }

  async register(ctx: RequestContext, name: unknown, response: unknown): Promise<PasskeyView> {
    const p = consoleUser(ctx);
    await this.#requireRecentAuth(ctx, p);
    if (typeof name !== 'string' || !NAME.test(name.trim())) throw invalidInput('name must be 1-64 letters, digits, spaces or ._\'()-');
    const rp = this.relyingParty;
    try {
      const parsed = registrationSchema.safeParse(response);
      if (!parsed.success) throw new CeremonyFailure('malformed registration response');
      const body = parsed.data as RegistrationResponseJSON;
      const challenge = challengeOf(body.response.clientDataJSON);
      // Bound to this ceremony, this user and this session; spent even if what follows fails (replay).
      if (!(await this.#store.spendChallenge(this.#db, { challengeHash: sha256Hex(challenge), ceremony: 'register', userId: p.id, binding: p.sessionId, now: ctx.now }))) {
        throw new CeremonyFailure('unknown, spent, expired or foreign challenge');
      }
      const v = await verifyRegistrationResponse({
        response: body,
        expectedChallenge: challenge,
        expectedOrigin: [...rp.origins],
        expectedRPID: rp.rpId,
        requireUserPresence: true,
        requireUserVerification: false,
        // The policy is enforced here, server-side: options sent to the browser are advice only.
        supportedAlgorithmIDs: [...PASSKEY_ALGORITHMS],
      }).catch((err: unknown) => {
        throw new CeremonyFailure(`verification failed: ${err instanceof Error ? err.message : String(err)}`);
      });
      if (!v.verified) throw new CeremonyFailure('verification failed');
      const info = v.registrationInfo;
      const row: WebauthnCredentialsTable = {
        id: newId('pk'),
        user_id: p.id,
        credential_id: info.credential.id,
        public_key: isoBase64URL.fromBuffer(info.credential.publicKey),
        counter: info.credential.counter,
        transports: JSON.stringify((info.credential.transports ?? []).slice(0, 8)),
        name: name.trim(),
        aaguid: info.aaguid,
        created_at: ctx.now.toISOString(),
        last_used_at: null,
      };
      try {
        await this.#db.transaction().execute(async (tx) => {
          // One credential, one account: a credential id already known (to anyone) is refused.
          if (await this.#store.byCredentialId(row.credential_id, tx)) throw new CeremonyFailure('credential id already registered');
          await this.#store.insertCredential(tx, row);
          await this.#audit.append(tx, ctx, {
            action: 'auth.passkey_registered',
            outcome: 'success',
            resource: `user:${p.username}`,
            details: { passkeyId: row.id, name: row.name, aaguid: row.aaguid, userVerified: info.userVerified, backedUp: info.credentialBackedUp },
          });
        });
      } catch (err) {
        if (err instanceof CeremonyFailure) throw err;
        // The unique index caught a concurrent registration of the same credential id.
        throw new CeremonyFailure('credential id already registered (concurrent)');
      }
      this.#identity.factorsChanged(p.id);
      return view(row);
    } catch (err) {
      if (!(err instanceof CeremonyFailure)) throw err;
      await this.#audit.record(ctx, { action: 'auth.passkey_registered', outcome: 'failure', resource: `user:${p.username}`, reason: err.message.slice(0, 300) });
      throw invalidInput('the passkey could not be registered');
    }
  }

  async list(ctx: RequestContext): Promise<PasskeyView[]> {
    const p = consoleUser(ctx);
    return (await this.#store.listOfUser(p.id)).map(view);
  }

  /** Removing a factor needs a fresh MFA (a stolen session alone cannot strip the account's passkeys). */
  async remove(ctx: RequestContext, id: string): Promise<void> {
    const p = consoleUser(ctx);
    if (p.mfaAt === null || ctx.now.getTime() - p.mfaAt.getTime() > RECENT_AUTH_MS) {
      await this.#audit.record(ctx, { action: 'auth.passkey_removed', outcome: 'deny', resource: `user:${p.username}`, reason: 'no MFA in the last 15 minutes' });
      throw new ModelkeepError('mfa_required', 'confirm with a second factor first', { hint: 'step up with a passkey or TOTP, then retry' });
    }
    await this.#db.transaction().execute(async (tx) => {
      const row = await this.#store.byId(id, tx);
      // Someone else's passkey is as absent as a missing one.
      if (!row || row.user_id !== p.id) throw notFound('passkey');
      await this.#store.delete(tx, row.id);
      await this.#audit.append(tx, ctx, { action: 'auth.passkey_removed', outcome: 'success', resource: `user:${p.username}`, details: { passkeyId: row.id, name: row.name } });
    });
    this.#identity.factorsChanged(p.id);
  }

  // ---- passwordless login

  /**
   * Options for a passwordless login. Without a username: discoverable credentials. With
   * one: its credential ids, or decoy ids for an unknown user (or one without passkeys), so
   * the answer has the same shape either way (no user enumeration).
   */
  async loginOptions(ctx: RequestContext, username?: unknown): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const rp = this.relyingParty;
    let allow: { id: string }[] | undefined;
    let boundUser: string | null = null;
    if (typeof username === 'string' && username !== '') {
      const name = username.slice(0, 64);
      const user = await this.#identity.users.byUsername(name);
      const creds = user && user.status === 'active' ? await this.#store.listOfUser(user.id) : [];
      allow = creds.length > 0 ? creds.map((c) => ({ id: c.credential_id })) : [{ id: this.#decoyCredentialId(name) }];
      // A challenge asked for one user can only be answered by that user's passkey.
      boundUser = user?.id ?? `usr_unknown_${sha256Hex(name).slice(0, 16)}`;
    }
    const options = await generateAuthenticationOptions({
      rpID: rp.rpId,
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'required',
      ...(allow ? { allowCredentials: allow } : {}),
    });
    await this.#saveChallenge(ctx, options.challenge, 'login', boundUser, null);
    return options;
  }

  /** Passwordless login: the passkey (with user verification) is the only factor. */
  async login(ctx: RequestContext, response: unknown): Promise<LoginResult> {
    const r = await this.#assert(ctx, 'login', response, { userId: null, binding: null, requireUV: true }, 'auth.login');
    return this.#identity.issueSession(ctx, { id: r.user.id, username: r.user.username }, ['hwk', 'mfa'], ctx.now);
  }

  // ---- step-up in a signed-in session

  async stepUpOptions(ctx: RequestContext): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const p = consoleUser(ctx);
    return this.#userOptions(ctx, p.id, 'step-up', p.sessionId);
  }

  async stepUp(ctx: RequestContext, response: unknown): Promise<LoginResult> {
    const p = consoleUser(ctx);
    await this.#assert(ctx, 'step-up', response, { userId: p.id, binding: p.sessionId, requireUV: false }, 'auth.step_up');
    return this.#identity.stepUp(ctx, p.sessionId, 'hwk');
  }

  // ---- second factor after a password (wired to the pending login at merge)

  /** Options for a passkey as second factor; `binding` names the pending login (e.g. a hash of its mfaToken). */
  async secondFactorOptions(ctx: RequestContext, userId: string, binding: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    return this.#userOptions(ctx, userId, 'second-factor', binding);
  }

  /**
   * Verifies a passkey assertion of `userId` answering a second-factor challenge issued
   * for `binding`. Throws the generic invalid_credentials after auditing the detail.
   */
  async verifyUserAssertion(ctx: RequestContext, userId: string, response: unknown, binding: string): Promise<{ passkeyId: string }> {
    const r = await this.#assert(ctx, 'second-factor', response, { userId, binding, requireUV: false }, 'auth.mfa');
    return { passkeyId: r.passkeyId };
  }

  /** Options for finishing a password login with a passkey (POST /v1/auth/mfa/passkey/options {mfaToken}). */
  async pendingLoginOptions(ctx: RequestContext, mfaToken: unknown): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const pending = await this.#identity.pendingLogin(mfaToken, ctx.now);
    if (!pending || typeof mfaToken !== 'string') {
      throw new ModelkeepError('invalid_credentials', 'the sign-in attempt is invalid or has expired', { hint: 'sign in again with your password' });
    }
    return this.secondFactorOptions(ctx, pending.userId, sha256Hex(mfaToken));
  }

  /** Finishes a password login with a passkey: the pending login's rules (single use, failure cap, throttle) apply. */
  loginSecondFactor(ctx: RequestContext, mfaToken: unknown, response: unknown): Promise<LoginResult> {
    return this.#identity.completePendingLogin(
      ctx,
      mfaToken,
      'webauthn',
      async (u) => {
        try {
          await this.verifyUserAssertion(ctx, u.userId, response, sha256Hex(String(mfaToken)));
          return true;
        } catch (err) {
          if (err instanceof ModelkeepError && err.code === 'invalid_credentials') return false;
          throw err;
        }
      },
      ['hwk'],
    );
  }

  // ---- internals

  /** ASVS 5.0 6.3.7 / MC-AUTHN-06: enrolling a factor needs a recent full authentication. */
  async #requireRecentAuth(ctx: RequestContext, p: UserPrincipal): Promise<void> {
    const last = Math.max(p.authTime.getTime(), p.mfaAt?.getTime() ?? 0);
    if (ctx.now.getTime() - last <= RECENT_AUTH_MS) return;
    await this.#audit.record(ctx, { action: 'auth.passkey_registered', outcome: 'deny', resource: `user:${p.username}`, reason: 'no full authentication in the last 15 minutes' });
    throw new ModelkeepError('mfa_required', 'sign in again to add a passkey', { hint: 'authenticate again (password and second factor, or a passkey), then retry' });
  }

  async #userOptions(ctx: RequestContext, userId: string, ceremony: Ceremony, binding: string): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const rp = this.relyingParty;
    const creds = await this.#store.listOfUser(userId);
    const options = await generateAuthenticationOptions({
      rpID: rp.rpId,
      timeout: CHALLENGE_TTL_MS,
      userVerification: 'preferred',
      allowCredentials: creds.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
    });
    await this.#saveChallenge(ctx, options.challenge, ceremony, userId, binding);
    return options;
  }

  async #saveChallenge(ctx: RequestContext, challenge: string, ceremony: Ceremony, userId: string | null, binding: string | null): Promise<void> {
    const now = ctx.now;
    if (now.getTime() - this.#lastPurge > 60_000) {
      this.#lastPurge = now.getTime();
      await this.#store.purgeChallenges(new Date(now.getTime() - CHALLENGE_TTL_MS));
    }
    // Only the hash is kept: a read of the table does not hand out live challenges.
    await this.#store.insertChallenge({
      id: newId('wch'),
      challenge_hash: sha256Hex(challenge),
      ceremony,
      user_id: userId,
      binding,
      created_at: now.toISOString(),
      expires_at: new Date(now.getTime() + CHALLENGE_TTL_MS).toISOString(),
      used_at: null,
    });
  }

  /**
   * One assertion check for every ceremony (W3C WebAuthn L2 §7.2). Returns the verified
   * credential's owner; on any failure audits the detail under `action` and throws the
   * generic invalid_credentials.
   */
  async #assert(
    ctx: RequestContext,
    ceremony: Ceremony,
    response: unknown,
    expect: { userId: string | null; binding: string | null; requireUV: boolean },
    action: string,
  ): Promise<{ user: { id: string; username: string }; passkeyId: string }> {
    const rp = this.relyingParty;
    let resource: string | null = expect.userId ? `user:${expect.userId}` : null;
    try {
      const parsed = assertionSchema.safeParse(response);
      if (!parsed.success) throw new CeremonyFailure('malformed assertion');
      const body = parsed.data as AuthenticationResponseJSON;
      const challenge = challengeOf(body.response.clientDataJSON);
      const cred = await this.#store.byCredentialId(body.id);
      const owner = cred ? await this.#identity.users.byId(cred.user_id) : null;
      if (owner) resource = `user:${owner.username}`;
      const spent = await this.#store.spendChallenge(this.#db, {
        challengeHash: sha256Hex(challenge),
        ceremony,
        userId: expect.userId ?? cred?.user_id ?? null,
        binding: expect.binding,
        now: ctx.now,
      });
      if (!spent) throw new CeremonyFailure('unknown, spent, expired or foreign challenge');
      if (!cred || !owner) throw new CeremonyFailure('unknown credential');
      // The passkey must be the expected user's: another account's credential proves nothing here.
      if (expect.userId !== null && cred.user_id !== expect.userId) throw new CeremonyFailure('credential belongs to another user');
      if (owner.status !== 'active') throw new CeremonyFailure('account deactivated');
      // §7.2 step 6: a user handle, when returned, must name the credential's owner.
      if (body.response.userHandle !== undefined && body.response.userHandle !== isoBase64URL.fromBuffer(userHandle(owner.id))) {
        throw new CeremonyFailure('user handle does not match the credential owner');
      }
      const v = await verifyAuthenticationResponse({
        response: body,
        expectedChallenge: challenge,
        expectedOrigin: [...rp.origins],
        expectedRPID: rp.rpId,
        // Counter 0 here: the regression check is ours, after the signature, so it can be flagged.
        credential: { id: cred.credential_id, publicKey: isoBase64URL.toBuffer(cred.public_key), counter: 0 },
        requireUserVerification: expect.requireUV,
      }).catch((err: unknown) => {
        throw new CeremonyFailure(`verification failed: ${err instanceof Error ? err.message : String(err)}`);
      });
      if (!v.verified) throw new CeremonyFailure('signature does not verify');
      const presented = v.authenticationInfo.newCounter;
      // §6.1.1: a signature counter that does not grow means two copies of the key exist.
      const regressed = (presented > 0 || cred.counter > 0) && presented <= cred.counter;
      const recorded = regressed ? false : await this.#store.recordUse(this.#db, cred.id, presented, ctx.now);
      if (!recorded) {
        await this.#audit.record(ctx, {
          action: 'auth.passkey_clone_suspected',
          outcome: 'failure',
          resource,
          reason: 'signature counter did not increase: the authenticator may be cloned',
          details: { passkeyId: cred.id, storedCounter: cred.counter, presentedCounter: presented, ceremony },
        });
        throw new CeremonyFailure('signature counter regression');
      }
      return { user: { id: owner.id, username: owner.username }, passkeyId: cred.id };
    } catch (err) {
      if (!(err instanceof CeremonyFailure)) throw err;
      await this.#audit.record(ctx, { action, outcome: 'failure', resource, reason: `passkey: ${err.message}`.slice(0, 300), details: { method: 'hwk', ceremony } });
      throw new ModelkeepError('invalid_credentials', 'the passkey could not be verified');
    }
  }

  #decoyCredentialId(username: string): string {
    return createHmac('sha256', this.#decoyKey).update(username).digest('base64url');
  }
}

/**
 * The relying party from configuration, with defaults from the bound address: on loopback
 * rpId 'localhost' and origin http(s)://localhost:PORT; elsewhere rpId = host and origin
 * https://host[:PORT]. Null when no usable RP ID results (an IP address: browsers refuse it).
 */
export function resolveRelyingParty(cfg: WebAuthnConfig, addr: { host: string; port: number; tls: boolean }): RelyingParty | null {
  const scheme = addr.tls ? 'https' : 'http';
  const loopback = LOOPBACK.has(addr.host);
  const rpId = cfg.rpId ?? (loopback ? 'localhost' : addr.host.toLowerCase());
  if (/^[0-9.]+$/.test(rpId) || rpId.includes(':')) return null;
  const originScheme = loopback ? scheme : 'https';
  const defaultPort = addr.port === (originScheme === 'https' ? 443 : 80);
  const origins = cfg.origins ?? [`${originScheme}://${rpId}${defaultPort ? '' : `:${addr.port}`}`];
  return { rpId, rpName: cfg.rpName, origins: [...origins] };
}

function consoleUser(ctx: RequestContext): UserPrincipal & { sessionId: string } {
  const p = ctx.principal;
  if (p.kind !== 'user') throw new ModelkeepError('unauthenticated', 'authentication required');
  // Passkeys are managed from a console session, not with a token or an API key.
  if (p.authMethod !== 'session' || p.sessionId === null) throw new ModelkeepError('forbidden', 'passkeys are managed from a console session');
  return p as UserPrincipal & { sessionId: string };
}


/** The WebAuthn user handle: the opaque account id (no personal data), as bytes. */
function userHandle(userId: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(userId);
}

function challengeOf(clientDataJSON: string): string {
  try {
    const c = decodeClientDataJSON(clientDataJSON).challenge;
    if (typeof c === 'string' && c.length > 0 && c.length <= 256) return c;
  } catch {
    // fall through
  }
  throw new CeremonyFailure('unreadable clientDataJSON');
}

function view(c: WebauthnCredentialsTable): PasskeyView {
  return { id: c.id, name: c.name, createdAt: c.created_at, lastUsedAt: c.last_used_at, transports: JSON.parse(c.transports) as string[], aaguid: c.aaguid };
}

export {
  type AuthenticatedSession,
  csrfTokenFor,
  IdentityService,
  type LoginOutcome,
  type LoginResult,
  type MfaConfig,
  type PendingLogin,
  type SecondFactor,
  type SessionConfig,
  type SessionListEntry,
  type SessionView,
  validateUsername,
} from './identity-service.ts';
export { hashPassword, isCommonPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.ts';
export { type ServiceAccount, ServiceAccountStore } from './service-account-store.ts';
export { Throttle, type ThrottleKey, type ThrottlePolicy } from './throttle.ts';
export { type User, UserStore } from './user-store.ts';
export { CHALLENGE_TTL_MS, PASSKEY_ALGORITHMS, type PasskeyView, RECENT_AUTH_MS, type RelyingParty, resolveRelyingParty, type WebAuthnConfig, WebAuthnService } from './webauthn-service.ts';

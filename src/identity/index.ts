export { type AuthenticatedSession, csrfTokenFor, IdentityService, type LoginResult, type SessionConfig, type SessionView, validateUsername } from './identity-service.ts';
export { hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.ts';
export { type ServiceAccount, ServiceAccountStore } from './service-account-store.ts';
export { type User, UserStore } from './user-store.ts';
export { CHALLENGE_TTL_MS, PASSKEY_ALGORITHMS, type PasskeyView, RECENT_AUTH_MS, type RelyingParty, resolveRelyingParty, type WebAuthnConfig, WebAuthnService } from './webauthn-service.ts';

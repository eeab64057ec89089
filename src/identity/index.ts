export {
  type AuthenticatedSession,
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
export { Throttle, type ThrottleKey, type ThrottlePolicy } from './throttle.ts';
export { type User, UserStore } from './user-store.ts';

export { type AuthenticatedSession, IdentityService, type LoginResult, type SessionConfig, type SessionView, validateUsername } from './identity-service.ts';
export { hashPassword, MIN_PASSWORD_LENGTH, verifyPassword } from './passwords.ts';
export { type ServiceAccount, ServiceAccountStore } from './service-account-store.ts';
export { type User, UserStore } from './user-store.ts';

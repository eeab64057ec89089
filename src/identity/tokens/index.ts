export { type AccessClaims, AccessTokens } from './access-tokens.ts';
export { ApiKeys, type ApiKeyView } from './api-keys.ts';
export { DeviceFlow, type DeviceInfo, formatUserCode, normaliseUserCode, USER_CODE_ALPHABET } from './device-flow.ts';
export { OAuthError, type OAuthErrorCode } from './oauth-error.ts';
export { RevocationCache } from './revocation.ts';
export { DEFAULT_CLI_SCOPES, parseScope } from './scopes.ts';
export { ServiceAccounts } from './service-accounts.ts';
export { SigningKeys, TOKEN_ALG } from './signing-keys.ts';
export { API_KEY_PREFIX, type BearerResult, CLI_CLIENT_ID, REFRESH_PREFIX, type TokenConfig, type TokenResponse, TokenService } from './token-service.ts';

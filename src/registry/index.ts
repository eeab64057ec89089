export { AccessService, type BindingView } from './access-service.ts';
export { AlertReader, projectNames } from './alert-reader.ts';
export { AuditReader } from './audit-reader.ts';
export { BindingExpiry, expireBinding, principalLabel } from './binding-expiry.ts';
export { Lookup, parseVersion } from './lookup.ts';
export { artifactRef, modelRef, projectRef, versionRef } from './refs.ts';
export { type ArtifactView, type ModelView, type OpenedArtifact, type ProjectView, RegistryService, type VersionView } from './registry-service.ts';

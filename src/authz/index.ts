export { type Binding, BindingStore, PLATFORM_SCOPE } from './binding-store.ts';
export { Guard } from './guard.ts';
export { PLATFORM_ADMIN_ACTIONS, projectRequirement, ROLE_MATRIX_VERSION } from './role-matrix.ts';

export { type Binding, BindingStore, PLATFORM_SCOPE } from './binding-store.ts';
export { CedarEngine, type Fixture, fixtureRequest, PolicyLoadError } from './cedar-engine.ts';
export { Guard } from './guard.ts';
export {
  accessMatrix,
  FixtureError,
  type FixtureFile,
  type FixtureResult,
  formatProblem,
  loadFixtures,
  matrixDiff,
  POLICY_ACTIONS,
  type PolicyProblem,
  runFixtures,
  unexercisedPolicies,
  validatePolicyFolder,
} from './policy-tools.ts';
export { PLATFORM_ADMIN_ACTIONS, projectRequirement, ROLE_MATRIX_VERSION } from './role-matrix.ts';

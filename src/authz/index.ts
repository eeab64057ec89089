export { type Binding, BindingStore, PLATFORM_SCOPE } from './binding-store.ts';
export { CedarEngine, type Fixture, fixtureRequest, PolicyLoadError } from './cedar-engine.ts';
export { type CacheStats, Epochs, Lru } from './decision-cache.ts';
export { Guard, type GuardOptions, STEP_UP_HINT } from './guard.ts';
export { CedarPdp, ENGINES, type EngineName, loadPdp, type PdpDecision, type PdpRequest, type PolicyDecisionPoint } from './pdp.ts';
export { type PdpSource, PolicyHolder, type PolicySetInfo, type ReloadResult } from './policy-holder.ts';
export { PolicyService } from './policy-service.ts';
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

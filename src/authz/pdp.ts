// The policy decision point (PDP) as an interface: the guard (the enforcement point)
// asks `decide` and never knows which engine answers. Cedar is the one engine in product
// code; `authz.engine` selects it, and a second engine plugs in here without touching
// services. A PDP decides purely from its inputs (no I/O), which is what makes the
// guard's decision cache exact.
import type { Action } from '../core/index.ts';
import { CedarEngine, type DecisionContext, type PrincipalSpec, type ResourceSpec, sliceEntities } from './cedar-engine.ts';

export interface PdpRequest {
  principal: PrincipalSpec;
  action: Action;
  resource: ResourceSpec;
  context: DecisionContext;
}

export interface PdpDecision {
  decision: 'allow' | 'deny';
  /** Ids of the policies that determined the decision (forbids on a denial, permits on an allow). */
  reasons: readonly string[];
  /** Evaluation errors: any of them makes the decision a denial (fail closed, MC-AZ-07). */
  errors: readonly string[];
  /** sha256 of the active policy set. */
  policyVersion: string;
}

export interface PolicyDecisionPoint {
  readonly engine: string;
  readonly policyVersion: string;
  /** Policy files that make up the set (for GET /v1/admin/policies). */
  readonly files: readonly string[];
  decide(req: PdpRequest): PdpDecision;
}

export const ENGINES = ['cedar'] as const;
export type EngineName = (typeof ENGINES)[number];

/** Cedar behind the PDP interface: slices the entities a request needs and asks the preparsed policy set. */
export class CedarPdp implements PolicyDecisionPoint {
  readonly engine = 'cedar';
  readonly #cedar: CedarEngine;
  constructor(cedar: CedarEngine) {
    this.#cedar = cedar;
  }
  get policyVersion(): string {
    return this.#cedar.policyVersion;
  }
  get files(): readonly string[] {
    return this.#cedar.files;
  }
  decide(req: PdpRequest): PdpDecision {
    const sliced = sliceEntities(req.principal, req.resource);
    const d = this.#cedar.decide({ ...sliced, action: req.action, context: req.context });
    // Cedar reports the determining policies in no fixed order: sort, so equal inputs give equal answers.
    const reasons = [...d.reasons].sort();
    // Fail closed: an evaluation error anywhere is a denial, whatever Cedar's decision was.
    if (d.errors.length > 0) return { decision: 'deny', reasons, errors: d.errors, policyVersion: d.policyVersion };
    return { ...d, reasons };
  }
}

/** Loads the policy folder with the configured engine; throws PolicyLoadError when the set is refused. */
export function loadPdp(engine: EngineName, dir: string): PolicyDecisionPoint {
  switch (engine) {
    case 'cedar':
      return new CedarPdp(CedarEngine.load(dir));
  }
}

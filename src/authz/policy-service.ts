// The active policy set as an administered resource: platform-admins see it (files,
// version, load time) and hot-reload it; the operator reloads it with SIGHUP. A refused
// set leaves the active one deciding; both outcomes are audited (`policy.reload`).
import type { AuditLog, Work } from '../audit/index.ts';
import type { Authorizer, RequestContext, ResourceRef } from '../core/index.ts';
import { ModelkeepError } from '../core/index.ts';
import type { EventBus } from '../storage/index.ts';
import type { PolicyHolder, PolicySetInfo } from './policy-holder.ts';

const POLICY_SET: ResourceRef = { type: 'policy', path: '*', projectId: null };

export class PolicyService {
  readonly #holder: PolicyHolder;
  readonly #guard: Authorizer<Work>;
  readonly #audit: AuditLog;
  readonly #bus: EventBus;

  constructor(deps: { holder: PolicyHolder; guard: Authorizer<Work>; audit: AuditLog; bus: EventBus }) {
    this.#holder = deps.holder;
    this.#guard = deps.guard;
    this.#audit = deps.audit;
    this.#bus = deps.bus;
  }

  async info(ctx: RequestContext): Promise<PolicySetInfo> {
    await this.#guard.authorize(ctx, 'policy:read', POLICY_SET);
    return this.#holder.info();
  }

  /** POST /v1/admin/policies/reload: platform-admin only. Throws invalid_input (422) naming file and line when the set is refused. */
  async reload(ctx: RequestContext): Promise<PolicySetInfo & { changed: boolean }> {
    await this.#guard.authorize(ctx, 'policy:reload', POLICY_SET);
    return this.#reload(ctx);
  }

  /** SIGHUP: the signal comes from whoever runs the process, so there is nothing to authorize; still audited. */
  reloadFromSignal(ctx: RequestContext): Promise<PolicySetInfo & { changed: boolean }> {
    return this.#reload(ctx);
  }

  async #reload(ctx: RequestContext): Promise<PolicySetInfo & { changed: boolean }> {
    const r = this.#holder.reload();
    if (!r.ok) {
      await this.#audit.record(ctx, {
        action: 'policy.reload',
        outcome: 'failure',
        resource: `policy:${this.#holder.dir}`,
        policyVersion: r.active.version,
        reason: 'the policy set was refused; the active set keeps deciding',
        details: { errors: [...r.errors].slice(0, 50) },
      });
      throw new ModelkeepError(
        'invalid_input',
        `the policy set was refused; the active set (${r.active.version.slice(0, 12)}) keeps deciding:\n${r.errors.map((e) => `  - ${e}`).join('\n')}`,
        { hint: 'fix the files named above and reload again' },
      );
    }
    this.#bus.publish({ type: 'policies.reloaded', policyVersion: r.info.version });
    await this.#audit.record(ctx, {
      action: 'policy.reload',
      outcome: 'success',
      resource: `policy:${this.#holder.dir}`,
      policyVersion: r.info.version,
      reason: r.changed ? 'a new policy set is active' : 'the policy set is unchanged',
      details: { previousVersion: r.previousVersion, version: r.info.version, files: [...r.info.files] },
    });
    return { ...r.info, changed: r.changed };
  }
}

// Domain events that other parts of the process (and, later, other replicas through
// PostgreSQL LISTEN/NOTIFY) react to, such as revocations.
import { EventEmitter } from 'node:events';

export type BusEvent =
  | { type: 'session.revoked'; sessionId: string }
  | { type: 'user.revoked'; userId: string }
  /** Every session and token of the user issued before now is void (logout-all); re-read tokens_not_before. */
  | { type: 'user.sessions_revoked'; userId: string; at?: Date }
  /** A refresh-token family (one grant) and every access token of it are void. */
  | { type: 'token-family.revoked'; familyId: string }
  | { type: 'api-key.revoked'; keyId: string }
  | { type: 'service-account.revoked'; serviceAccountId: string }
  /** Role bindings of `scope` changed; `principalId` names whose, when known (else every principal's cache is flushed). */
  | { type: 'bindings.changed'; scope: string; principalId?: string }
  /** An attribute policies read (stage, environment, sensitivity) of a resource in a project changed. */
  | { type: 'resource.changed'; projectId: string; resource: string }
  /** The active policy set changed (hot reload). */
  | { type: 'policies.reloaded'; policyVersion: string };

export interface EventBus {
  publish(event: BusEvent): void;
  subscribe(handler: (event: BusEvent) => void): () => void;
}

export class InProcessEventBus implements EventBus {
  readonly #emitter = new EventEmitter();
  publish(event: BusEvent): void {
    this.#emitter.emit('event', event);
  }
  subscribe(handler: (event: BusEvent) => void): () => void {
    this.#emitter.on('event', handler);
    return () => this.#emitter.off('event', handler);
  }
}

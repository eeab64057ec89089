// Domain events that other parts of the process (and, later, other replicas through
// PostgreSQL LISTEN/NOTIFY) react to, such as revocations.
import { EventEmitter } from 'node:events';

export type BusEvent =
  | { type: 'session.revoked'; sessionId: string }
  | { type: 'user.revoked'; userId: string }
  /** logout-all: every session and token family of the user issued up to `at` is dead. */
  | { type: 'user.sessions_revoked'; userId: string; at: Date }
  | { type: 'bindings.changed'; scope: string };

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

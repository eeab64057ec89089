// Holds the active policy decision point and swaps it on reload. A reload validates the
// folder first (parse + schema); a set that fails is refused and the active one keeps
// deciding. Listeners (the guard's decision cache) hear of every swap.
import type { Clock } from '../core/index.ts';
import { PolicyLoadError } from './cedar-engine.ts';
import { type EngineName, loadPdp, type PolicyDecisionPoint } from './pdp.ts';

export interface PolicySetInfo {
  engine: string;
  dir: string;
  version: string;
  files: readonly string[];
  loadedAt: string;
}

export type ReloadResult = { ok: true; info: PolicySetInfo; changed: boolean; previousVersion: string } | { ok: false; errors: readonly string[]; active: PolicySetInfo };

/** What the guard reads: the active PDP and a counter that moves with every swap. */
export interface PdpSource {
  readonly pdp: PolicyDecisionPoint;
  readonly generation: number;
  onSwap(listener: () => void): void;
}

export class PolicyHolder implements PdpSource {
  readonly engine: EngineName;
  readonly dir: string;
  readonly #clock: Clock;
  #pdp: PolicyDecisionPoint;
  #loadedAt: Date;
  #generation = 0;
  readonly #listeners: (() => void)[] = [];

  /** Loads the folder; throws PolicyLoadError (the server refuses to start) when the set is refused. */
  constructor(engine: EngineName, dir: string, clock: Clock) {
    this.engine = engine;
    this.dir = dir;
    this.#clock = clock;
    this.#pdp = loadPdp(engine, dir);
    this.#loadedAt = clock.now();
  }

  /** A holder around a given PDP (guard unit tests prove the engine seam with a test double). */
  static of(pdp: PolicyDecisionPoint): PdpSource & { swap(next: PolicyDecisionPoint): void } {
    let current = pdp;
    let generation = 0;
    const listeners: (() => void)[] = [];
    return {
      get pdp() {
        return current;
      },
      get generation() {
        return generation;
      },
      onSwap: (l) => listeners.push(l),
      swap: (next) => {
        current = next;
        generation++;
        for (const l of listeners) l();
      },
    };
  }

  get pdp(): PolicyDecisionPoint {
    return this.#pdp;
  }
  get generation(): number {
    return this.#generation;
  }
  onSwap(listener: () => void): void {
    this.#listeners.push(listener);
  }

  info(): PolicySetInfo {
    return { engine: this.engine, dir: this.dir, version: this.#pdp.policyVersion, files: this.#pdp.files, loadedAt: this.#loadedAt.toISOString() };
  }

  /** Re-reads and validates the folder; swaps only a valid set. Never throws for a bad set. */
  reload(): ReloadResult {
    let next: PolicyDecisionPoint;
    try {
      next = loadPdp(this.engine, this.dir);
    } catch (err) {
      const errors = err instanceof PolicyLoadError ? err.errors : [err instanceof Error ? err.message : String(err)];
      return { ok: false, errors, active: this.info() };
    }
    const previousVersion = this.#pdp.policyVersion;
    this.#pdp = next;
    this.#loadedAt = this.#clock.now();
    this.#generation++;
    for (const l of this.#listeners) l();
    return { ok: true, info: this.info(), changed: previousVersion !== next.policyVersion, previousVersion };
  }
}

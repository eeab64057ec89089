// The exact decision cache (DESIGN.md, "Speed without staleness"). An entry is keyed by
// everything a decision depends on — policy generation, the principal's epoch, the
// resource's epoch, the action, the resource's attributes and the discrete context — and
// never outlives the earliest expiry of a binding it was computed from. Epochs move on
// every change (bindings, resource attributes, policy reload), so a hit is always the
// answer the engine would give now. Bounded: least recently used entries go first.

/** A bounded map that forgets the least recently used entry when full. */
export class Lru<V> {
  readonly #max: number;
  readonly #map = new Map<string, V>();
  constructor(max: number) {
    this.#max = Math.max(1, max);
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: string): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      // Re-insert: Map keeps insertion order, so the first key is the least recently used.
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (!oldest.done) this.#map.delete(oldest.value);
    }
  }
  delete(key: string): void {
    this.#map.delete(key);
  }
  clear(): void {
    this.#map.clear();
  }
}

/** Monotonic counters per principal and per project, plus a global one that flushes everything. */
export class Epochs {
  #global = 0;
  readonly #principals = new Map<string, number>();
  readonly #resources = new Map<string, number>();

  get global(): number {
    return this.#global;
  }
  principal(id: string): number {
    return this.#principals.get(id) ?? 0;
  }
  resource(projectId: string): number {
    return this.#resources.get(projectId) ?? 0;
  }
  bumpGlobal(): void {
    this.#global++;
    // Everything keyed under the old global epoch is unreachable; the per-key counters can restart.
    this.#principals.clear();
    this.#resources.clear();
  }
  bumpPrincipal(id: string): void {
    // A counter that only grows; the global epoch in every key keeps a cleared map safe.
    this.#principals.set(id, (this.#principals.get(id) ?? 0) + 1);
  }
  bumpResource(projectId: string): void {
    this.#resources.set(projectId, (this.#resources.get(projectId) ?? 0) + 1);
  }
}

export interface CacheStats {
  hits: number;
  misses: number;
  size: number;
}

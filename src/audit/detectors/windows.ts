// Bounded state for the rules: an LRU map (a flood of distinct actors or addresses cannot
// exhaust memory) and a sliding-window counter with a cool-down per key.

/** A Map that forgets its least recently used keys beyond `max`. */
export class BoundedMap<K, V> {
  readonly #max: number;
  readonly #map = new Map<K, V>();
  constructor(max: number) {
    this.#max = max;
  }
  get size(): number {
    return this.#map.size;
  }
  get(key: K): V | undefined {
    const v = this.#map.get(key);
    if (v !== undefined) {
      this.#map.delete(key);
      this.#map.set(key, v);
    }
    return v;
  }
  set(key: K, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    while (this.#map.size > this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done) break;
      this.#map.delete(oldest.value);
    }
  }
  delete(key: K): void {
    this.#map.delete(key);
  }
}

export interface WindowEntry {
  t: number;
  seq: number;
  amount: number;
  /** Who produced the entry (e.g. the actor id behind an address), for the rule's own test. */
  tag: string;
  projectId: string | null;
}

export interface Burst {
  entries: readonly WindowEntry[];
  count: number;
  sum: number;
  /** Start of the fixed window the burst is keyed to: floor(t / windowMs). */
  bucket: number;
}

interface KeyState {
  entries: WindowEntry[];
  sum: number;
  last: number;
  firedAt: number | null;
}

/**
 * Counts entries per key within `windowMs` of the newest one. A key reports a burst when
 * `count` entries (or `sum` of amounts) fall inside the window, then stays quiet for one
 * window: one alert per (rule, key, window), not one per event.
 */
export class BurstTracker {
  readonly #windowMs: number;
  readonly #count: number;
  readonly #sum: number;
  readonly #keys: BoundedMap<string, KeyState>;

  constructor(opts: { windowMs: number; count: number; sum?: number; maxKeys?: number }) {
    this.#windowMs = opts.windowMs;
    this.#count = opts.count;
    this.#sum = opts.sum ?? Number.POSITIVE_INFINITY;
    this.#keys = new BoundedMap(opts.maxKeys ?? 10_000);
  }

  /**
   * Adds an entry; returns the burst when this entry completes one and `accept` (if given)
   * agrees. A refused burst does not start the cool-down.
   */
  add(key: string, entry: WindowEntry, accept?: (b: Burst) => boolean): Burst | null {
    let s = this.#keys.get(key);
    if (!s) {
      s = { entries: [], sum: 0, last: entry.t, firedAt: null };
      this.#keys.set(key, s);
    }
    // Events arrive in commit order; their times may be a little out of order across
    // replicas, so the window ends at the newest time seen.
    const now = Math.max(s.last, entry.t);
    s.last = now;
    s.entries.push(entry);
    s.sum += entry.amount;
    const drop = () => {
      const old = s.entries.shift();
      if (old) s.sum -= old.amount;
    };
    while (s.entries.length > 0 && (s.entries[0]?.t ?? now) <= now - this.#windowMs) drop();
    // Only the newest `count` entries matter: reaching `count` is already a burst.
    while (s.entries.length > this.#count) drop();
    if (s.entries.length < this.#count && s.sum < this.#sum) return null;
    if (s.firedAt !== null && now - s.firedAt < this.#windowMs) return null;
    const burst: Burst = { entries: [...s.entries], count: s.entries.length, sum: s.sum, bucket: Math.floor(now / this.#windowMs) };
    if (accept && !accept(burst)) return null;
    s.firedAt = now;
    return burst;
  }
}

/** The one project all entries share, else null (an alert spanning projects is platform-wide). */
export function commonProject(entries: readonly WindowEntry[]): string | null {
  const first = entries[0]?.projectId ?? null;
  return first !== null && entries.every((e) => e.projectId === first) ? first : null;
}

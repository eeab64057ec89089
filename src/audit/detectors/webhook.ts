// Alert webhooks: every stored alert is POSTed as JSON to each configured URL, signed
// like the witness webhooks (HMAC-SHA256 over `timestamp.body`, headers
// x-modelkeep-timestamp and x-modelkeep-signature: sha256=HEX). Deliveries run in the
// background with retries and exponential back-off; detection never waits for them.
import type { Alert, Severity } from '../alert-store.ts';
import { webhookSignature } from '../witness.ts';

export interface AlertWebhookTarget {
  url: string;
  secret: string;
  minSeverity?: Severity;
}

export interface AlertWebhookOptions {
  retries: number;
  backoffMs: number;
  timeoutMs: number;
  queueMax: number;
}

const RANK: Record<Severity, number> = { low: 0, medium: 1, high: 2 };

export function alertPayload(alert: Alert): string {
  return JSON.stringify({ type: 'alert', alert });
}

class Target {
  readonly url: string;
  readonly origin: string;
  readonly #secret: string;
  readonly #min: number;
  readonly queue: Alert[] = [];
  running: Promise<void> | null = null;
  constructor(t: AlertWebhookTarget) {
    this.url = t.url;
    this.origin = new URL(t.url).origin;
    this.#secret = t.secret;
    this.#min = RANK[t.minSeverity ?? 'low'];
  }
  wants(a: Alert): boolean {
    return RANK[a.severity] >= this.#min;
  }
  sign(body: string): Record<string, string> {
    // Wall-clock seconds: the receiver checks freshness against its own clock.
    const timestamp = String(Math.floor(Date.now() / 1000));
    return {
      'content-type': 'application/json',
      'x-modelkeep-timestamp': timestamp,
      'x-modelkeep-signature': `sha256=${webhookSignature(this.#secret, timestamp, body)}`,
    };
  }
}

export class AlertWebhooks {
  readonly #targets: Target[];
  readonly #opts: AlertWebhookOptions;
  readonly #abort = new AbortController();
  readonly #timers = new Set<{ timer: NodeJS.Timeout; done: () => void }>();
  /** Where failed deliveries are reported (the alert itself stays stored). */
  onError: (target: string, err: unknown) => void = () => {};

  constructor(targets: readonly AlertWebhookTarget[], opts: AlertWebhookOptions) {
    this.#targets = targets.map((t) => new Target(t));
    this.#opts = opts;
  }

  /** Queues the alert for every target that wants it; returns at once. */
  enqueue(alert: Alert): void {
    if (this.#abort.signal.aborted) return;
    for (const t of this.#targets) {
      if (!t.wants(alert)) continue;
      t.queue.push(alert);
      // A receiver that is down for long must not grow memory without bound.
      if (t.queue.length > this.#opts.queueMax) {
        t.queue.shift();
        this.onError(t.origin, new Error('alert webhook queue full: the oldest delivery was dropped'));
      }
      t.running ??= this.#drain(t).finally(() => {
        t.running = null;
      });
    }
  }

  /** Resolves when every queued delivery has finished (delivered or given up). */
  async idle(): Promise<void> {
    while (true) {
      const running = this.#targets.map((t) => t.running).filter((p) => p !== null);
      if (running.length === 0) return;
      await Promise.all(running);
    }
  }

  /** Abandons queued and in-flight deliveries (shutdown); stored alerts are not affected. */
  async stop(): Promise<void> {
    this.#abort.abort();
    for (const t of this.#timers) {
      clearTimeout(t.timer);
      t.done();
    }
    this.#timers.clear();
    for (const t of this.#targets) t.queue.length = 0;
    await Promise.all(this.#targets.map((t) => t.running ?? Promise.resolve()));
  }

  async #drain(t: Target): Promise<void> {
    for (let a = t.queue.shift(); a !== undefined; a = t.queue.shift()) {
      if (this.#abort.signal.aborted) return;
      await this.#deliver(t, a);
    }
  }

  async #deliver(t: Target, alert: Alert): Promise<void> {
    const body = alertPayload(alert);
    for (let attempt = 0; attempt <= this.#opts.retries; attempt++) {
      if (attempt > 0) await this.#wait(this.#opts.backoffMs * 2 ** (attempt - 1));
      if (this.#abort.signal.aborted) return;
      try {
        const r = await fetch(t.url, {
          method: 'POST',
          headers: { ...t.sign(body), 'x-modelkeep-delivery': alert.id },
          body,
          // A redirect could carry the signed alert to a host nobody configured.
          redirect: 'manual',
          signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#opts.timeoutMs)]),
        });
        await r.body?.cancel();
        if (r.ok) return;
        // 4xx other than 408/429 will not change on retry: the receiver refuses this request.
        const retryable = r.status >= 500 || r.status === 408 || r.status === 429;
        const err = new Error(`alert webhook answered ${r.status}`);
        if (!retryable || attempt === this.#opts.retries) {
          this.onError(t.origin, err);
          return;
        }
      } catch (err) {
        if (this.#abort.signal.aborted) return;
        if (attempt === this.#opts.retries) {
          this.onError(t.origin, err);
          return;
        }
      }
    }
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.#timers.delete(entry);
          resolve();
        }, ms),
        done: resolve,
      };
      entry.timer.unref();
      this.#timers.add(entry);
    });
  }
}

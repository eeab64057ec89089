// Witnesses keep copies of signed tree heads outside the database, so that someone who
// controls the database cannot rewrite or roll back history without a witness disagreeing.
import { createHmac } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { verifyConsistency } from './merkle.ts';
import type { TreeHead } from './tree-head.ts';

export interface Witness {
  readonly name: string;
  /**
   * Records `head`. `proofFrom(size)` returns the consistency proof from an earlier tree
   * size to this head; a witness that holds an earlier head checks it.
   */
  publish(head: TreeHead, proofFrom: (size: number) => Promise<Buffer[]>): Promise<void>;
}

export class WitnessDisagreement extends Error {
  readonly kind: 'rollback' | 'fork' | 'inconsistent';
  constructor(kind: 'rollback' | 'fork' | 'inconsistent', message: string) {
    super(message);
    this.kind = kind;
  }
}

export const WITNESS_FILE = 'tree-heads.jsonl';

export function readWitnessFile(file: string): TreeHead[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as TreeHead);
}

/** An append-only file of tree heads, one JSON line each, in a folder apart from the data. */
export class FileWitness implements Witness {
  readonly name: string;
  readonly #file: string;
  #last: TreeHead | null | undefined;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.#file = join(dir, WITNESS_FILE);
    this.name = `file:${this.#file}`;
  }

  get file(): string {
    return this.#file;
  }

  async publish(head: TreeHead, proofFrom: (size: number) => Promise<Buffer[]>): Promise<void> {
    if (this.#last === undefined) this.#last = readWitnessFile(this.#file).at(-1) ?? null;
    const last = this.#last;
    if (last) {
      // A smaller tree than one already witnessed is a rollback; the same size with
      // another root, or a tree that does not extend the last one, is a fork.
      if (head.treeSize < last.treeSize) {
        throw new WitnessDisagreement('rollback', `tree size ${head.treeSize} is smaller than the witnessed ${last.treeSize}`);
      }
      if (head.treeSize === last.treeSize) {
        if (head.rootHash !== last.rootHash) throw new WitnessDisagreement('fork', `two roots for tree size ${head.treeSize}`);
        return;
      }
      if (last.treeSize > 0) {
        const proof = await proofFrom(last.treeSize);
        const ok = verifyConsistency(last.treeSize, head.treeSize, Buffer.from(last.rootHash, 'hex'), Buffer.from(head.rootHash, 'hex'), proof);
        if (!ok) throw new WitnessDisagreement('inconsistent', `tree ${head.treeSize} does not extend the witnessed tree ${last.treeSize}`);
      }
    }
    const fd = openSync(this.#file, 'a', 0o600);
    try {
      writeSync(fd, `${JSON.stringify(head)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    this.#last = head;
  }
}

/** POSTs each tree head as JSON, signed with HMAC-SHA256 over `timestamp.body`. */
export class WebhookWitness implements Witness {
  readonly name: string;
  readonly #url: string;
  readonly #secret: string;
  constructor(url: string, secret: string) {
    this.#url = url;
    this.#secret = secret;
    this.name = `webhook:${new URL(url).origin}`;
  }
  async publish(head: TreeHead): Promise<void> {
    const body = JSON.stringify({ type: 'tree-head', treeHead: head });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = webhookSignature(this.#secret, timestamp, body);
    const r = await fetch(this.#url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-modelkeep-timestamp': timestamp, 'x-modelkeep-signature': `sha256=${signature}` },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(5000),
    });
    if (!r.ok) throw new Error(`witness webhook answered ${r.status}`);
  }
}

/** Hex HMAC-SHA256 of `${timestamp}.${body}` (the timestamp stops replays of old heads). */
export function webhookSignature(secret: string, timestamp: string, body: string): string {
  return createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

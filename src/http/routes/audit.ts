// The tamper-evident log's public face: signed tree heads and the public key are public
// (like a Certificate Transparency log); proofs need audit-read access somewhere.
import type { FastifyInstance } from 'fastify';
import type { AuditTree } from '../../audit/index.ts';
import type { Clock } from '../../core/index.ts';
import { invalidInput } from '../../core/index.ts';
import type { AuditReader } from '../../registry/index.ts';
import { ctxOf } from '../context.ts';

function positive(v: string | undefined, name: string): number {
  if (v === undefined || !/^[1-9][0-9]{0,14}$/.test(v)) throw invalidInput(`${name} must be a positive integer`);
  return Number(v);
}

export function auditRoutes(app: FastifyInstance, deps: { auditReader: AuditReader; tree: AuditTree; clock: Clock }): void {
  const { auditReader, tree, clock } = deps;

  app.get('/v1/audit/tree-head', { config: { auth: false } }, async () => {
    const head = (await tree.latestHead()) ?? (await tree.signNow());
    if (!head) throw invalidInput('the audit log is empty');
    return head;
  });

  app.get('/v1/audit/tree-heads', { config: { auth: false } }, async () => ({ treeHeads: await tree.heads() }));

  app.get('/v1/audit/public-key', { config: { auth: false } }, async () => ({
    algorithm: 'Ed25519',
    keyId: tree.keyId,
    publicKeyPem: tree.publicKeyPem,
  }));

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/audit/proofs/inclusion', async (request) => {
    const seq = positive(request.query.seq, 'seq');
    const treeSize = positive(request.query.treeSize, 'treeSize');
    await auditReader.authorizeAuditAccess(ctxOf(request, clock.now()), 'proofs');
    const size = await tree.size();
    if (seq > treeSize || treeSize > size) throw invalidInput(`need seq <= treeSize <= ${size}`);
    const path = await tree.inclusion(seq, treeSize);
    return { leafIndex: seq - 1, treeSize, auditPath: path.map((h) => h.toString('hex')) };
  });

  app.get<{ Querystring: Record<string, string | undefined> }>('/v1/audit/proofs/consistency', async (request) => {
    const first = positive(request.query.first, 'first');
    const second = positive(request.query.second, 'second');
    await auditReader.authorizeAuditAccess(ctxOf(request, clock.now()), 'proofs');
    const size = await tree.size();
    if (first > second || second > size) throw invalidInput(`need first <= second <= ${size}`);
    const proof = await tree.consistency(first, second);
    return { first, second, proof: proof.map((h) => h.toString('hex')) };
  });
}

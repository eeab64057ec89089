// Reading the audit log: platform-admins read everything, auditors and project-admins
// read the events of their projects only.

import type { Kysely } from 'kysely';
import type { AuditEvent, AuditLog, AuditQuery, Work } from '../audit/index.ts';
import type { Authorizer, RequestContext } from '../core/index.ts';
import { ModelkeepError } from '../core/index.ts';
import type { Database } from '../storage/index.ts';
import type { Lookup } from './lookup.ts';
import { projectRef } from './refs.ts';

export class AuditReader {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #lookup: Lookup;
  constructor(deps: { db: Kysely<Database>; audit: AuditLog; guard: Authorizer<Work>; lookup: Lookup }) {
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#lookup = deps.lookup;
  }

  /** Proofs and the full event stream are for those who may read audit events somewhere. */
  async authorizeAuditAccess(ctx: RequestContext, what: string): Promise<void> {
    const platform = { type: 'audit', path: what, projectId: null };
    if ((await this.#guard.check(ctx, 'audit:read', platform)).decision === 'allow') {
      await this.#guard.authorize(ctx, 'audit:read', platform);
      return;
    }
    const projects = await this.#db.selectFrom('projects').selectAll().execute();
    for (const p of projects) {
      const ref = { ...projectRef(p), type: 'audit', path: `${p.name}/${what}` };
      if ((await this.#guard.check(ctx, 'audit:read', ref)).decision === 'allow') {
        await this.#guard.authorize(ctx, 'audit:read', ref);
        return;
      }
    }
    await this.#guard.authorize(ctx, 'audit:read', platform);
    throw new ModelkeepError('forbidden', 'not allowed');
  }

  async events(ctx: RequestContext, q: AuditQuery & { project?: string | undefined }): Promise<AuditEvent[]> {
    if (q.project !== undefined) {
      const p = await this.#lookup.project(ctx, q.project);
      await this.#guard.authorize(ctx, 'audit:read', { ...projectRef(p), type: 'audit', path: p.name });
      return this.#audit.query({ ...q, projectIds: [p.id] });
    }
    const platform = await this.#guard.check(ctx, 'audit:read', { type: 'audit', path: '*', projectId: null });
    if (platform.decision === 'allow') {
      await this.#guard.authorize(ctx, 'audit:read', { type: 'audit', path: '*', projectId: null });
      return this.#audit.query(q);
    }
    const projects = await this.#db.selectFrom('projects').selectAll().execute();
    const readable: string[] = [];
    for (const p of projects) {
      if ((await this.#guard.check(ctx, 'audit:read', { ...projectRef(p), type: 'audit', path: p.name })).decision === 'allow') readable.push(p.id);
    }
    if (readable.length === 0) {
      // Record the denial through the guard, then answer 403 with its reason.
      await this.#guard.authorize(ctx, 'audit:read', { type: 'audit', path: '*', projectId: null });
      throw new ModelkeepError('forbidden', 'not allowed');
    }
    await this.#audit.record(ctx, { action: 'audit:read', outcome: 'allow', resource: 'audit:projects', details: { projects: readable.length } });
    return this.#audit.query({ ...q, projectIds: readable });
  }
}

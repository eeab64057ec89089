// Projects, models, versions, stages and artifacts. Every method authorises through the
// guard before acting and writes its audit events in the transaction of its change.
import type { Readable } from 'node:stream';
import type { Kysely } from 'kysely';
import { type AuditLog, inTransaction, type Work } from '../audit/index.ts';
import type { Authorizer, RequestContext, Sensitivity, Stage } from '../core/index.ts';
import { invalidInput, isSha256Hex, ModelkeepError, newId, STAGES, validateArtifactPath, validateName } from '../core/index.ts';
import type { ArtifactsTable, BlobRange, BlobStore, Database, EventBus, ModelsTable, ModelVersionsTable, ProjectsTable } from '../storage/index.ts';
import { Lookup, parseVersion } from './lookup.ts';
import { artifactRef, modelRef, projectRef, versionRef } from './refs.ts';

const MAX_DESCRIPTION = 4096;
const MAX_METADATA_BYTES = 64 * 1024;

export interface ProjectView {
  name: string;
  description: string;
  createdAt: string;
  createdBy: string;
}
export interface ModelView {
  project: string;
  name: string;
  description: string;
  sensitivity: Sensitivity;
  createdAt: string;
  createdBy: string;
}
export interface ArtifactView {
  path: string;
  size: number;
  sha256: string;
  createdAt: string;
}
export interface VersionView {
  project: string;
  model: string;
  version: number;
  state: 'draft' | 'ready';
  stage: Stage;
  description: string;
  metadata: Record<string, unknown>;
  createdAt: string;
  createdBy: string;
  finalizedAt: string | null;
  stageChangedAt: string | null;
  artifacts: ArtifactView[];
}

export interface RegistryLimits {
  maxArtifactBytes: number;
}

export interface UploadOptions {
  declaredSha256?: string | undefined;
  contentLength?: number | undefined;
  onBytes?: (total: number) => void;
}

export interface OpenedArtifact {
  artifact: ArtifactView;
  /** Opens the blob; a whole-file read is hashed on the way and fails if it no longer matches. */
  open(range?: BlobRange): Promise<Readable>;
}

function description(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string' || v.length > MAX_DESCRIPTION) throw invalidInput(`description must be a string of at most ${MAX_DESCRIPTION} characters`);
  return v;
}

const projectView = (p: ProjectsTable): ProjectView => ({ name: p.name, description: p.description, createdAt: p.created_at, createdBy: p.created_by });
const modelView = (p: ProjectsTable, m: ModelsTable): ModelView => ({
  project: p.name,
  name: m.name,
  description: m.description,
  sensitivity: m.sensitivity,
  createdAt: m.created_at,
  createdBy: m.created_by,
});
const artifactView = (a: ArtifactsTable): ArtifactView => ({ path: a.path, size: Number(a.size), sha256: a.sha256, createdAt: a.created_at });

function actorName(ctx: RequestContext): string {
  return ctx.principal.kind === 'anonymous' ? 'anonymous' : ctx.principal.username;
}

export class RegistryService {
  readonly #db: Kysely<Database>;
  readonly #audit: AuditLog;
  readonly #guard: Authorizer<Work>;
  readonly #blobs: BlobStore;
  readonly #limits: RegistryLimits;
  readonly lookup: Lookup;
  readonly #bus: EventBus | undefined;

  constructor(deps: { db: Kysely<Database>; audit: AuditLog; guard: Authorizer<Work>; blobs: BlobStore; limits: RegistryLimits; bus?: EventBus }) {
    this.#bus = deps.bus;
    this.#db = deps.db;
    this.#audit = deps.audit;
    this.#guard = deps.guard;
    this.#blobs = deps.blobs;
    this.#limits = deps.limits;
    this.lookup = new Lookup(deps.db, deps.audit, deps.guard);
  }

  #tx<T>(ctx: RequestContext, fn: (w: Work) => Promise<T>): Promise<T> {
    return inTransaction(this.#db, this.#audit, ctx, fn);
  }

  // ---- projects

  async createProject(ctx: RequestContext, input: { name: unknown; description?: unknown }): Promise<ProjectView> {
    const name = validateName(input.name, 'project name');
    const desc = description(input.description);
    return this.#tx(ctx, async (w) => {
      await this.#guard.authorize(ctx, 'project:create', { type: 'project', path: name, projectId: null }, w);
      if (await w.tx.selectFrom('projects').select('id').where('name', '=', name).executeTakeFirst()) {
        throw new ModelkeepError('conflict', 'a project with this name exists');
      }
      const row: ProjectsTable = { id: newId('prj'), name, description: desc, created_at: ctx.now.toISOString(), created_by: actorName(ctx) };
      await w.tx.insertInto('projects').values(row).execute();
      await this.#audit.append(w.tx, ctx, { action: 'project.create', outcome: 'success', resource: `project:${name}`, projectId: row.id });
      return projectView(row);
    });
  }

  /** Lists the projects the caller can see (no count or name of the others leaks). */
  async listProjects(ctx: RequestContext): Promise<ProjectView[]> {
    const rows = await this.#db.selectFrom('projects').selectAll().orderBy('name').execute();
    const visible: ProjectView[] = [];
    for (const p of rows) {
      if ((await this.#guard.check(ctx, 'project:read', projectRef(p))).decision === 'allow') visible.push(projectView(p));
    }
    await this.#audit.record(ctx, { action: 'project:list', outcome: 'allow', resource: 'project:*', policyVersion: this.#guard.policyVersion, details: { count: visible.length } });
    return visible;
  }

  async getProject(ctx: RequestContext, name: unknown): Promise<ProjectView> {
    const p = await this.lookup.project(ctx, name);
    await this.#guard.authorize(ctx, 'project:read', projectRef(p));
    return projectView(p);
  }

  // ---- models

  async createModel(ctx: RequestContext, project: unknown, input: { name: unknown; description?: unknown; sensitivity?: unknown }): Promise<ModelView> {
    const name = validateName(input.name, 'model name');
    const desc = description(input.description);
    const sensitivity = input.sensitivity ?? 'internal';
    if (sensitivity !== 'internal' && sensitivity !== 'restricted') throw invalidInput("sensitivity must be 'internal' or 'restricted'");
    return this.#tx(ctx, async (w) => {
      const p = await this.lookup.project(ctx, project, w);
      await this.#guard.authorize(ctx, 'model:create', { ...projectRef(p), type: 'model', path: `${p.name}/${name}`, sensitivity }, w);
      if (await w.tx.selectFrom('models').select('id').where('project_id', '=', p.id).where('name', '=', name).executeTakeFirst()) {
        throw new ModelkeepError('conflict', 'a model with this name exists in the project');
      }
      const row: ModelsTable = {
        id: newId('mdl'),
        project_id: p.id,
        name,
        description: desc,
        sensitivity,
        next_version: 1,
        created_at: ctx.now.toISOString(),
        created_by: actorName(ctx),
      };
      await w.tx.insertInto('models').values(row).execute();
      await this.#audit.append(w.tx, ctx, { action: 'model.create', outcome: 'success', resource: `model:${p.name}/${name}`, projectId: p.id, details: { sensitivity } });
      return modelView(p, row);
    });
  }

  async listModels(ctx: RequestContext, project: unknown): Promise<ModelView[]> {
    const p = await this.lookup.project(ctx, project);
    await this.#guard.authorize(ctx, 'model:read', { ...projectRef(p), type: 'model', path: `${p.name}/*` });
    const rows = await this.#db.selectFrom('models').selectAll().where('project_id', '=', p.id).orderBy('name').execute();
    return rows.map((m) => modelView(p, m));
  }

  async getModel(ctx: RequestContext, project: unknown, model: unknown): Promise<ModelView> {
    const { p, m } = await this.lookup.projectModel(ctx, project, model);
    await this.#guard.authorize(ctx, 'model:read', modelRef(p, m));
    return modelView(p, m);
  }

  // ---- versions

  async #versionView(p: ProjectsTable, m: ModelsTable, v: ModelVersionsTable, ex: Kysely<Database> | Work['tx'] = this.#db): Promise<VersionView> {
    const arts = await ex.selectFrom('artifacts').selectAll().where('version_id', '=', v.id).orderBy('path').execute();
    return versionViewOf(p, m, v, arts);
  }

  /** Views of many versions with their artifacts read in one query (a list is not N+1 queries). */
  async #versionViews(p: ProjectsTable, m: ModelsTable, rows: readonly ModelVersionsTable[]): Promise<VersionView[]> {
    if (rows.length === 0) return [];
    const arts = await this.#db
      .selectFrom('artifacts')
      .innerJoin('model_versions', 'model_versions.id', 'artifacts.version_id')
      .selectAll('artifacts')
      .where('model_versions.model_id', '=', m.id)
      .orderBy('artifacts.path')
      .execute();
    const byVersion = new Map<string, (typeof arts)[number][]>();
    for (const a of arts) {
      const list = byVersion.get(a.version_id);
      if (list) list.push(a);
      else byVersion.set(a.version_id, [a]);
    }
    return rows.map((v) => versionViewOf(p, m, v, byVersion.get(v.id) ?? []));
  }

  async createVersion(ctx: RequestContext, project: unknown, model: unknown, input: { description?: unknown; metadata?: unknown }): Promise<VersionView> {
    const desc = description(input.description);
    const metadata = input.metadata ?? {};
    if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) throw invalidInput('metadata must be a JSON object');
    const metaJson = JSON.stringify(metadata);
    if (Buffer.byteLength(metaJson) > MAX_METADATA_BYTES) throw invalidInput(`metadata must be at most ${MAX_METADATA_BYTES} bytes of JSON`);
    return this.#tx(ctx, async (w) => {
      const p = await this.lookup.project(ctx, project, w);
      const m = await this.lookup.model(ctx, p, model, w);
      await this.#guard.authorize(ctx, 'version:create', modelRef(p, m), w);
      // Taking the number from the model row locks it: concurrent creators get distinct numbers.
      const next = await w.tx
        .updateTable('models')
        .set((eb) => ({ next_version: eb('next_version', '+', 1) }))
        .where('id', '=', m.id)
        .returning('next_version')
        .executeTakeFirstOrThrow();
      const row: ModelVersionsTable = {
        id: newId('ver'),
        model_id: m.id,
        version: Number(next.next_version) - 1,
        state: 'draft',
        stage: 'none',
        description: desc,
        metadata: metaJson,
        created_at: ctx.now.toISOString(),
        created_by: actorName(ctx),
        finalized_at: null,
        stage_changed_at: null,
      };
      await w.tx.insertInto('model_versions').values(row).execute();
      await this.#audit.append(w.tx, ctx, { action: 'version.create', outcome: 'success', resource: `version:${p.name}/${m.name}@${row.version}`, projectId: p.id });
      return this.#versionView(p, m, row, w.tx);
    });
  }

  async listVersions(ctx: RequestContext, project: unknown, model: unknown): Promise<VersionView[]> {
    const p = await this.lookup.project(ctx, project);
    const m = await this.lookup.model(ctx, p, model);
    await this.#guard.authorize(ctx, 'version:read', { ...modelRef(p, m), type: 'version', path: `${p.name}/${m.name}@*` });
    const rows = await this.#db.selectFrom('model_versions').selectAll().where('model_id', '=', m.id).orderBy('version').execute();
    return this.#versionViews(p, m, rows);
  }

  async getVersion(ctx: RequestContext, project: unknown, model: unknown, version: unknown): Promise<VersionView> {
    const p = await this.lookup.project(ctx, project);
    const m = await this.lookup.model(ctx, p, model);
    const v = await this.lookup.version(ctx, p, m, version);
    await this.#guard.authorize(ctx, 'version:read', versionRef(p, m, v));
    return this.#versionView(p, m, v);
  }

  async finalizeVersion(ctx: RequestContext, project: unknown, model: unknown, version: unknown): Promise<VersionView> {
    return this.#tx(ctx, async (w) => {
      const p = await this.lookup.project(ctx, project, w);
      const m = await this.lookup.model(ctx, p, model, w);
      const v = await this.lookup.version(ctx, p, m, version, w);
      await this.#guard.authorize(ctx, 'version:finalize', versionRef(p, m, v), w);
      if (v.state !== 'draft') throw new ModelkeepError('version_immutable', 'the version is already finalized; create a new version to change it');
      const arts = await w.tx.selectFrom('artifacts').selectAll().where('version_id', '=', v.id).orderBy('path').execute();
      if (arts.length === 0) throw new ModelkeepError('conflict', 'a version needs at least one artifact before it is finalized');
      const upd = await w.tx
        .updateTable('model_versions')
        .set({ state: 'ready', finalized_at: ctx.now.toISOString() })
        .where('id', '=', v.id)
        .where('state', '=', 'draft')
        .executeTakeFirst();
      if (Number(upd.numUpdatedRows) !== 1) throw new ModelkeepError('version_immutable', 'the version is already finalized');
      await this.#audit.append(w.tx, ctx, {
        action: 'version.finalize',
        outcome: 'success',
        resource: `version:${p.name}/${m.name}@${v.version}`,
        projectId: p.id,
        details: { artifacts: arts.map((a) => ({ path: a.path, sha256: a.sha256, size: Number(a.size) })) },
      });
      return this.#versionView(p, m, { ...v, state: 'ready', finalized_at: ctx.now.toISOString() }, w.tx);
    });
  }

  async promote(ctx: RequestContext, project: unknown, model: unknown, version: unknown, stage: unknown): Promise<VersionView> {
    if (typeof stage !== 'string' || !(STAGES as readonly string[]).includes(stage)) {
      throw invalidInput(`stage must be one of ${STAGES.join(', ')}`);
    }
    const target = stage as Stage;
    const done = await this.#tx(ctx, async (w) => {
      const p = await this.lookup.project(ctx, project, w);
      const m = await this.lookup.model(ctx, p, model, w);
      const v = await this.lookup.version(ctx, p, m, version, w);
      await this.#guard.authorize(ctx, 'version:promote', { ...versionRef(p, m, v), targetStage: target }, w);
      // Only finalized (immutable) versions move between stages: a promoted version's
      // content is pinned by the digests recorded at finalization.
      if (v.state !== 'ready') throw new ModelkeepError('conflict', 'only a finalized version can change stage');
      if (v.stage === target) throw new ModelkeepError('conflict', `the version is already in stage ${target}`);
      await w.tx.updateTable('model_versions').set({ stage: target, stage_changed_at: ctx.now.toISOString() }).where('id', '=', v.id).execute();
      const arts = await w.tx.selectFrom('artifacts').select(['path', 'sha256']).where('version_id', '=', v.id).orderBy('path').execute();
      await this.#audit.append(w.tx, ctx, {
        action: 'version.promote',
        outcome: 'success',
        resource: `version:${p.name}/${m.name}@${v.version}`,
        projectId: p.id,
        details: { from: v.stage, to: target, artifacts: arts },
      });
      return { view: await this.#versionView(p, m, { ...v, stage: target, stage_changed_at: ctx.now.toISOString() }, w.tx), projectId: p.id };
    });
    // After the commit: a stage is an attribute policies read, so cached decisions on it are stale.
    this.#bus?.publish({ type: 'resource.changed', projectId: done.projectId, resource: `version:${done.view.project}/${done.view.model}@${done.view.version}` });
    return done.view;
  }

  // ---- artifacts

  /**
   * Streams an upload into the blob store. Authorisation and state are checked before the
   * first byte is read and again when the artifact is recorded, so a role removed or a
   * version finalized during a long upload still stops it (TOCTOU).
   */
  async uploadArtifact(
    ctx: RequestContext,
    project: unknown,
    model: unknown,
    version: unknown,
    rawPath: unknown,
    body: AsyncIterable<Uint8Array>,
    opts: UploadOptions = {},
  ): Promise<ArtifactView> {
    const path = validateArtifactPath(rawPath);
    const declared = opts.declaredSha256?.toLowerCase();
    if (declared !== undefined && !isSha256Hex(declared)) throw invalidInput('X-Content-SHA256 must be 64 hexadecimal characters');
    const num = parseVersion(version);

    const check = async (w: Work) => {
      const p = await this.lookup.project(ctx, project, w);
      const m = await this.lookup.model(ctx, p, model, w);
      const v = await this.lookup.version(ctx, p, m, num, w);
      await this.#guard.authorize(ctx, 'artifact:upload', artifactRef(p, m, v, path), w);
      if (v.state !== 'draft') throw new ModelkeepError('version_immutable', 'the version is finalized; its artifacts cannot change');
      const exists = await w.tx.selectFrom('artifacts').select('id').where('version_id', '=', v.id).where('path', '=', path).executeTakeFirst();
      if (exists) throw new ModelkeepError('conflict', 'an artifact with this path exists in the version');
      return { p, m, v };
    };
    const { p, m, v } = await this.#tx(ctx, check);
    const resource = `artifact:${p.name}/${m.name}@${v.version}/${path}`;
    if (opts.contentLength !== undefined && opts.contentLength > this.#limits.maxArtifactBytes) {
      await this.#audit.record(ctx, { action: 'artifact.upload', outcome: 'failure', resource, projectId: p.id, reason: 'payload_too_large' });
      throw new ModelkeepError('payload_too_large', `artifact larger than ${this.#limits.maxArtifactBytes} bytes`);
    }
    let blob: { sha256: string; size: number };
    try {
      blob = await this.#blobs.put(body, {
        maxBytes: this.#limits.maxArtifactBytes,
        ...(declared !== undefined ? { expectedSha256: declared } : {}),
        ...(opts.onBytes ? { onBytes: opts.onBytes } : {}),
      });
    } catch (err) {
      const code = err instanceof ModelkeepError ? err.code : 'aborted';
      await this.#audit.record(ctx, { action: 'artifact.upload', outcome: 'failure', resource, projectId: p.id, reason: code }).catch(() => {});
      throw err;
    }
    return this.#tx(ctx, async (w) => {
      const again = await check(w);
      const row: ArtifactsTable = {
        id: newId('art'),
        version_id: again.v.id,
        path,
        size: blob.size,
        sha256: blob.sha256,
        created_at: ctx.now.toISOString(),
        created_by: actorName(ctx),
      };
      await w.tx.insertInto('artifacts').values(row).execute();
      await this.#audit.append(w.tx, ctx, {
        action: 'artifact.upload',
        outcome: 'success',
        resource,
        projectId: p.id,
        details: { sha256: blob.sha256, size: blob.size },
      });
      return artifactView(row);
    });
  }

  /** Authorises and records a download; the caller streams with `open`. */
  async openArtifact(ctx: RequestContext, project: unknown, model: unknown, version: unknown, rawPath: unknown): Promise<OpenedArtifact> {
    const path = validateArtifactPath(rawPath);
    const p = await this.lookup.project(ctx, project);
    const m = await this.lookup.model(ctx, p, model);
    const v = await this.lookup.version(ctx, p, m, version);
    const a = await this.#db.selectFrom('artifacts').selectAll().where('version_id', '=', v.id).where('path', '=', path).executeTakeFirst();
    const ref = artifactRef(p, m, v, path);
    if (!a) {
      // Decide first: a caller who may not download learns nothing about which paths exist.
      await this.#guard.authorize(ctx, 'artifact:download', ref);
      await this.#audit.record(ctx, { action: 'artifact:lookup', outcome: 'deny', resource: `artifact:${ref.path}`, projectId: p.id, reason: 'not found' });
      throw new ModelkeepError('not_found', 'artifact not found');
    }
    await this.#guard.authorize(ctx, 'artifact:download', ref, undefined, { sha256: a.sha256, size: Number(a.size) });
    const view = artifactView(a);
    return {
      artifact: view,
      open: async (range?: BlobRange) => {
        // The store checks a whole-file read against the digest (integrity on read).
        const s = await this.#blobs.open(a.sha256, range);
        if (!s) throw new ModelkeepError('unavailable', 'the artifact content is missing from the blob store');
        return s;
      },
    };
  }
}

function versionViewOf(p: ProjectsTable, m: ModelsTable, v: ModelVersionsTable, arts: readonly ArtifactsTable[]): VersionView {
  return {
    project: p.name,
    model: m.name,
    version: v.version,
    state: v.state,
    stage: v.stage,
    description: v.description,
    metadata: JSON.parse(v.metadata) as Record<string, unknown>,
    createdAt: v.created_at,
    createdBy: v.created_by,
    finalizedAt: v.finalized_at,
    stageChangedAt: v.stage_changed_at,
    artifacts: arts.map(artifactView),
  };
}

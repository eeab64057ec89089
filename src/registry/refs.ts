import type { ResourceRef } from '../core/index.ts';
import type { ModelsTable, ModelVersionsTable, ProjectsTable } from '../storage/index.ts';

export const projectRef = (p: ProjectsTable): ResourceRef => ({ type: 'project', path: p.name, projectId: p.id, projectName: p.name });

export const modelRef = (p: ProjectsTable, m: ModelsTable): ResourceRef => ({
  type: 'model',
  path: `${p.name}/${m.name}`,
  projectId: p.id,
  projectName: p.name,
  sensitivity: m.sensitivity,
});

export const versionRef = (p: ProjectsTable, m: ModelsTable, v: ModelVersionsTable): ResourceRef => ({
  type: 'version',
  path: `${p.name}/${m.name}@${v.version}`,
  projectId: p.id,
  projectName: p.name,
  sensitivity: m.sensitivity,
  stage: v.stage,
});

export const artifactRef = (p: ProjectsTable, m: ModelsTable, v: ModelVersionsTable, path: string): ResourceRef => ({
  ...versionRef(p, m, v),
  type: 'artifact',
  path: `${p.name}/${m.name}@${v.version}/${path}`,
});

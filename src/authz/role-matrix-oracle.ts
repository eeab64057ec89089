// TEST ORACLE ONLY. The walking skeleton's hand-written role matrix, kept so that
// cedar-engine.test.ts can prove the Cedar policies equal it wherever ABAC does not apply.
// Product code decides with Cedar (guard.ts → pdp.ts); nothing outside tests imports this.
import type { Action, ProjectRole, ResourceRef } from '../core/index.ts';

const ALL: readonly ProjectRole[] = ['viewer', 'data-scientist', 'ml-engineer', 'release-manager', 'auditor', 'project-admin'];
const WRITERS: readonly ProjectRole[] = ['data-scientist', 'ml-engineer'];

export interface Requirement {
  /** Project roles, any of which allows the action. */
  roles: readonly ProjectRole[];
  /** Safe text naming what the action needs. */
  needs: string;
}

/** Which project roles allow `action` on `resource`; null when no project role ever does. */
export function projectRequirement(action: Action, r: ResourceRef): Requirement | null {
  switch (action) {
    case 'project:read':
    case 'model:read':
    case 'version:read':
    case 'deployment:read':
    case 'pipeline:read':
      return { roles: ALL, needs: 'any role in the project' };
    case 'model:create':
    case 'version:create':
    case 'artifact:upload':
    case 'version:finalize':
      return { roles: WRITERS, needs: 'the data-scientist or ml-engineer role' };
    case 'artifact:download':
      return r.sensitivity === 'restricted'
        ? { roles: ['ml-engineer', 'release-manager'], needs: 'downloading artifacts of a restricted model needs the ml-engineer or release-manager role' }
        : { roles: ['data-scientist', 'ml-engineer', 'release-manager'], needs: 'downloading artifacts needs the data-scientist, ml-engineer or release-manager role' };
    case 'version:promote': {
      // Anything that puts a version into production or takes one out of it is a release decision.
      const touchesProduction = r.targetStage === 'production' || r.stage === 'production';
      return touchesProduction
        ? { roles: ['release-manager'], needs: 'changing the production stage needs the release-manager role' }
        : { roles: ['ml-engineer', 'release-manager'], needs: 'promotion needs the ml-engineer or release-manager role' };
    }
    case 'pipeline:trigger':
      return { roles: WRITERS, needs: 'triggering retraining needs the data-scientist or ml-engineer role' };
    case 'deployment:update':
      return r.environment === 'production'
        ? { roles: ['release-manager'], needs: 'changing a production deployment needs the release-manager role' }
        : { roles: ['ml-engineer', 'release-manager'], needs: 'changing a dev or staging deployment needs the ml-engineer or release-manager role' };
    case 'audit:read':
    case 'binding:read':
      return { roles: ['auditor', 'project-admin'], needs: 'the auditor or project-admin role' };
    case 'binding:manage':
      return { roles: ['project-admin'], needs: 'managing bindings needs the project-admin role' };
    case 'project:create':
    case 'user:create':
    case 'user:read':
    case 'user:deactivate':
    case 'policy:read':
    case 'policy:reload':
      return null;
  }
}

/** Platform-admin: administers projects, users, bindings and audit, but (least privilege) never touches artifacts or stages. */
export const PLATFORM_ADMIN_ACTIONS: ReadonlySet<Action> = new Set<Action>([
  'project:create',
  'project:read',
  'model:read',
  'version:read',
  'deployment:read',
  'pipeline:read',
  'audit:read',
  'binding:read',
  'binding:manage',
  'user:create',
  'user:read',
  'user:deactivate',
  'policy:read',
  'policy:reload',
]);

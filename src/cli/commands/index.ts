// Every command, in the order `modelkeep --help` lists them.

import type { CommandDef } from '../command.ts';
import { access } from './access.ts';
import { auditEvents, auditExport, auditVerify } from './audit.ts';
import { login, logout, whoami } from './auth.ts';
import { bindingsAdd, bindingsList, bindingsRemove } from './bindings.ts';
import { deploymentsSet, deploymentsShow } from './deployments.ts';
import { mfaEnroll, mfaStatus, mfaStepUp } from './mfa.ts';
import { modelsCreate, modelsList, modelsShow } from './models.ts';
import { pipelinesRuns, pipelinesTrigger } from './pipelines.ts';
import { policyMatrix, policyTest, policyValidate } from './policy.ts';
import { projectsCreate, projectsList, projectsShow } from './projects.ts';
import { pull } from './pull.ts';
import { push } from './push.ts';
import { adminCreateUser, serve } from './serve.ts';
import { usersCreate, usersDeactivate, usersList } from './users.ts';
import { version } from './version.ts';
import { promote, versionsCreate, versionsList, versionsShow } from './versions.ts';

export interface CommandGroup {
  title: string;
  commands: readonly CommandDef[];
}

export const GROUPS: readonly CommandGroup[] = [
  { title: 'Server', commands: [serve, adminCreateUser] },
  { title: 'Session', commands: [login, logout, whoami, mfaEnroll, mfaStatus, mfaStepUp] },
  { title: 'Access', commands: [access, usersCreate, usersList, usersDeactivate, bindingsAdd, bindingsList, bindingsRemove] },
  { title: 'Registry', commands: [projectsCreate, projectsList, projectsShow, modelsCreate, modelsList, modelsShow, versionsCreate, versionsList, versionsShow] },
  { title: 'Artifacts and releases', commands: [push, pull, promote, deploymentsSet, deploymentsShow] },
  { title: 'Pipelines and audit', commands: [pipelinesTrigger, pipelinesRuns, auditEvents, auditVerify, auditExport] },
  { title: 'Policies (offline)', commands: [policyValidate, policyTest, policyMatrix] },
  { title: 'Other', commands: [version] },
];

export const COMMANDS: readonly CommandDef[] = GROUPS.flatMap((g) => g.commands);

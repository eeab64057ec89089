// `bindings add|list|remove`: who holds which role on a project.

import { apiPath } from '../client.ts';
import { type CommandDef, optString, positional, reqString } from '../command.ts';
import { EXIT, usageError } from '../errors.ts';
import { col, print, printList, type Row, renderJson, safeText } from '../output.ts';
import { checkName } from '../refs.ts';
import { signedInClient } from '../session.ts';

const projectOption = { type: 'string', short: 'p', valueName: 'P', description: 'the project' } as const;

export const bindingsAdd: CommandDef = {
  path: ['bindings', 'add'],
  summary: 'grant a role on a project to a user (or a service account)',
  usage: '--project P --user NAME --role ROLE [--expires-at ISO]',
  examples: ['modelkeep bindings add --project fraud --user bob --role viewer --expires-at 2030-01-01T00:00:00Z'],
  positionals: { min: 0, max: 0 },
  options: {
    project: projectOption,
    user: { type: 'string', valueName: 'NAME', description: 'user to grant the role to' },
    service: { type: 'string', valueName: 'NAME', description: 'service account to grant the role to (instead of --user)' },
    role: { type: 'string', valueName: 'ROLE', description: 'viewer, data-scientist, ml-engineer, release-manager, auditor or project-admin' },
    'expires-at': { type: 'string', valueName: 'ISO', description: 'when the grant ends (ISO 8601 date-time)' },
  },
  async run(ctx) {
    const project = checkName(reqString(ctx, 'project'), 'project');
    const user = optString(ctx, 'user');
    const service = optString(ctx, 'service');
    if ((user === undefined) === (service === undefined)) throw usageError('pass exactly one of --user and --service');
    const role = reqString(ctx, 'role');
    const expiresAt = optString(ctx, 'expires-at');
    if (expiresAt !== undefined && Number.isNaN(Date.parse(expiresAt))) {
      throw usageError(`invalid --expires-at '${expiresAt}'`, 'use an ISO 8601 date-time such as 2030-01-01T00:00:00Z');
    }
    const principal = user === undefined ? `service:${service}` : `user:${user}`;
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('POST', apiPath('v1', 'projects', project, 'bindings'), {
      json: { principal, role, ...(expiresAt === undefined ? {} : { expiresAt }) },
    });
    print(
      ctx.io,
      ctx.json ? renderJson(body) : `granted ${safeText(role)} on ${project} to ${safeText(principal)} (binding ${safeText(body.id)})\n`,
    );
    return EXIT.ok;
  },
};

export const bindingsList: CommandDef = {
  path: ['bindings', 'list'],
  summary: 'list who holds which role on a project, and until when',
  usage: '--project P',
  examples: ['modelkeep bindings list --project fraud'],
  positionals: { min: 0, max: 0 },
  options: { project: projectOption },
  async run(ctx) {
    const project = checkName(reqString(ctx, 'project'), 'project');
    const client = await signedInClient(ctx);
    const body = await client.json('GET', apiPath('v1', 'projects', project, 'bindings'));
    printList(ctx.io, ctx.json, body, 'bindings', [
      col('ID', 'id'),
      col('PRINCIPAL', 'principal'),
      col('ROLE', 'role'),
      col('EXPIRES', 'expiresAt'),
      col('STATUS', 'status'),
    ]);
    return EXIT.ok;
  },
};

export const bindingsRemove: CommandDef = {
  path: ['bindings', 'remove'],
  summary: 'remove a role binding',
  usage: '--project P ID',
  examples: ['modelkeep bindings remove --project fraud bnd_x1y2z3'],
  positionals: { min: 1, max: 1 },
  options: { project: projectOption },
  async run(ctx) {
    const project = checkName(reqString(ctx, 'project'), 'project');
    const id = positional(ctx, 0);
    const client = await signedInClient(ctx);
    const body = await client.json('DELETE', apiPath('v1', 'projects', project, 'bindings', id));
    print(ctx.io, ctx.json ? renderJson(body) : `removed binding ${safeText(id)} from ${project}\n`);
    return EXIT.ok;
  },
};

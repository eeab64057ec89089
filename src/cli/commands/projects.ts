// `projects create|list|show`.

import { apiPath } from '../client.ts';
import { type CommandDef, optString, positional } from '../command.ts';
import { EXIT } from '../errors.ts';
import { col, print, printList, type Row, renderFields, renderJson } from '../output.ts';
import { checkName } from '../refs.ts';
import { signedInClient } from '../session.ts';

const COLUMNS = [col('NAME', 'name'), col('CREATED', 'createdAt'), col('DESCRIPTION', 'description')];

export const projectsCreate: CommandDef = {
  path: ['projects', 'create'],
  summary: 'create a project',
  usage: 'NAME [--description D]',
  examples: ['modelkeep projects create fraud --description "Fraud detection models"'],
  positionals: { min: 1, max: 1 },
  options: { description: { type: 'string', valueName: 'D', description: 'what the project is for' } },
  async run(ctx) {
    const name = checkName(positional(ctx, 0), 'project');
    const description = optString(ctx, 'description');
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('POST', '/v1/projects', {
      json: { name, ...(description === undefined ? {} : { description }) },
    });
    print(ctx.io, ctx.json ? renderJson(body) : `created project ${name}\n`);
    return EXIT.ok;
  },
};

export const projectsList: CommandDef = {
  path: ['projects', 'list'],
  summary: 'list the projects you can see',
  usage: '',
  examples: ['modelkeep projects list'],
  positionals: { min: 0, max: 0 },
  options: {},
  async run(ctx) {
    const client = await signedInClient(ctx);
    printList(ctx.io, ctx.json, await client.json('GET', '/v1/projects'), 'projects', COLUMNS);
    return EXIT.ok;
  },
};

export const projectsShow: CommandDef = {
  path: ['projects', 'show'],
  summary: 'show one project',
  usage: 'NAME',
  examples: ['modelkeep projects show fraud'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const name = checkName(positional(ctx, 0), 'project');
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('GET', apiPath('v1', 'projects', name));
    print(
      ctx.io,
      ctx.json
        ? renderJson(body)
        : renderFields([
            ['name', body.name],
            ['description', body.description],
            ['created', body.createdAt],
            ['created by', body.createdBy],
          ]),
    );
    return EXIT.ok;
  },
};

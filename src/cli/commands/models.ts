// `models create|list|show`.

import { apiPath } from '../client.ts';
import { type CommandDef, optString, positional, reqString } from '../command.ts';
import { EXIT, usageError } from '../errors.ts';
import { col, print, printList, type Row, renderFields, renderJson } from '../output.ts';
import { checkName, parsePair } from '../refs.ts';
import { signedInClient } from '../session.ts';

const SENSITIVITIES = ['internal', 'restricted'];

export const modelsCreate: CommandDef = {
  path: ['models', 'create'],
  summary: 'create a model in a project',
  usage: 'NAME --project P [--sensitivity internal|restricted] [--description D]',
  examples: ['modelkeep models create churn --project fraud --sensitivity restricted'],
  positionals: { min: 1, max: 1 },
  options: {
    project: { type: 'string', short: 'p', valueName: 'P', description: 'project the model belongs to' },
    sensitivity: {
      type: 'string',
      valueName: 'S',
      description: 'internal (default) or restricted (stricter download rules)',
    },
    description: { type: 'string', valueName: 'D', description: 'what the model does' },
  },
  async run(ctx) {
    const name = checkName(positional(ctx, 0), 'model');
    const project = checkName(reqString(ctx, 'project'), 'project');
    const sensitivity = optString(ctx, 'sensitivity');
    if (sensitivity !== undefined && !SENSITIVITIES.includes(sensitivity)) {
      throw usageError(`invalid sensitivity '${sensitivity}'`, 'use internal or restricted');
    }
    const description = optString(ctx, 'description');
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('POST', apiPath('v1', 'projects', project, 'models'), {
      json: {
        name,
        ...(description === undefined ? {} : { description }),
        ...(sensitivity === undefined ? {} : { sensitivity }),
      },
    });
    print(ctx.io, ctx.json ? renderJson(body) : `created model ${project}/${name}\n`);
    return EXIT.ok;
  },
};

export const modelsList: CommandDef = {
  path: ['models', 'list'],
  summary: 'list the models of a project',
  usage: '--project P',
  examples: ['modelkeep models list --project fraud'],
  positionals: { min: 0, max: 0 },
  options: { project: { type: 'string', short: 'p', valueName: 'P', description: 'the project' } },
  async run(ctx) {
    const project = checkName(reqString(ctx, 'project'), 'project');
    const client = await signedInClient(ctx);
    const body = await client.json('GET', apiPath('v1', 'projects', project, 'models'));
    printList(ctx.io, ctx.json, body, 'models', [
      col('NAME', 'name'),
      col('SENSITIVITY', 'sensitivity'),
      col('CREATED', 'createdAt'),
      col('DESCRIPTION', 'description'),
    ]);
    return EXIT.ok;
  },
};

export const modelsShow: CommandDef = {
  path: ['models', 'show'],
  summary: 'show one model',
  usage: 'PROJECT/MODEL',
  examples: ['modelkeep models show fraud/churn'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const { project, name } = parsePair(positional(ctx, 0), 'model');
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('GET', apiPath('v1', 'projects', project, 'models', name));
    print(
      ctx.io,
      ctx.json
        ? renderJson(body)
        : renderFields([
            ['model', `${project}/${name}`],
            ['sensitivity', body.sensitivity],
            ['description', body.description],
            ['created', body.createdAt],
            ['created by', body.createdBy],
          ]),
    );
    return EXIT.ok;
  },
};

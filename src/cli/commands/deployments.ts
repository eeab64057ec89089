// `deployments set|show`.

import { apiPath } from '../client.ts';
import { type CommandDef, optString, positional, reqString } from '../command.ts';
import { EXIT, usageError } from '../errors.ts';
import { col, print, printList, type Row, renderFields, renderJson } from '../output.ts';
import { checkName, parsePair, parsePositiveInt } from '../refs.ts';
import { signedInClient } from '../session.ts';

const ENVIRONMENTS = ['dev', 'staging', 'production'];

function parseConfig(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw usageError('--config is not valid JSON', `e.g. --config '{"replicas":2}'`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw usageError('--config must be a JSON object');
  return v as Record<string, unknown>;
}

export const deploymentsSet: CommandDef = {
  path: ['deployments', 'set'],
  summary: 'point a deployment at a model version',
  usage: 'PROJECT/DEPLOYMENT --env dev|staging|production --model M --version N [--config JSON]',
  examples: [`modelkeep deployments set fraud/scoring-api --env production --model churn --version 3 --config '{"replicas":2}'`],
  positionals: { min: 1, max: 1 },
  options: {
    env: { type: 'string', valueName: 'ENV', description: 'dev, staging or production' },
    model: { type: 'string', short: 'm', valueName: 'M', description: 'model in the same project' },
    version: { type: 'string', valueName: 'N', description: 'version number' },
    config: { type: 'string', valueName: 'JSON', description: 'deployment configuration, a JSON object' },
  },
  async run(ctx) {
    const { project, name } = parsePair(positional(ctx, 0), 'deployment');
    const environment = reqString(ctx, 'env');
    if (!ENVIRONMENTS.includes(environment)) {
      throw usageError(`invalid environment '${environment}'`, `use one of: ${ENVIRONMENTS.join(', ')}`);
    }
    const model = checkName(reqString(ctx, 'model'), 'model');
    const version = parsePositiveInt(reqString(ctx, 'version'), 'version');
    const config = parseConfig(optString(ctx, 'config'));
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('PUT', apiPath('v1', 'projects', project, 'deployments', name), {
      json: { environment, model, version, config },
    });
    print(ctx.io, ctx.json ? renderJson(body) : `deployment ${project}/${name} (${environment}) now serves ${model}@${version}\n`);
    return EXIT.ok;
  },
};

const COLUMNS = [
  col('NAME', 'name'),
  col('ENV', 'environment'),
  col('MODEL', 'model'),
  col('VERSION', 'version'),
  col('UPDATED', 'updatedAt'),
];

export const deploymentsShow: CommandDef = {
  path: ['deployments', 'show'],
  summary: 'show the deployments of a project, or one of them',
  usage: 'PROJECT[/DEPLOYMENT]',
  examples: ['modelkeep deployments show fraud', 'modelkeep deployments show fraud/scoring-api'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const ref = positional(ctx, 0);
    const client = await signedInClient(ctx);
    if (!ref.includes('/')) {
      const project = checkName(ref, 'project');
      printList(ctx.io, ctx.json, await client.json('GET', apiPath('v1', 'projects', project, 'deployments')), 'deployments', COLUMNS);
      return EXIT.ok;
    }
    const { project, name } = parsePair(ref, 'deployment');
    const body = await client.json<Row>('GET', apiPath('v1', 'projects', project, 'deployments', name));
    print(
      ctx.io,
      ctx.json
        ? renderJson(body)
        : renderFields([
            ['deployment', `${project}/${name}`],
            ['environment', body.environment],
            ['model', body.model],
            ['version', body.version],
            ['config', body.config],
            ['updated', body.updatedAt],
            ['updated by', body.updatedBy],
          ]),
    );
    return EXIT.ok;
  },
};

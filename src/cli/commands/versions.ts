// `versions list|show` and `promote`, plus resolving `@staging`/`@production` to a number.

import { type ApiClient, apiPath } from '../client.ts';
import { type CommandDef, optFlag, optString, positional, reqString } from '../command.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { col, formatBytes, print, printList, type Row, renderFields, renderJson, renderTable, rowsOf } from '../output.ts';
import { parsePair, parseStage, parseVersionRef, type VersionRef } from '../refs.ts';
import { signedInClient } from '../session.ts';
import { STEP_UP_OPTIONS, withStepUp } from '../step-up.ts';

export interface Artifact {
  path: string;
  size: number;
  sha256: string;
}

export interface VersionDetail extends Row {
  version: number;
  state?: string;
  stage?: string;
  artifacts: Artifact[];
}

export function versionPath(project: string, model: string, version?: number): string {
  const base = apiPath('v1', 'projects', project, 'models', model, 'versions');
  return version === undefined ? base : `${base}/${version}`;
}

/** The version number a reference names; a stage picks the newest version in that stage. */
export async function resolveVersion(client: ApiClient, ref: VersionRef): Promise<number> {
  if (ref.selector.kind === 'number') return ref.selector.version;
  const { stage } = ref.selector;
  const versions = rowsOf(await client.json('GET', versionPath(ref.project, ref.model)), 'versions');
  const numbers = versions
    .filter((v) => v.stage === stage && typeof v.version === 'number')
    .map((v) => v.version as number);
  if (numbers.length === 0) {
    throw new CliError(`no version of ${ref.project}/${ref.model} is in ${stage}`, EXIT.notFound);
  }
  return Math.max(...numbers);
}

export async function getVersion(client: ApiClient, project: string, model: string, version: number): Promise<VersionDetail> {
  return toVersionDetail(await client.json<Row>('GET', versionPath(project, model, version)));
}

/** The checked view of a version answer: artifacts without a path, size and digest are dropped. */
function toVersionDetail(body: Row): VersionDetail {
  const artifacts = (Array.isArray(body.artifacts) ? body.artifacts : []).filter(
    (a): a is Artifact =>
      typeof a === 'object' &&
      a !== null &&
      typeof (a as Row).path === 'string' &&
      typeof (a as Row).size === 'number' &&
      typeof (a as Row).sha256 === 'string',
  );
  if (typeof body.version !== 'number') throw new CliError('the server answered a version without a number', EXIT.failure);
  return { ...body, version: body.version, artifacts };
}

export const versionsCreate: CommandDef = {
  path: ['versions', 'create'],
  summary: 'create an empty draft version of a model',
  usage: 'PROJECT/MODEL [--description D]',
  description:
    'Creates the next version as a draft and prints its number on stdout (the server\'s JSON with --json).\n' +
    'Upload artifacts into it with the HTTP API; `push` does create, upload and finalize in one go.',
  examples: ['modelkeep versions create fraud/churn --description "weekly retrain"', 'V=$(modelkeep versions create fraud/churn)'],
  positionals: { min: 1, max: 1 },
  options: { description: { type: 'string', valueName: 'D', description: 'what changed in this version' } },
  async run(ctx) {
    const { project, name } = parsePair(positional(ctx, 0), 'model');
    const description = optString(ctx, 'description');
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('POST', versionPath(project, name), { json: description === undefined ? {} : { description } });
    if (typeof body.version !== 'number') throw new CliError('the server answered a version without a number', EXIT.failure);
    print(ctx.io, ctx.json ? renderJson(body) : `${body.version}\n`);
    return EXIT.ok;
  },
};

export const versionsList: CommandDef = {
  path: ['versions', 'list'],
  summary: 'list the versions of a model',
  usage: 'PROJECT/MODEL',
  examples: ['modelkeep versions list fraud/churn'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const { project, name } = parsePair(positional(ctx, 0), 'model');
    const client = await signedInClient(ctx);
    printList(ctx.io, ctx.json, await client.json('GET', versionPath(project, name)), 'versions', [
      col('VERSION', 'version'),
      col('STATE', 'state'),
      col('STAGE', 'stage'),
      col('CREATED', 'createdAt'),
      col('DESCRIPTION', 'description'),
    ]);
    return EXIT.ok;
  },
};

export const versionsShow: CommandDef = {
  path: ['versions', 'show'],
  summary: 'show a version and its artifacts',
  usage: 'PROJECT/MODEL@N|@staging|@production',
  examples: ['modelkeep versions show fraud/churn@3', 'modelkeep versions show fraud/churn@production'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const ref = parseVersionRef(positional(ctx, 0), true);
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('GET', versionPath(ref.project, ref.model, await resolveVersion(client, ref)));
    if (ctx.json) {
      // the server's answer as it came, not the CLI's checked view of it
      print(ctx.io, renderJson(body));
      return EXIT.ok;
    }
    const v = toVersionDetail(body);
    const total = v.artifacts.reduce((n, a) => n + a.size, 0);
    print(
      ctx.io,
      renderFields([
        ['version', `${ref.project}/${ref.model}@${v.version}`],
        ['state', v.state],
        ['stage', v.stage],
        ['description', v.description],
        ['created', v.createdAt],
        ['created by', v.createdBy],
        ['artifacts', `${v.artifacts.length} (${formatBytes(total)})`],
      ]),
    );
    if (v.artifacts.length > 0) {
      print(
        ctx.io,
        `\n${renderTable(
          [
            { header: 'PATH', value: (a: Artifact) => a.path },
            { header: 'SIZE', value: (a) => formatBytes(a.size) },
            { header: 'SHA256', value: (a) => a.sha256 },
          ],
          v.artifacts,
        )}`,
      );
    }
    return EXIT.ok;
  },
};

export const promote: CommandDef = {
  path: ['promote'],
  summary: 'move a version to a stage',
  usage: 'PROJECT/MODEL@N --to staging|production|archived|none [--step-up | --no-step-up]',
  description:
    'Into or out of production needs the release-manager role, a login with the release scope\n' +
    '(`modelkeep login --scope "read download write trigger release"`) and, by default policy, a second\n' +
    'factor within the last 15 minutes. A device login keeps the MFA time of the console session that\n' +
    'approved it, so when the server answers 428 the CLI starts a step-up: a new device login, printed\n' +
    'as a URL and a code, that you approve in the console after confirming your second factor (the\n' +
    'server demands it for a release-scoped approval). The new tokens replace the saved ones (the old\n' +
    'login is revoked) and the promotion is retried once. Without a terminal, or with --no-step-up,\n' +
    'or with a password session or MODELKEEP_TOKEN, a 428 is exit 4 with a hint.',
  examples: ['modelkeep promote fraud/churn@3 --to staging', 'modelkeep promote fraud/churn@3 --to production'],
  positionals: { min: 1, max: 1 },
  options: { to: { type: 'string', valueName: 'STAGE', description: 'staging, production, archived or none' }, ...STEP_UP_OPTIONS },
  async run(ctx) {
    const ref = parseVersionRef(positional(ctx, 0), false);
    const stage = parseStage(reqString(ctx, 'to'));
    if (optFlag(ctx, 'step-up') && optFlag(ctx, 'no-step-up')) throw usageError('--step-up and --no-step-up exclude each other');
    const client = await signedInClient(ctx);
    const version = await resolveVersion(client, ref);
    const body = await withStepUp(ctx, client, () => client.json('POST', `${versionPath(ref.project, ref.model, version)}/promote`, { json: { stage } }));
    print(ctx.io, ctx.json ? renderJson(body) : `${ref.project}/${ref.model}@${version} is now in stage ${stage}\n`);
    return EXIT.ok;
  },
};

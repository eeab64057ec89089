// `pipelines trigger|runs`.

import { apiPath } from '../client.ts';
import { type CommandDef, optList, positional } from '../command.ts';
import { EXIT, usageError } from '../errors.ts';
import { col, print, printList, type Row, renderJson, safeText } from '../output.ts';
import { parsePair } from '../refs.ts';
import { signedInClient } from '../session.ts';

/** `k=v` pairs into an object; the first '=' splits, so values may hold '='. */
export function parseParams(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw usageError(`invalid --param '${p}'`, 'use --param key=value');
    const key = p.slice(0, eq);
    // '__proto__' and friends would be dropped or misread by a JSON consumer
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') throw usageError(`invalid parameter name '${key}'`);
    out[key] = p.slice(eq + 1);
  }
  return out;
}

function pipelineRuns(project: string, name: string): string {
  return apiPath('v1', 'projects', project, 'pipelines', name, 'runs');
}

export const pipelinesTrigger: CommandDef = {
  path: ['pipelines', 'trigger'],
  summary: 'start a pipeline run (e.g. a retraining)',
  usage: 'PROJECT/NAME [--param k=v]…',
  examples: ['modelkeep pipelines trigger fraud/retrain --param epochs=5 --param lr=0.001'],
  positionals: { min: 1, max: 1 },
  options: { param: { type: 'string', multiple: true, valueName: 'K=V', description: 'a run parameter (repeatable)' } },
  async run(ctx) {
    const { project, name } = parsePair(positional(ctx, 0), 'pipeline');
    const parameters = parseParams(optList(ctx, 'param'));
    const client = await signedInClient(ctx);
    const body = await client.json<Row>('POST', pipelineRuns(project, name), { json: { parameters: { ...parameters } } });
    print(ctx.io, ctx.json ? renderJson(body) : `${safeText(body.runId)}\n`);
    return EXIT.ok;
  },
};

export const pipelinesRuns: CommandDef = {
  path: ['pipelines', 'runs'],
  summary: 'list the runs of a pipeline',
  usage: 'PROJECT/NAME',
  examples: ['modelkeep pipelines runs fraud/retrain'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const { project, name } = parsePair(positional(ctx, 0), 'pipeline');
    const client = await signedInClient(ctx);
    printList(ctx.io, ctx.json, await client.json('GET', pipelineRuns(project, name)), 'runs', [
      { header: 'RUN', value: (r: Row) => r.runId ?? r.id },
      col('STATUS', 'status'),
      col('CREATED', 'createdAt'),
      col('BY', 'createdBy'),
      col('PARAMETERS', 'parameters'),
    ]);
    return EXIT.ok;
  },
};

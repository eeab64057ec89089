// `audit events`.

import { type CommandDef, optString } from '../command.ts';
import { EXIT } from '../errors.ts';
import { col, printList } from '../output.ts';
import { checkName, parseNonNegativeInt, parsePositiveInt } from '../refs.ts';
import { signedInClient } from '../session.ts';

export const auditEvents: CommandDef = {
  path: ['audit', 'events'],
  summary: 'list audit events',
  usage: '[--project P] [--after SEQ] [--limit N]',
  description: 'Events come oldest first; page with --after set to the last sequence number you saw.',
  examples: ['modelkeep audit events --project fraud --limit 50', 'modelkeep audit events --after 1200 --json'],
  positionals: { min: 0, max: 0 },
  options: {
    project: { type: 'string', short: 'p', valueName: 'P', description: 'only events about this project' },
    after: { type: 'string', valueName: 'SEQ', description: 'only events after this sequence number' },
    limit: { type: 'string', valueName: 'N', description: 'at most this many events' },
  },
  async run(ctx) {
    const project = optString(ctx, 'project');
    const after = optString(ctx, 'after');
    const limit = optString(ctx, 'limit');
    const query = {
      project: project === undefined ? undefined : checkName(project, 'project'),
      after: after === undefined ? undefined : parseNonNegativeInt(after, '--after'),
      limit: limit === undefined ? undefined : parsePositiveInt(limit, '--limit'),
    };
    const client = await signedInClient(ctx);
    printList(ctx.io, ctx.json, await client.json('GET', '/v1/audit/events', { query }), 'events', [
      col('SEQ', 'seq'),
      col('TIME', 'time'),
      col('ACTOR', 'actor'),
      col('ACTION', 'action'),
      col('RESOURCE', 'resource'),
      col('OUTCOME', 'outcome'),
      col('REASON', 'reason'),
    ]);
    return EXIT.ok;
  },
};

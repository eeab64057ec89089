// `version` / `--version`.

import type { CommandDef } from '../command.ts';
import { EXIT } from '../errors.ts';
import { print, renderJson } from '../output.ts';
import { cliVersion } from '../version.ts';

export const version: CommandDef = {
  path: ['version'],
  summary: 'print the CLI version',
  usage: '',
  examples: ['modelkeep version'],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: {},
  async run(ctx) {
    const v = cliVersion();
    print(ctx.io, ctx.json ? renderJson({ version: v, node: process.versions.node }) : `modelkeep ${v} (node ${process.versions.node})\n`);
    return EXIT.ok;
  },
};

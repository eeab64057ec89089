// The text of `--help`: top level, per group (`modelkeep projects`), per command.

import { COMMON_OPTIONS, type CommandDef, type OptionDef } from './command.ts';
import type { CommandGroup } from './commands/index.ts';

export const EXIT_CODES_TEXT = `Exit codes:
  0  success
  1  unexpected or server error (5xx, network, integrity check failed)
  2  bad input: usage error, invalid name or value (HTTP 400, 413, 415, 422)
  3  not authenticated: not logged in, session expired, wrong password (HTTP 401)
  4  not allowed (HTTP 403), or a fresh MFA is required (HTTP 428) and no step-up was possible
  5  not found, or not visible to you (HTTP 404)
  6  conflict: already exists, or the version is no longer a draft (HTTP 409)
  7  audit verify: the audit log failed verification (tampering, or a bad tree head)
`;

function flagLabel(name: string, o: OptionDef): string {
  const long = `--${name}${o.type === 'string' ? ` ${o.valueName ?? 'VALUE'}` : ''}`;
  return o.short ? `-${o.short}, ${long}` : `    ${long}`;
}

function aligned(rows: readonly (readonly [string, string])[], indent = '  '): string {
  const w = Math.max(0, ...rows.map(([a]) => a.length));
  return rows.map(([a, b]) => `${indent}${a.padEnd(w)}  ${b}`.trimEnd()).join('\n');
}

export function topHelp(groups: readonly CommandGroup[]): string {
  const sections = groups.map(
    (g) => `${g.title}:\n${aligned(g.commands.map((c) => [c.path.join(' '), c.summary] as const))}`,
  );
  return `modelkeep — a self-hosted ML model registry

Usage: modelkeep <command> [arguments] [flags]

${sections.join('\n\n')}

Common flags (every online command):
${aligned([
  ...Object.entries(COMMON_OPTIONS).map(([n, o]) => [flagLabel(n, o), o.description] as const),
  ['    --version', 'print the CLI version'] as const,
])}

Environment:
  MODELKEEP_SERVER       default for --server
  MODELKEEP_CONFIG_DIR   where credentials.json lives (default ~/.config/modelkeep)
  MODELKEEP_DATA_DIR     default for --data-dir (serve, admin create-user, audit verify)
  MODELKEEP_DATABASE_URL postgres://… selects PostgreSQL (serve, admin create-user, audit verify)

${EXIT_CODES_TEXT}
Run \`modelkeep <command> --help\` for its flags and an example.
`;
}

export function groupHelp(word: string, commands: readonly CommandDef[]): string {
  return `Usage: modelkeep ${word} <subcommand> [arguments] [flags]

${aligned(commands.map((c) => [c.path.join(' '), c.summary] as const))}

Run \`modelkeep ${word} <subcommand> --help\` for its flags and an example.
`;
}

export function commandHelp(def: CommandDef): string {
  const common = def.offline
    ? { json: COMMON_OPTIONS.json!, help: COMMON_OPTIONS.help! }
    : COMMON_OPTIONS;
  const flags = Object.entries({ ...def.options, ...common }).map(([n, o]) => [flagLabel(n, o), o.description] as const);
  const usage = `modelkeep ${def.path.join(' ')}${def.usage ? ` ${def.usage}` : ''}${def.offline ? '' : ' [--server URL]'} [--json]`;
  return `Usage: ${usage}

${def.summary[0]?.toUpperCase() ?? ''}${def.summary.slice(1)}.
${def.description ? `\n${def.description}\n` : ''}
Flags:
${aligned(flags)}

Example${def.examples.length > 1 ? 's' : ''}:
${def.examples.map((e) => `  ${e}`).join('\n')}

Exit codes: 0 ok, 1 error, 2 bad input, 3 not authenticated, 4 not allowed, 5 not found, 6 conflict
(see \`modelkeep --help\`).
`;
}

// The shape of a CLI command and the argument parsing every command shares
// (node:util parseArgs, strict: unknown flags are usage errors).

import { parseArgs } from 'node:util';
import { usageError } from './errors.ts';
import type { Io } from './output.ts';

export interface OptionDef {
  type: 'string' | 'boolean';
  multiple?: boolean;
  short?: string;
  /** Shown in help as `--name VALUE`. */
  valueName?: string;
  description: string;
}

export interface CommandDef {
  /** Words that select it: ['projects', 'create']. */
  path: readonly string[];
  summary: string;
  /** e.g. 'NAME [--description D]' (after the command words and before the common flags). */
  usage: string;
  description?: string;
  examples: readonly string[];
  options: Readonly<Record<string, OptionDef>>;
  positionals: { min: number; max: number };
  /** Commands that never talk to a server do not show --server. */
  offline?: boolean;
  run(ctx: CommandContext): Promise<number | undefined>;
}

export type OptionValue = string | boolean | (string | boolean)[] | undefined;

export interface CommandContext {
  readonly io: Io;
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: NodeJS.ReadStream;
  readonly values: Readonly<Record<string, OptionValue>>;
  readonly positionals: readonly string[];
  readonly json: boolean;
  readonly server: string;
  /** The command words, e.g. 'projects create' (for hints). */
  readonly command: string;
}

export const COMMON_OPTIONS: Readonly<Record<string, OptionDef>> = {
  server: {
    type: 'string',
    valueName: 'URL',
    description: 'server to talk to (default: $MODELKEEP_SERVER, else http://127.0.0.1:7470)',
  },
  json: { type: 'boolean', description: "print the server's JSON instead of a table" },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export interface ParsedArgs {
  values: Record<string, OptionValue>;
  positionals: string[];
}

export function parseCommandArgs(def: CommandDef, args: readonly string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, o] of Object.entries({ ...COMMON_OPTIONS, ...def.options })) {
    options[name] = {
      type: o.type,
      ...(o.multiple ? { multiple: true } : {}),
      ...(o.short === undefined ? {} : { short: o.short }),
    };
  }
  let parsed: { values: Record<string, OptionValue>; positionals: string[] };
  try {
    parsed = parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err);
    throw usageError(message.replace(/\. To specify a positional.*$/, ''), `see \`modelkeep ${def.path.join(' ')} --help\``);
  }
  if (parsed.values.help) return parsed;
  const n = parsed.positionals.length;
  if (n < def.positionals.min || n > def.positionals.max) {
    const extra = parsed.positionals[def.positionals.max];
    const message =
      n > def.positionals.max
        ? `unexpected argument '${extra}'`
        : `missing argument: modelkeep ${def.path.join(' ')} ${def.usage}`;
    throw usageError(message, `see \`modelkeep ${def.path.join(' ')} --help\``);
  }
  return parsed;
}

/** A string flag's value, or undefined when absent. */
export function optString(ctx: CommandContext, name: string): string | undefined {
  const v = ctx.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function reqString(ctx: CommandContext, name: string): string {
  const v = optString(ctx, name);
  if (v === undefined || v === '') throw usageError(`--${name} is required`, `see \`modelkeep ${ctx.command} --help\``);
  return v;
}

export function optFlag(ctx: CommandContext, name: string): boolean {
  return ctx.values[name] === true;
}

export function optList(ctx: CommandContext, name: string): string[] {
  const v = ctx.values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export function positional(ctx: CommandContext, i: number): string {
  const v = ctx.positionals[i];
  if (v === undefined) throw usageError('missing argument');
  return v;
}

const GLOBAL_WITH_VALUE = new Set(['--server']);
const GLOBAL_FLAGS = new Set(['--json', '--help', '-h', '--version']);

/** Moves common flags written before the command (`modelkeep --server X projects list`) after it. */
export function hoistGlobalFlags(argv: readonly string[]): string[] {
  const leading: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i] ?? '';
    if (GLOBAL_FLAGS.has(a) || a.startsWith('--server=')) {
      leading.push(a);
      i++;
    } else if (GLOBAL_WITH_VALUE.has(a) && i + 1 < argv.length) {
      leading.push(a, argv[i + 1] ?? '');
      i += 2;
    } else break;
  }
  const rest = argv.slice(i);
  const words: string[] = [];
  while (words.length < 2 && rest.length > 0 && !(rest[0] ?? '').startsWith('-')) words.push(rest.shift() ?? '');
  return [...words, ...rest, ...leading];
}

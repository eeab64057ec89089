import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CommandDef, hoistGlobalFlags, parseCommandArgs } from './command.ts';
import { CliError } from './errors.ts';

const def: CommandDef = {
  path: ['things', 'make'],
  summary: 'make a thing',
  usage: 'NAME [--size N]',
  examples: ['modelkeep things make x'],
  options: { size: { type: 'string', description: 'size' }, tag: { type: 'string', multiple: true, description: 'tag' } },
  positionals: { min: 1, max: 1 },
  run: async () => 0,
};

test('parseCommandArgs: flags, repeatable flags, common flags', () => {
  const p = parseCommandArgs(def, ['x', '--size', '3', '--tag', 'a', '--tag', 'b', '--json', '--server', 'http://127.0.0.1:1']);
  assert.deepEqual(p.positionals, ['x']);
  assert.equal(p.values.size, '3');
  assert.deepEqual(p.values.tag, ['a', 'b']);
  assert.equal(p.values.json, true);
});

test('parseCommandArgs: usage errors are exit 2', () => {
  for (const args of [['x', '--nope'], [], ['x', 'y'], ['x', '--size']]) {
    assert.throws(() => parseCommandArgs(def, args), (e: unknown) => e instanceof CliError && e.exitCode === 2, args.join(' '));
  }
  assert.equal(parseCommandArgs(def, ['--help']).values.help, true, '--help needs no positionals');
});

test('hoistGlobalFlags moves leading common flags after the command words', () => {
  assert.deepEqual(hoistGlobalFlags(['--server', 'U', '--json', 'projects', 'list']), ['projects', 'list', '--server', 'U', '--json']);
  assert.deepEqual(hoistGlobalFlags(['pull', 'p/m@1', '--out', 'x']), ['pull', 'p/m@1', '--out', 'x']);
  assert.deepEqual(hoistGlobalFlags(['--help']), ['--help']);
});

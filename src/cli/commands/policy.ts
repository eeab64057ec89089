// `policy validate|test|matrix`: policies as code, offline. Each loads the folder exactly
// as the server does (schema validation in strict mode, refused as a whole on any error).

import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  accessMatrix,
  type CedarEngine,
  FixtureError,
  type FixtureFile,
  formatProblem,
  loadFixtures,
  matrixDiff,
  runFixtures,
  unexercisedPolicies,
  validatePolicyFolder,
} from '../../authz/index.ts';
import { type CommandContext, type CommandDef, optFlag, optString } from '../command.ts';
import { CliError, EXIT, usageError } from '../errors.ts';
import { print, renderJson, safeText } from '../output.ts';

/** The policies shipped with this installation, wherever the command runs from. */
const BUNDLED_POLICIES = fileURLToPath(new URL('../../../policies/', import.meta.url));
const BUNDLED_MATRIX = fileURLToPath(new URL('../../../docs/ACCESS-MATRIX.md', import.meta.url));

const policiesOption = {
  type: 'string',
  valueName: 'DIR',
  description: 'policy folder: schema.cedarschema and *.cedar files (default: the policies/ shipped with modelkeep)',
} as const;

function policiesDir(ctx: CommandContext): string {
  const dir = optString(ctx, 'policies') ?? BUNDLED_POLICIES;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usageError(`no policy folder at ${safeText(dir)}`, 'pass --policies DIR');
  return dir;
}

/** Loads and validates; a refused set is an input error (exit 2) listing file:line problems. */
function loadEngine(ctx: CommandContext, dir: string): CedarEngine {
  const r = validatePolicyFolder(dir);
  if (r.ok) return r.engine;
  if (ctx.json) print(ctx.io, renderJson({ valid: false, problems: r.problems }));
  else for (const p of r.problems) ctx.io.stderr.write(`${safeText(formatProblem(p))}\n`);
  throw new CliError(
    `policy set in ${safeText(dir)} refused: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'}`,
    EXIT.badInput,
    'fix the files named above; the server refuses the same set at load and at reload',
  );
}

export const policyValidate: CommandDef = {
  path: ['policy', 'validate'],
  summary: 'parse the policies and validate them against the schema',
  usage: '[--policies DIR]',
  description:
    'Loads the folder exactly as the server does: schema.cedarschema and every *.cedar file, each policy validated\n' +
    'against the schema in strict mode. Prints every problem as FILE:LINE:COLUMN: MESSAGE and exits 2 when the set\n' +
    'would be refused; otherwise prints the policy version (sha256 of the set) that decisions and audit events carry.',
  examples: ['modelkeep policy validate', 'modelkeep policy validate --policies /etc/modelkeep/policies'],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: { policies: policiesOption },
  async run(ctx) {
    const dir = policiesDir(ctx);
    const engine = loadEngine(ctx, dir);
    const summary = { valid: true, policyVersion: engine.policyVersion, policies: engine.policyIds.length, files: engine.files };
    print(
      ctx.io,
      ctx.json
        ? renderJson(summary)
        : `OK: ${engine.policyIds.length} policies in ${engine.files.length} files; policy version ${engine.policyVersion}\n`,
    );
    return EXIT.ok;
  },
};

export const policyTest: CommandDef = {
  path: ['policy', 'test'],
  summary: 'decide every fixture and compare with its expected decision',
  usage: '[--policies DIR] [--fixtures DIR]',
  description:
    'Each fixture file (*.json) is an array of {name, principal:{roles,type?,id?}, action, resource:{type,…},\n' +
    'context?, expected:"allow"|"deny"} (see docs/policies.md). Prints PASS or FAIL per fixture, then totals and\n' +
    'the policies no fixture exercised. Exits 1 when any fixture fails, 2 when the policies or fixtures are malformed.',
  examples: ['modelkeep policy test', 'modelkeep policy test --policies ./policies --fixtures ./policies/tests --json'],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: {
    policies: policiesOption,
    fixtures: { type: 'string', valueName: 'DIR', description: 'fixture folder (default: DIR/tests of the policy folder)' },
  },
  async run(ctx) {
    const dir = policiesDir(ctx);
    const fixturesDir = optString(ctx, 'fixtures') ?? join(dir, 'tests');
    if (!existsSync(fixturesDir) || !statSync(fixturesDir).isDirectory()) {
      throw usageError(`no fixture folder at ${safeText(fixturesDir)}`, 'pass --fixtures DIR');
    }
    const engine = loadEngine(ctx, dir);
    let sets: FixtureFile[];
    try {
      sets = loadFixtures(fixturesDir);
    } catch (err) {
      if (err instanceof FixtureError) throw usageError(`bad fixture: ${safeText(err.message)}`);
      throw err;
    }
    const results = runFixtures(engine, sets);
    if (results.length === 0) throw usageError(`no fixtures in ${safeText(fixturesDir)}`, 'fixtures are *.json files holding an array of fixtures');
    const failed = results.filter((r) => !r.pass);
    const unexercised = unexercisedPolicies(engine, results);
    if (ctx.json) {
      print(
        ctx.io,
        renderJson({ policyVersion: engine.policyVersion, total: results.length, passed: results.length - failed.length, failed: failed.length, unexercised, results }),
      );
    } else {
      const lines: string[] = [];
      for (const r of results) {
        lines.push(`${r.pass ? 'PASS' : 'FAIL'} ${r.file}: ${r.name}`);
        if (r.pass) continue;
        const why = [r.reasons.length > 0 ? `policies: ${r.reasons.join(', ')}` : 'no policy matched', ...r.errors].join('; ');
        lines.push(`     expected ${r.expected}, got ${r.actual} (${why})`);
      }
      lines.push('');
      lines.push(`${results.length - failed.length} passed, ${failed.length} failed, ${results.length} fixtures; policy version ${engine.policyVersion}`);
      if (unexercised.length > 0) lines.push(`policies no fixture exercised: ${unexercised.join(', ')}`);
      print(ctx.io, `${lines.map((l) => (l === '' ? l : safeText(l))).join('\n')}\n`);
    }
    if (failed.length > 0) throw new CliError(`${failed.length} of ${results.length} fixtures failed`, EXIT.failure);
    return EXIT.ok;
  },
};

export const policyMatrix: CommandDef = {
  path: ['policy', 'matrix'],
  summary: 'generate the access matrix (role × action) from the policies',
  usage: '[--policies DIR] [--out FILE] [--check]',
  description:
    'Evaluates every role (the six project roles, platform-admin and service accounts) against every action and\n' +
    'representative resources and contexts (production vs other stages with fresh or stale MFA, restricted vs\n' +
    'internal downloads with and without an MFA session, production vs dev deployments, self-binding, token\n' +
    'scopes) and prints Markdown, or writes it to --out. The output is deterministic: no timestamps.\n' +
    'With --check, compares instead of writing (default file: the docs/ACCESS-MATRIX.md shipped with modelkeep),\n' +
    'prints the differing lines and exits 1 when the file is not what the policies decide.',
  examples: [
    'modelkeep policy matrix --out docs/ACCESS-MATRIX.md',
    'modelkeep policy matrix --check',
    'modelkeep policy matrix --policies ./policies --out /tmp/matrix.md',
  ],
  offline: true,
  positionals: { min: 0, max: 0 },
  options: {
    policies: policiesOption,
    out: { type: 'string', valueName: 'FILE', description: 'write the matrix here (default: standard output); with --check, the file to compare' },
    check: { type: 'boolean', description: 'compare with FILE instead of writing; exit 1 when it differs' },
  },
  async run(ctx) {
    const dir = policiesDir(ctx);
    const engine = loadEngine(ctx, dir);
    const generated = accessMatrix(engine);
    const out = optString(ctx, 'out');
    if (optFlag(ctx, 'check')) {
      const file = out ?? BUNDLED_MATRIX;
      if (!existsSync(file)) throw usageError(`no access matrix at ${safeText(file)}`, 'generate it with `modelkeep policy matrix --out FILE`');
      const diff = matrixDiff(readFileSync(file, 'utf8'), generated);
      if (ctx.json) print(ctx.io, renderJson({ upToDate: diff.length === 0, file, policyVersion: engine.policyVersion, diff }));
      if (diff.length === 0) {
        if (!ctx.json) print(ctx.io, `OK: ${file} matches policy version ${engine.policyVersion}\n`);
        return EXIT.ok;
      }
      if (!ctx.json) {
        const shown = diff.slice(0, 40);
        ctx.io.stderr.write(`${shown.map(safeText).join('\n')}\n${diff.length > shown.length ? `… ${diff.length - shown.length} more\n` : ''}`);
      }
      throw new CliError(
        `${safeText(file)} differs from what the policies decide (${diff.length} line${diff.length === 1 ? '' : 's'})`,
        EXIT.failure,
        `regenerate it: modelkeep policy matrix${optString(ctx, 'policies') ? ` --policies ${safeText(dir)}` : ''} --out ${safeText(file)}`,
      );
    }
    if (out === undefined) {
      print(ctx.io, generated);
      return EXIT.ok;
    }
    writeFileSync(out, generated);
    if (!ctx.json) print(ctx.io, `wrote ${safeText(out)} (policy version ${engine.policyVersion})\n`);
    else print(ctx.io, renderJson({ file: out, policyVersion: engine.policyVersion }));
    return EXIT.ok;
  },
};

// The `modelkeep` command: parses argv, finds the command, runs it, and turns any
// failure into one line on stderr and an exit code (docs/cli.md "Exit codes").

import { isModelkeepError } from '../core/index.ts';
import { type CommandContext, type CommandDef, hoistGlobalFlags, parseCommandArgs } from './command.ts';
import { COMMANDS, GROUPS } from './commands/index.ts';
import { normalizeServer } from './credentials.ts';
import { ApiError, CliError, EXIT, usageError } from './errors.ts';
import { commandHelp, groupHelp, topHelp } from './help.ts';
import { type Io, safeText } from './output.ts';
import { loginHint } from './session.ts';
import { cliVersion } from './version.ts';

const DEFAULT_SERVER = 'http://127.0.0.1:7470';
const MFA_REQUIRED_HINT =
  'confirm your second factor, then retry: `modelkeep mfa step-up` for a password login; for a device login, `modelkeep login` again, approved right after your second factor';

function findCommand(words: readonly string[]): { def: CommandDef; used: number } | null {
  for (const def of COMMANDS) {
    if (def.path.every((w, i) => words[i] === w)) return { def, used: def.path.length };
  }
  return null;
}

export async function main(argv: readonly string[], io: Io, env: NodeJS.ProcessEnv, stdin: NodeJS.ReadStream): Promise<number> {
  let server = env.MODELKEEP_SERVER || DEFAULT_SERVER;
  try {
    const args = hoistGlobalFlags(argv);
    const first = args[0];
    if (first === undefined || first.startsWith('-')) {
      if (args.includes('--version')) {
        io.stdout.write(`modelkeep ${cliVersion()} (node ${process.versions.node})\n`);
        return EXIT.ok;
      }
      if (args.includes('--help') || args.includes('-h')) {
        io.stdout.write(topHelp(GROUPS));
        return EXIT.ok;
      }
      io.stderr.write(topHelp(GROUPS));
      return EXIT.badInput;
    }
    const found = findCommand(args);
    if (!found) {
      const group = COMMANDS.filter((c) => c.path.length > 1 && c.path[0] === first);
      if (group.length > 0) {
        const second = args[1];
        if (second === undefined || second.startsWith('-')) {
          const wantsHelp = args.includes('--help') || args.includes('-h');
          (wantsHelp ? io.stdout : io.stderr).write(groupHelp(first, group));
          return wantsHelp ? EXIT.ok : EXIT.badInput;
        }
        throw usageError(`unknown command 'modelkeep ${first} ${second}'`, `run \`modelkeep ${first} --help\``);
      }
      throw usageError(`unknown command '${first}'`, 'run `modelkeep --help`');
    }
    const { def, used } = found;
    const parsed = parseCommandArgs(def, args.slice(used));
    if (parsed.values.help === true) {
      io.stdout.write(commandHelp(def));
      return EXIT.ok;
    }
    const rawServer = typeof parsed.values.server === 'string' ? parsed.values.server : env.MODELKEEP_SERVER || DEFAULT_SERVER;
    if (!def.offline) server = normalizeServer(rawServer, env);
    const ctx: CommandContext = {
      io,
      env,
      stdin,
      values: parsed.values,
      positionals: parsed.positionals,
      json: parsed.values.json === true,
      server: def.offline ? '' : server,
      command: def.path.join(' '),
    };
    return (await def.run(ctx)) ?? EXIT.ok;
  } catch (err) {
    return report(io, err, server);
  }
}

function report(io: Io, err: unknown, server: string): number {
  let message: string;
  let hint: string | undefined;
  let code: number;
  if (err instanceof CliError) {
    message = err.message;
    hint = err.hint;
    code = err.exitCode;
    if (err instanceof ApiError) {
      // a 401 other than a wrong password means the saved session is gone or expired
      if (err.status === 401 && err.code !== 'invalid_credentials') hint = loginHint(server);
      // The server's hints name API routes; the CLI has commands for them.
      if (err.code === 'mfa_enrollment_required') hint = 'run `modelkeep mfa enroll` (or set up a second factor in the console)';
      if (err.status === 428 && err.code === 'mfa_required') hint = MFA_REQUIRED_HINT;
      if (err.requestId) message += ` (request ${safeText(err.requestId)})`;
    }
  } else if (isModelkeepError(err)) {
    // the server's own code, run in-process by serve / admin create-user
    message = err.message;
    hint = err.hint;
    code = err.code === 'invalid_input' ? EXIT.badInput : EXIT.failure;
  } else {
    message = `unexpected error: ${err instanceof Error ? err.message : String(err)}`;
    code = EXIT.failure;
  }
  io.stderr.write(`modelkeep: ${message}\n`);
  if (hint) io.stderr.write(`hint: ${hint}\n`);
  return code;
}

// `modelkeep … | head` closes the pipe early: that is the reader's choice, not an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr }, process.env, process.stdin);

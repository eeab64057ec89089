// Reading passwords and codes: the first line of stdin (--password-stdin), or a prompt
// on the terminal with echo off. A secret is never taken from argv, where `ps` and the
// shell history would keep it.

import { usageError } from './errors.ts';

const MAX_SECRET_BYTES = 4096;

/** The first line of a non-interactive stdin, without its line ending. */
export async function readFirstLine(stdin: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const nl = b.indexOf(0x0a);
    chunks.push(nl >= 0 ? b.subarray(0, nl) : b);
    size += b.length;
    if (nl >= 0) break;
    if (size > MAX_SECRET_BYTES) throw usageError('the line read from stdin is too long');
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r$/, '');
}

/** Prompts on the terminal with echo off; resolves with what was typed before Enter. */
export function promptHidden(prompt: string, stdin: NodeJS.ReadStream, out: NodeJS.WritableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    out.write(prompt);
    let typed = '';
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const finish = (err: Error | null) => {
      stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.off('data', onData);
      out.write('\n');
      if (err) reject(err);
      else resolve(typed);
    };
    const onData = (data: string) => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish(null);
        if (ch === '\u0003') return finish(usageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
        if (typed.length > MAX_SECRET_BYTES) return finish(usageError('input too long'));
      }
      return undefined;
    };
    stdin.on('data', onData);
  });
}

export interface SecretSource {
  stdin: NodeJS.ReadStream;
  stderr: NodeJS.WritableStream;
  /** --password-stdin was given. */
  fromStdin: boolean;
}

/**
 * A password: from stdin with --password-stdin, else from a hidden prompt when stdin is
 * a terminal. Refuses an empty one.
 */
export async function readPassword(src: SecretSource, prompt = 'Password: ', confirm = false): Promise<string> {
  let password: string;
  if (src.stdin.isTTY) {
    password = await promptHidden(prompt, src.stdin, src.stderr);
    if (confirm && password !== '') {
      const again = await promptHidden('Repeat it: ', src.stdin, src.stderr);
      if (again !== password) throw usageError('the two passwords differ');
    }
  } else if (src.fromStdin) {
    password = await readFirstLine(src.stdin);
  } else {
    throw usageError('no password given', 'pass --password-stdin and write the password to standard input');
  }
  if (password === '') throw usageError('the password is empty');
  return password;
}

/**
 * A one-time code: `given` (a flag: single-use and short-lived, so argv is acceptable), else a
 * prompt on the terminal; without a terminal, exit 2 with `hint`. 6 to 8 digits (spaces ignored).
 */
export async function readOneTimeCode(src: Omit<SecretSource, 'fromStdin'>, given: string | undefined, prompt: string, hint: string): Promise<string> {
  let code: string;
  if (given !== undefined) code = given;
  else if (src.stdin.isTTY) code = await promptHidden(prompt, src.stdin, src.stderr);
  else throw usageError('a one-time code is needed and there is no terminal to type it in', hint);
  code = code.replace(/\s/g, '');
  if (!/^[0-9]{6,8}$/.test(code)) throw usageError('a one-time code is 6 to 8 digits', 'type the code your authenticator app shows now');
  return code;
}

// `users create|list|deactivate` (platform admins).

import { apiPath } from '../client.ts';
import { type CommandDef, optFlag, optString, positional } from '../command.ts';
import { CliError, EXIT } from '../errors.ts';
import { col, print, printList, type Row, renderJson, rowsOf, safeText } from '../output.ts';
import { readPassword } from '../secret-input.ts';
import { signedInClient } from '../session.ts';

export const usersCreate: CommandDef = {
  path: ['users', 'create'],
  summary: 'create an account (platform admin)',
  usage: 'NAME [--email E] --password-stdin',
  description: 'The password is the first line of standard input (or a hidden prompt on a terminal).',
  examples: ["printf '%s\\n' \"$PW\" | modelkeep users create bob --email bob@example.com --password-stdin"],
  positionals: { min: 1, max: 1 },
  options: {
    email: { type: 'string', valueName: 'E', description: 'e-mail address' },
    'password-stdin': { type: 'boolean', description: 'read the password from standard input' },
  },
  async run(ctx) {
    const username = positional(ctx, 0);
    const email = optString(ctx, 'email');
    const client = await signedInClient(ctx);
    const password = await readPassword(
      { stdin: ctx.stdin, stderr: ctx.io.stderr, fromStdin: optFlag(ctx, 'password-stdin') },
      `Password for ${username}: `,
      true,
    );
    const body = await client.json<Row>('POST', '/v1/admin/users', {
      json: { username, password, ...(email === undefined ? {} : { email }) },
    });
    print(ctx.io, ctx.json ? renderJson(body) : `created user ${safeText(body.username)} (${safeText(body.id)})\n`);
    return EXIT.ok;
  },
};

const COLUMNS = [
  col('USERNAME', 'username'),
  col('ID', 'id'),
  col('EMAIL', 'email'),
  col('STATUS', 'status'),
  col('CREATED', 'createdAt'),
];

export const usersList: CommandDef = {
  path: ['users', 'list'],
  summary: 'list accounts (platform admin)',
  usage: '',
  examples: ['modelkeep users list'],
  positionals: { min: 0, max: 0 },
  options: {},
  async run(ctx) {
    const client = await signedInClient(ctx);
    printList(ctx.io, ctx.json, await client.json('GET', '/v1/admin/users'), 'users', COLUMNS);
    return EXIT.ok;
  },
};

export const usersDeactivate: CommandDef = {
  path: ['users', 'deactivate'],
  summary: 'deactivate an account and revoke its sessions and tokens (platform admin)',
  usage: 'NAME-or-ID',
  examples: ['modelkeep users deactivate bob'],
  positionals: { min: 1, max: 1 },
  options: {},
  async run(ctx) {
    const who = positional(ctx, 0);
    const client = await signedInClient(ctx);
    const users = rowsOf(await client.json('GET', '/v1/admin/users'), 'users');
    const user = users.find((u) => u.id === who) ?? users.find((u) => u.username === who);
    if (!user || typeof user.id !== 'string') throw new CliError(`user '${safeText(who)}' not found`, EXIT.notFound);
    const body = await client.json('POST', apiPath('v1', 'admin', 'users', user.id, 'deactivate'));
    print(ctx.io, ctx.json ? renderJson(body) : `deactivated user ${safeText(user.username)} (${safeText(user.id)})\n`);
    return EXIT.ok;
  },
};

// `pull`: download every artifact of a version into a folder, verifying each SHA-256
// before the file appears under its name.

import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { isSha256Hex } from '../../core/index.ts';
import { encodeArtifactPath, errorFromResponse, headerValue } from '../client.ts';
import { type CommandDef, optString, positional } from '../command.ts';
import { CliError, EXIT } from '../errors.ts';
import { formatBytes, note, print, renderJson, safeText } from '../output.ts';
import { createProgress } from '../progress.ts';
import { parseVersionRef } from '../refs.ts';
import { ensureParentDirs, resolveOutputPath } from '../safe-output-path.ts';
import { signedInClient } from '../session.ts';
import { getVersion, resolveVersion, versionPath } from './versions.ts';

function integrityError(path: string, why: string): CliError {
  return new CliError(`download of ${safeText(path)} failed verification: ${why}`, EXIT.failure, 'nothing was written under that name; retry the pull');
}

export const pull: CommandDef = {
  path: ['pull'],
  summary: 'download a version into a folder, verifying every SHA-256',
  usage: 'PROJECT/MODEL@N|@staging|@production [--out DIR]',
  description:
    'Downloads every artifact to a temporary file inside --out, checks its size and SHA-256 against the version\n' +
    'metadata, then renames it into place; a download that is cut off, fails verification or is interrupted\n' +
    '(Ctrl-C) leaves no file under the artifact\'s name and removes its temporary file.\n' +
    '@staging and @production pick the newest version in that stage. Progress goes to stderr: a bar on a\n' +
    'terminal, one line per file otherwise; stdout holds only the result (--json: one JSON document).\n' +
    'Artifact paths that would land outside --out (absolute, .., backslashes, symlinked folders) are refused.',
  examples: ['modelkeep pull fraud/churn@production --out ./model', 'modelkeep pull fraud/churn@3'],
  positionals: { min: 1, max: 1 },
  options: {
    out: { type: 'string', short: 'o', valueName: 'DIR', description: 'target folder (default: ./PROJECT-MODEL-vN)' },
  },
  async run(ctx) {
    const ref = parseVersionRef(positional(ctx, 0), true);
    const client = await signedInClient(ctx);
    const version = await resolveVersion(client, ref);
    const v = await getVersion(client, ref.project, ref.model, version);
    const out = resolve(optString(ctx, 'out') ?? `${ref.project}-${ref.model}-v${version}`);

    // check every path the server named before writing anything
    const seen = new Set<string>();
    const plan = v.artifacts.map((a) => {
      const target = resolveOutputPath(out, a.path);
      if (seen.has(target)) throw new CliError(`the server listed ${safeText(a.path)} twice`, EXIT.failure);
      seen.add(target);
      if (!isSha256Hex(a.sha256)) throw new CliError(`the server gave no valid SHA-256 for ${safeText(a.path)}`, EXIT.failure);
      if (!Number.isSafeInteger(a.size) || a.size < 0) throw new CliError(`the server gave no valid size for ${safeText(a.path)}`, EXIT.failure);
      return { ...a, target };
    });
    if (v.state !== undefined && v.state !== 'ready') {
      note(ctx.io, `modelkeep: ${ref.project}/${ref.model}@${version} is a ${safeText(v.state)} version; its content may still change`);
    }

    await mkdir(out, { recursive: true });
    const total = plan.reduce((n, a) => n + a.size, 0);
    const progress = createProgress(ctx.io.stderr, 'downloaded', total);
    const base = versionPath(ref.project, ref.model, version);
    // Ctrl-C (or a TERM from a supervisor) mid-download: remove the temporary file before going.
    let partial: string | null = null;
    const onSignal = (signal: NodeJS.Signals) => {
      if (partial !== null) rmSync(partial, { force: true });
      progress.finish();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.on('SIGINT', onSignal).on('SIGTERM', onSignal);
    try {
    for (const a of plan) {
      await ensureParentDirs(out, a.path);
      progress.file(a.path, 'downloading');
      const res = await client.send('GET', `${base}/artifacts/${encodeArtifactPath(a.path)}`, {
        headers: { Accept: 'application/octet-stream, application/json' },
      });
      if (res.statusCode !== 200) {
        progress.finish();
        const err = await errorFromResponse(res);
        throw new CliError(`download of ${safeText(a.path)} failed: ${err.message}`, err.exitCode, err.hint);
      }
      const announced = headerValue(res.headers['x-content-sha256']);
      if (announced !== undefined && announced.toLowerCase() !== a.sha256) {
        res.destroy();
        progress.finish();
        throw integrityError(a.path, 'the server sent a different digest than the version lists');
      }
      const tmp = join(out, `.modelkeep-${randomBytes(8).toString('hex')}.part`);
      partial = tmp;
      const hash = createHash('sha256');
      let bytes = 0;
      try {
        await pipeline(
          res,
          async function* (source: AsyncIterable<Buffer>) {
            for await (const chunk of source) {
              bytes += chunk.length;
              // a server that sends more than it listed must not be able to fill the disk
              if (bytes > a.size) throw integrityError(a.path, `more than the listed ${a.size} bytes`);
              hash.update(chunk);
              progress.advance(chunk.length);
              yield chunk;
            }
          },
          // 'wx': never write through a file or symlink planted under the temporary name
          createWriteStream(tmp, { flags: 'wx', mode: 0o644 }),
        );
        if (bytes !== a.size) throw integrityError(a.path, `received ${bytes} bytes, expected ${a.size}`);
        const got = hash.digest('hex');
        if (got !== a.sha256) throw integrityError(a.path, `SHA-256 is ${got}, expected ${a.sha256}`);
        await rename(tmp, a.target);
        partial = null;
      } catch (err) {
        progress.finish();
        await rm(tmp, { force: true });
        partial = null;
        if (err instanceof CliError) throw err;
        throw new CliError(`download of ${safeText(a.path)} failed: ${err instanceof Error ? safeText(err.message) : 'error'}`, EXIT.failure);
      }
      progress.fileDone(a.path, a.size, 'sha256 ok');
    }
    } finally {
      process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    }
    progress.finish();
    if (ctx.json) {
      print(
        ctx.io,
        renderJson({
          project: ref.project,
          model: ref.model,
          version,
          out,
          artifacts: v.artifacts,
        }),
      );
    } else {
      print(ctx.io, `pulled ${ref.project}/${ref.model}@${version} (${plan.length} file(s), ${formatBytes(total)}) into ${out}\n`);
    }
    return EXIT.ok;
  },
};

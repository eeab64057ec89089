// `push`: create a version, upload every file streaming from disk, then finalize it.

import { createHash } from 'node:crypto';
import { constants, type ReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { type ApiClient, encodeArtifactPath, errorFromResponse, readJsonResponse } from '../client.ts';
import { type CommandDef, optString, positional, reqString } from '../command.ts';
import { CliError, EXIT } from '../errors.ts';
import { collectFiles, type LocalFile } from '../local-tree.ts';
import { formatBytes, note, print, type Row, renderJson, safeText } from '../output.ts';
import { createProgress, type Progress } from '../progress.ts';
import { checkName } from '../refs.ts';
import { signedInClient } from '../session.ts';
import { versionPath } from './versions.ts';

// O_NOFOLLOW: a file swapped for a symlink after the folder was listed is not followed
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0);

function rangeStream(fh: FileHandle, size: number): ReadStream {
  return fh.createReadStream({ start: 0, end: size - 1, autoClose: false });
}

async function sha256Of(fh: FileHandle, size: number): Promise<{ hex: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  if (size > 0) {
    for await (const chunk of rangeStream(fh, size)) {
      const b = chunk as Buffer;
      bytes += b.length;
      hash.update(b);
    }
  }
  return { hex: hash.digest('hex'), bytes };
}

async function uploadOne(client: ApiClient, base: string, f: LocalFile, progress: Progress): Promise<Row> {
  let fh: FileHandle;
  try {
    fh = await open(f.file, OPEN_FLAGS);
  } catch (err) {
    const why = err instanceof Error && 'code' in err && err.code === 'ELOOP' ? 'it is a symbolic link' : 'cannot open it';
    throw new CliError(`cannot push ${safeText(f.file)}: ${why}`, EXIT.badInput);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new CliError(`cannot push ${safeText(f.file)}: not a regular file`, EXIT.badInput);
    const size = st.size;
    progress.file(f.path, 'hashing');
    const digest = await sha256Of(fh, size);
    if (digest.bytes !== size) throw new CliError(`${safeText(f.file)} changed while it was read`, EXIT.failure);
    progress.file(f.path, 'uploading');
    const body = size > 0 ? rangeStream(fh, size) : undefined;
    body?.on('data', (chunk: Buffer | string) => progress.advance(chunk.length));
    const res = await client.send('PUT', `${base}/artifacts/${encodeArtifactPath(f.path)}`, {
      ...(body === undefined ? {} : { body }),
      headers: {
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(size),
        'X-Content-SHA256': digest.hex,
      },
    });
    if (res.statusCode !== 201 && res.statusCode !== 200) throw await errorFromResponse(res);
    const out = (await readJsonResponse(res)) as Row;
    progress.fileDone(f.path, size, `sha256 ${digest.hex.slice(0, 12)}…`);
    return out;
  } finally {
    await fh.close();
  }
}

export const push: CommandDef = {
  path: ['push'],
  summary: 'upload a folder or a file as a new model version',
  usage: '<dir|file> --project P --model M [--description D]',
  description:
    'Creates a draft version, uploads every regular file (recursively for a folder, named by their path relative\n' +
    'to it), then finalizes the version, which makes it immutable. Each file is hashed first and the server checks\n' +
    'the SHA-256. Symbolic links and names outside [A-Za-z0-9._+=@-] are refused before anything is sent.\n' +
    'Prints the new version number on stdout. When an upload fails the version stays an unfinalized draft.',
  examples: ['modelkeep push ./out/model --project fraud --model churn --description "weekly retrain"'],
  positionals: { min: 1, max: 1 },
  options: {
    project: { type: 'string', short: 'p', valueName: 'P', description: 'the project' },
    model: { type: 'string', short: 'm', valueName: 'M', description: 'the model' },
    description: { type: 'string', valueName: 'D', description: 'what changed in this version' },
  },
  async run(ctx) {
    const project = checkName(reqString(ctx, 'project'), 'project');
    const model = checkName(reqString(ctx, 'model'), 'model');
    const description = optString(ctx, 'description');
    // every local check runs before the server sees anything
    const files = await collectFiles(positional(ctx, 0));
    const total = files.reduce((n, f) => n + f.size, 0);

    const client = await signedInClient(ctx);
    const created = await client.json<Row>('POST', versionPath(project, model), {
      json: description === undefined ? {} : { description },
    });
    if (typeof created.version !== 'number') throw new CliError('the server answered a version without a number', EXIT.failure);
    const version = created.version;
    const base = versionPath(project, model, version);

    const progress = createProgress(ctx.io.stderr, 'uploaded', total);
    for (const f of files) {
      try {
        await uploadOne(client, base, f, progress);
      } catch (err) {
        progress.finish();
        note(ctx.io, `modelkeep: ${project}/${model}@${version} stays an unfinalized draft`);
        if (err instanceof CliError) {
          throw new CliError(`upload of ${safeText(f.path)} failed: ${err.message}`, err.exitCode, err.hint);
        }
        throw err;
      }
    }
    progress.finish();
    const finalized = await client.json<Row>('POST', `${base}/finalize`);
    note(ctx.io, `pushed ${files.length} file(s), ${formatBytes(total)}, to ${project}/${model}@${version}`);
    print(ctx.io, ctx.json ? renderJson(finalized) : `${version}\n`);
    return EXIT.ok;
  },
};

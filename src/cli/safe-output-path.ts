// Where `pull` may write. Artifact paths come from the server, and a hostile or
// compromised server must not be able to write outside --out (zip-slip): every path is
// checked by rule, then again after path.resolve, and no symlink is followed on the way.

import { lstat, mkdir } from 'node:fs/promises';
import { isAbsolute, join, resolve, sep } from 'node:path';
import { isModelkeepError, validateArtifactPath } from '../core/index.ts';
import { CliError, EXIT } from './errors.ts';
import { safeText } from './output.ts';

function refuse(path: string, why: string): CliError {
  return new CliError(`refusing to write artifact '${safeText(path)}': ${why}`, EXIT.failure);
}

/** The absolute file path `artifactPath` stands for inside `outDir`; throws when it would leave it. */
export function resolveOutputPath(outDir: string, artifactPath: string): string {
  if (artifactPath.includes('\\')) throw refuse(artifactPath, 'backslashes are not allowed');
  if (artifactPath.includes('\0')) throw refuse(artifactPath, 'NUL bytes are not allowed');
  if (isAbsolute(artifactPath) || /^[A-Za-z]:/.test(artifactPath)) throw refuse(artifactPath, 'absolute path');
  if (artifactPath.split('/').some((s) => s === '..')) throw refuse(artifactPath, "'..' is not allowed");
  try {
    validateArtifactPath(artifactPath);
  } catch (err) {
    throw refuse(artifactPath, isModelkeepError(err) ? err.message : 'invalid path');
  }
  const root = resolve(outDir);
  const target = resolve(root, artifactPath);
  // the rules above should make this impossible; check the outcome, not only the rules
  if (!target.startsWith(root + sep) || target === root) throw refuse(artifactPath, 'it resolves outside the output folder');
  return target;
}

/**
 * Creates the folders between `outDir` and the artifact's file, refusing to pass through
 * anything that is not a real folder: a symlink planted in --out could redirect writes.
 */
export async function ensureParentDirs(outDir: string, artifactPath: string): Promise<void> {
  const segments = artifactPath.split('/').slice(0, -1);
  let dir = resolve(outDir);
  for (const s of segments) {
    dir = join(dir, s);
    try {
      const st = await lstat(dir);
      if (st.isSymbolicLink()) throw refuse(artifactPath, `${safeText(dir)} is a symbolic link`);
      if (!st.isDirectory()) throw refuse(artifactPath, `${safeText(dir)} exists and is not a folder`);
    } catch (err) {
      if (err instanceof CliError) throw err;
      if (typeof err === 'object' && err !== null && 'code' in err && err.code === 'ENOENT') {
        await mkdir(dir);
      } else throw err;
    }
  }
}

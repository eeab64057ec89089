// What `push` uploads: every regular file under a folder (or one file), named by its
// path relative to that folder with '/' separators. Symlinks and names the server
// would refuse are reported before anything is created on the server.

import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isModelkeepError, validateArtifactPath } from '../core/index.ts';
import { usageError } from './errors.ts';
import { safeText } from './output.ts';

export interface LocalFile {
  /** The artifact path: relative, '/'-separated. */
  path: string;
  /** Where it is on disk. */
  file: string;
  size: number;
}

function checkPath(rel: string, file: string): void {
  try {
    validateArtifactPath(rel);
  } catch (err) {
    const why = isModelkeepError(err) ? err.message : 'invalid name';
    throw usageError(
      `cannot push ${safeText(file)}: ${why}`,
      'artifact names may use only letters, digits and . _ - + = @ in each folder and file name',
    );
  }
}

/** Lists the files to upload under `root` (a folder or one file), sorted by path. */
export async function collectFiles(root: string): Promise<LocalFile[]> {
  let top: Awaited<ReturnType<typeof stat>>;
  try {
    // the folder or file named on the command line is followed if it is a symlink:
    // the user chose it; links found inside it are refused below
    top = await stat(root);
  } catch {
    throw usageError(`cannot push ${safeText(root)}: no such file or folder`);
  }
  if (top.isFile()) {
    const name = basename(root);
    checkPath(name, root);
    return [{ path: name, file: root, size: top.size }];
  }
  if (!top.isDirectory()) throw usageError(`cannot push ${safeText(root)}: not a regular file or folder`);

  const out: LocalFile[] = [];
  const walk = async (dir: string, prefix: string) => {
    const entries = await readdir(dir);
    for (const name of entries) {
      const file = join(dir, name);
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      const st = await lstat(file);
      // a link could pull in files from outside the folder (~/.ssh, /etc) unnoticed
      if (st.isSymbolicLink()) throw usageError(`cannot push ${safeText(file)}: symbolic links are not uploaded`);
      if (st.isDirectory()) {
        checkPath(`${rel}/x`, file);
        await walk(file, rel);
      } else if (st.isFile()) {
        checkPath(rel, file);
        out.push({ path: rel, file, size: st.size });
      } else {
        throw usageError(`cannot push ${safeText(file)}: not a regular file`);
      }
    }
  };
  await walk(root, '');
  out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (out.length === 0) throw usageError(`nothing to push: ${safeText(root)} holds no files`);
  return out;
}

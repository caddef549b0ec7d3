/**
 * Output files (--trace, --report, --out): checked for writability before
 * any work starts, so a run or a sweep never loses its results to a bad
 * path at the end.
 */
import { closeSync, existsSync, openSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError } from '../tools/scenario/scenario.ts';

/**
 * Check that `path` can be written, by opening it for appending (which
 * neither truncates an existing file nor leaves a new one behind: a file
 * this check created is removed). Throws UsageError naming the option.
 */
export function checkWritable(option: string, path: string): void {
  if (path === '') throw new UsageError(`${option}: the file name is empty`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`${option} ${path}: is a folder, not a file`);
  const existed = existsSync(path);
  let fd: number;
  try {
    fd = openSync(path, 'a');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const dir = dirname(path);
    const why =
      code === 'ENOENT' ? (existsSync(dir) ? `files cannot be created in ${dir}` : `the folder ${dir} does not exist`)
      : code === 'ENOTDIR' ? `${dir} is not a folder`
      : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
      : code === 'EROFS' ? 'the file system is read-only'
      : (e as Error).message;
    throw new UsageError(`${option} ${path}: cannot write there (${why})`);
  }
  closeSync(fd);
  if (!existed) unlinkSync(path);
}

/**
 * File-system helpers every part of the project uses to create directories and to report
 * file-system failures. Lives at the bottom of the dependency graph (pure Node, no adapters) so
 * sim/record, nn, robot, viewer and cli can all use it.
 *
 * Why not `fs.mkdirSync(dir, {recursive: true})`: on Node 20 it never returns for a path under a
 * pseudo file system such as `/proc/forbidden/x` (mkdir of `/proc/forbidden` answers ENOENT although
 * `/proc` exists, and the recursive loop retries the parent forever at 100% CPU). `makeDirectory`
 * walks the parent chain itself, creating one level at a time, so every failure ends in one error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Create `dir` and any missing parents (like `mkdir -p`), one level at a time. Returns the resolved
 * path. Throws a Node errno error (code, syscall, path set) when a level cannot be created or an
 * existing level is not a directory; never loops.
 */
export function makeDirectory(dir: string): string {
  const target = path.resolve(dir);
  // Find the deepest existing ancestor; everything below it is created in order.
  const missing: string[] = [];
  let cur = target;
  for (;;) {
    const st = statOrNull(cur);
    if (st) {
      if (!st.isDirectory()) throw errnoError('ENOTDIR', 'mkdir', cur, 'not a directory');
      break;
    }
    missing.push(cur);
    const parent = path.dirname(cur);
    // The root always exists; a parent equal to itself means there is nothing left to walk.
    if (parent === cur) break;
    cur = parent;
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    const d = missing[i];
    try {
      fs.mkdirSync(d);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      // Another process made it between our stat and mkdir: fine if it is a directory.
      if (e.code === 'EEXIST' && statOrNull(d)?.isDirectory()) continue;
      e.path ??= d;
      throw e;
    }
  }
  return target;
}

function statOrNull(p: string): fs.Stats | null {
  try {
    return fs.statSync(p);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    throw err;
  }
}

/** Errno codes that are file-system failures (as opposed to programming errors). */
const CAUSES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  ENOENT: 'no such file or directory',
  EEXIST: 'already exists',
  EIO: 'input/output error',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ENAMETOOLONG: 'file name too long',
  ELOOP: 'too many levels of symbolic links',
  EFBIG: 'file too large',
  EBUSY: 'resource busy',
  ENOTEMPTY: 'directory not empty',
  EXDEV: 'cross-device link',
};

/** What each system call does, in words. */
const OPERATIONS: Record<string, string> = {
  open: 'open',
  read: 'read',
  write: 'write',
  mkdir: 'create directory',
  rename: 'rename into place',
  unlink: 'delete',
  rmdir: 'delete directory',
  rm: 'delete',
  scandir: 'list directory',
  stat: 'inspect',
  lstat: 'inspect',
  fsync: 'flush to disk',
  close: 'close',
  copyfile: 'copy',
  readlink: 'read link',
  symlink: 'create link',
  ftruncate: 'truncate',
  access: 'access',
};

/** True for a Node file-system error (an errno code this module knows, set by a system call). */
export function isFileSystemError(err: unknown): err is NodeJS.ErrnoException & { code: string } {
  const e = err as NodeJS.ErrnoException | null;
  return !!e && typeof e === 'object' && typeof e.code === 'string' && Object.hasOwn(CAUSES, e.code) && typeof e.syscall === 'string';
}

/**
 * One line naming the operation, the path and the cause, e.g.
 * `cannot write '/mnt/full/stack-3.evep.partial': no space left on device (ENOSPC)`.
 */
export function describeFileSystemError(err: NodeJS.ErrnoException & { code: string }): string {
  const op = OPERATIONS[err.syscall ?? ''] ?? err.syscall ?? 'access';
  const dest = (err as { dest?: string }).dest;
  const where = err.path ? ` '${err.path}'${dest ? ` to '${dest}'` : ''}` : '';
  return `cannot ${op}${where}: ${CAUSES[err.code]} (${err.code})`;
}

/** Give an errno error the path it concerns when Node left it out (write, read, fsync on a descriptor). */
export function withPath<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e === 'object' && typeof e.code === 'string' && e.path === undefined) e.path = file;
    throw err;
  }
}

function errnoError(code: string, syscall: string, p: string, text: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${text}, ${syscall} '${p}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = p;
  return e;
}

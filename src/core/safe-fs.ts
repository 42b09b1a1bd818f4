/**
 * Reading and writing files a repository someone else wrote can reach (`.loupe/`, datasets, model
 * folders): every file in it may be a symlink to ~/.bashrc, a dangling link, or 1 GB of JSON.
 *
 * - Reads are capped in size and, under a root (the workspace), refuse symlinks and paths whose
 *   real location leaves the root. Without a root (a model folder, which may be a Hugging Face
 *   cache snapshot made of links) they follow links.
 * - Writes never follow a link: the bytes go to a fresh temporary file (created with O_EXCL, which
 *   refuses an existing name, link or not) that is then renamed over the target, and a target that
 *   is a link, or not a plain file, is refused outright. Under a root, the folder's real path must
 *   stay inside the root's real path.
 *
 * Every refusal is a LoupeError naming the file and what to do.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "./errors";

/** Default cap on a workspace file Loupe parses as a whole (JSON settings, labels, probes). */
export const MAX_WORKSPACE_JSON_BYTES = 4 * 1024 * 1024;
/** Cap on a model folder's side files (shard index, tokenizer_config.json, chat template): published ones are under 2 MB. */
export const MAX_MODEL_SIDE_FILE_BYTES = 16 * 1024 * 1024;

export interface SafeFileOptions {
  /** The folder the file must stay inside (the workspace); checked on real paths. */
  readonly root?: string;
}

export interface SafeReadOptions extends SafeFileOptions {
  /** Refuse files larger than this (default MAX_WORKSPACE_JSON_BYTES). */
  readonly maxBytes?: number;
}

/** O_NOFOLLOW where the platform has it (not on Windows, where lstat alone guards). */
const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

function refuse(file: string, why: string): LoupeError {
  return new LoupeError("unsafe-path", `${file}: ${why}`, file);
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Whether `inner` is `outer` or lies below it (both absolute). */
export function isInside(outer: string, inner: string): boolean {
  const rel = path.relative(outer, inner);
  return rel === "" || (!rel.startsWith(`..${path.sep}`) && rel !== ".." && !path.isAbsolute(rel));
}

/** The real path of the deepest existing folder on `dir`'s way up (so a path yet to be made can be judged). */
function realExistingAncestor(dir: string): string {
  let at = dir;
  for (;;) {
    try {
      return fs.realpathSync(at);
    } catch {
      const up = path.dirname(at);
      if (up === at) return at;
      at = up;
    }
  }
}

/**
 * Check that `file` may be read or replaced: not a symlink (dangling ones included), not a folder
 * or device, and, under a root, inside it both as written and as the disk resolves it.
 * Returns the absolute path and whether the file exists.
 */
export function checkFilePath(file: string, options: SafeFileOptions = {}): { path: string; exists: boolean } {
  const absolute = path.resolve(file);
  if (options.root !== undefined) {
    const root = path.resolve(options.root);
    if (!isInside(root, absolute)) throw refuse(file, `it lies outside ${root}; Loupe only reads and writes its files inside the workspace.`);
    const realRoot = realExistingAncestor(root);
    if (!isInside(realRoot, realExistingAncestor(path.dirname(absolute)))) {
      throw refuse(file, `a folder on its path is a link that leaves ${root}. Remove the link (Loupe does not follow links out of the workspace).`);
    }
  }
  let stat: fs.Stats;
  try {
    stat = fs.lstatSync(absolute);
  } catch {
    return { path: absolute, exists: false };
  }
  if (stat.isSymbolicLink()) throw refuse(file, `it is a symbolic link (to ${safeReadlink(absolute)}). Loupe does not read or write through links: replace it with a plain file or delete it.`);
  if (!stat.isFile()) throw refuse(file, "it is not a plain file. Move it away or delete it.");
  return { path: absolute, exists: true };
}

function safeReadlink(file: string): string {
  try {
    return fs.readlinkSync(file);
  } catch {
    return "?";
  }
}

/** Make `dir` and its missing parents, refusing a link or a real path outside the root on the way. */
export function makeFolder(dir: string, options: SafeFileOptions = {}): void {
  const absolute = path.resolve(dir);
  const root = options.root === undefined ? undefined : path.resolve(options.root);
  if (root !== undefined && !isInside(root, absolute)) throw refuse(dir, `it lies outside ${root}; Loupe only writes inside the workspace.`);
  const missing: string[] = [];
  let at = absolute;
  for (;;) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(at);
    } catch {
      stat = undefined;
    }
    if (stat) {
      if (root !== undefined && isInside(root, at) && stat.isSymbolicLink()) throw refuse(at, "this folder is a symbolic link. Loupe does not write through links: replace it with a plain folder.");
      break;
    }
    missing.unshift(at);
    const up = path.dirname(at);
    if (up === at) break;
    at = up;
  }
  if (root !== undefined && !isInside(realExistingAncestor(root), realExistingAncestor(absolute))) {
    throw refuse(dir, `its real path leaves ${root}. Remove the link on its path.`);
  }
  for (const folder of missing) {
    try {
      fs.mkdirSync(folder);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      if (!fs.lstatSync(folder).isDirectory()) throw refuse(folder, "expected a folder here. Move the file away.");
    }
  }
}

/**
 * Write `data` to `file` without following links: the bytes go to a new temporary file beside it
 * (O_EXCL|O_NOFOLLOW) that is renamed over the target, so a reader never sees half a file and a
 * link planted at the name is refused rather than written through.
 */
export function writeFileSafely(file: string, data: string | Uint8Array, options: SafeFileOptions = {}): void {
  const { path: target } = checkFilePath(file, options);
  makeFolder(path.dirname(target), options);
  checkFilePath(file, options); // The folder now exists: check its real path again.
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(temp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | NOFOLLOW, 0o644);
  try {
    fs.writeFileSync(fd, data);
  } catch (error) {
    fs.closeSync(fd);
    fs.rmSync(temp, { force: true });
    throw error;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(temp, target);
  } catch (error) {
    fs.rmSync(temp, { force: true });
    throw error;
  }
}

function tooLarge(file: string, size: number, maxBytes: number): LoupeError {
  return new LoupeError("file-too-large", `${file} is ${megabytes(size)}, over Loupe's ${megabytes(maxBytes)} limit for this file. Shorten or split it, or delete it if you did not make it.`, file);
}

/** Where a read starts: under a root, a checked path opened without following links; else any path. */
function readTarget(file: string, options: SafeFileOptions): { path: string; exists: boolean; flags: number } {
  if (options.root !== undefined) return { ...checkFilePath(file, options), flags: fs.constants.O_RDONLY | NOFOLLOW };
  const absolute = path.resolve(file);
  return { path: absolute, exists: fs.existsSync(absolute), flags: fs.constants.O_RDONLY };
}

/** The text of `file` (at most `maxBytes`; under a root, never through a link), or undefined when it does not exist. */
export function readTextSafely(file: string, options: SafeReadOptions = {}): string | undefined {
  const maxBytes = options.maxBytes ?? MAX_WORKSPACE_JSON_BYTES;
  const { path: absolute, exists, flags } = readTarget(file, options);
  if (!exists) return undefined;
  const fd = fs.openSync(absolute, flags);
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) throw refuse(file, "it is not a plain file.");
    const size = stat.size;
    if (size > maxBytes) throw tooLarge(file, size, maxBytes);
    return fs.readFileSync(fd, "utf8");
  } finally {
    fs.closeSync(fd);
  }
}

/** As readTextSafely, without blocking the caller's thread on the read (for the extension host). */
export async function readTextSafelyAsync(file: string, options: SafeReadOptions = {}): Promise<string | undefined> {
  const maxBytes = options.maxBytes ?? MAX_WORKSPACE_JSON_BYTES;
  const { path: absolute, exists, flags } = readTarget(file, options);
  if (!exists) return undefined;
  const handle = await fs.promises.open(absolute, flags);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw refuse(file, "it is not a plain file.");
    const size = stat.size;
    if (size > maxBytes) throw tooLarge(file, size, maxBytes);
    return await handle.readFile("utf8");
  } finally {
    await handle.close();
  }
}

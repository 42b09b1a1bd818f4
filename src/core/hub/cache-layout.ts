/**
 * The Hugging Face hub cache, laid out as huggingface_hub lays it out, so a model downloaded by
 * transformers, TransformerLens or `huggingface-cli download` is found where it already is:
 *
 *   {cache}/models--ORG--NAME/refs/{revision}          the commit a branch or tag points at
 *   {cache}/models--ORG--NAME/snapshots/{commit}/{path} a relative symlink into blobs/ (a copy where
 *                                                       symlinks are unavailable, as on Windows)
 *   {cache}/models--ORG--NAME/blobs/{etag}             the file's bytes, named by its ETag
 *   {cache}/models--ORG--NAME/.no_exist/{commit}/{path} an empty file: the hub has no such file at
 *                                                       that commit (so nobody asks again)
 *
 * Repositories without an organisation (`gpt2`, `distilgpt2`) live in models--NAME.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export type Environment = Readonly<Record<string, string | undefined>>;

/** The cache folder: HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Environment = process.env): string {
  if (env.HF_HUB_CACHE) return path.resolve(expandHome(env.HF_HUB_CACHE));
  if (env.HF_HOME) return path.resolve(expandHome(env.HF_HOME), "hub");
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), ".cache");
  return path.resolve(xdg, "huggingface", "hub");
}

/** HF_HOME: where huggingface_hub keeps its token (HF_HOME/token) as well as the default cache. */
export function hfHome(env: Environment = process.env): string {
  if (env.HF_HOME) return path.resolve(expandHome(env.HF_HOME));
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), ".cache");
  return path.resolve(xdg, "huggingface");
}

function expandHome(p: string): string {
  return p === "~" || p.startsWith("~/") ? path.join(os.homedir(), p.slice(1)) : p;
}

/** A model repository on the hub at a revision (a branch, a tag or a commit hash). */
export interface RepoRef {
  readonly repoId: string;
  readonly revision: string;
}

export const DEFAULT_REVISION = "main";

// huggingface_hub's validate_repo_id: "name" or "org/name" of word characters, "-" and "."; no "--"
// or ".." (they would be ambiguous in the cache's folder names).
const REPO_ID = /^(?:[\w.-]+\/)?[\w.-]+$/;
const REVISION = /^[\w.\-/]+$/;

/** "[ORG/]NAME" or "[ORG/]NAME@REVISION" as a RepoRef; undefined when the text is not shaped like one. */
export function parseRepoRef(text: string): RepoRef | undefined {
  const at = text.indexOf("@");
  const repoId = at < 0 ? text : text.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : text.slice(at + 1);
  if (!REPO_ID.test(repoId) || repoId.length > 96 || /--|\.\./.test(repoId) || repoId.split("/").some((part) => /^[-.]|[-.]$/.test(part))) return undefined;
  if (!REVISION.test(revision) || revision.split("/").some((part) => part === "" || part === "..")) return undefined;
  return { repoId, revision };
}

export function formatRepoRef(ref: RepoRef): string {
  return ref.revision === DEFAULT_REVISION ? ref.repoId : `${ref.repoId}@${ref.revision}`;
}

/** A full commit hash: a revision that names a snapshot directly. */
export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** The repository's folder in the cache: models--ORG--NAME. */
export function repoCacheDir(cacheDir: string, repoId: string): string {
  return path.join(cacheDir, `models--${repoId.split("/").join("--")}`);
}

export function snapshotDir(cacheDir: string, repoId: string, commit: string): string {
  return path.join(repoCacheDir(cacheDir, repoId), "snapshots", commit);
}

export function refFile(cacheDir: string, repoId: string, revision: string): string {
  return path.join(repoCacheDir(cacheDir, repoId), "refs", ...revision.split("/"));
}

/**
 * Whether `folder` is a hub snapshot whose repository is known (from its .no_exist/ record) not to
 * have `file`: such a file is absent for good, and downloading again would not bring it.
 */
export function knownMissingOnHub(folder: string, file: string): boolean {
  const snapshot = snapshotOf(folder);
  return snapshot !== undefined && fs.existsSync(path.join(snapshot.repoDir, ".no_exist", snapshot.commit, ...file.split("/")));
}

/** The repository folder and commit of a snapshot folder (…/models--X/snapshots/COMMIT), if it is one. */
function snapshotOf(folder: string): { repoDir: string; commit: string } | undefined {
  const resolved = path.resolve(folder);
  const snapshots = path.dirname(resolved);
  const repoDir = path.dirname(snapshots);
  return path.basename(snapshots) === "snapshots" && path.basename(repoDir).startsWith("models--") ? { repoDir, commit: path.basename(resolved) } : undefined;
}

/** The repo id a cache folder name stands for: models--ORG--NAME -> ORG/NAME, models--NAME -> NAME. */
export function repoIdOfCacheFolder(name: string): string | undefined {
  const match = /^models--(.+)$/.exec(name);
  const parts = match?.[1].split("--");
  return parts && parts.length <= 2 && parts.every((p) => p !== "") ? parts.join("/") : undefined;
}

export function blobFile(cacheDir: string, repoId: string, etag: string): string {
  return path.join(repoCacheDir(cacheDir, repoId), "blobs", etag);
}

/**
 * A model's name for files that record it (a probe's model, an SAE's model_name): the repo id of a
 * hub snapshot folder (…/models--ORG--NAME/snapshots/COMMIT), else the folder's own name.
 */
export function modelName(folder: string): string {
  const snapshot = snapshotOf(folder);
  return (snapshot && repoIdOfCacheFolder(path.basename(snapshot.repoDir))) ?? path.basename(path.resolve(folder));
}

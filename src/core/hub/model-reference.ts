/**
 * What a model setting, `--model` or Select Model… may name: a folder, or a hub repository id
 * (`ORG/NAME` or an org-less `NAME` such as gpt2, optionally `@REVISION`) found in the Hugging Face cache. This is the one place a
 * reference becomes a folder; nothing here touches the network (`loupe pull` downloads).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../errors";
import { formatRepoRef, hubCacheDir, isCommitHash, parseRepoRef, refFile, repoCacheDir, snapshotDir, type Environment, type RepoRef } from "./cache-layout";

/**
 * The folder a model reference names. An existing folder wins (so `models/reference` stays a
 * path); otherwise text shaped like `ORG/NAME[@REV]` is looked up in the hub cache. Anything else
 * comes back resolved, for the folder checks to report.
 */
export function resolveModelFolder(reference: string, env: Environment = process.env): string {
  const asPath = path.resolve(reference);
  if (fs.existsSync(asPath)) return asPath;
  const ref = parseRepoRef(reference);
  return ref ? findCachedSnapshot(hubCacheDir(env), ref) : asPath;
}

/** The snapshot folder of a cached repository at a revision; a LoupeError saying how to get it when absent. */
export function findCachedSnapshot(cacheDir: string, ref: RepoRef): string {
  const commit = cachedCommit(cacheDir, ref);
  const dir = commit === undefined ? undefined : snapshotDir(cacheDir, ref.repoId, commit);
  if (dir === undefined || !fs.existsSync(dir)) {
    const known = fs.existsSync(repoCacheDir(cacheDir, ref.repoId));
    throw new LoupeError(
      "missing-file",
      `${formatRepoRef(ref)} is neither a folder nor ${known ? `cached at revision "${ref.revision}"` : "a model"} in the Hugging Face cache (${cacheDir}). ` +
        `Download it with \`loupe pull ${formatRepoRef(ref)}\` (or Loupe: Download Model…), or set HF_HUB_CACHE or HF_HOME to the cache that holds it.`,
      dir ?? repoCacheDir(cacheDir, ref.repoId),
    );
  }
  return dir;
}

/** The commit a revision names in the cache: refs/{revision}'s content, or the revision itself when it is a commit hash. */
export function cachedCommit(cacheDir: string, ref: RepoRef): string | undefined {
  const file = refFile(cacheDir, ref.repoId, ref.revision);
  if (fs.existsSync(file)) return fs.readFileSync(file, "utf8").trim();
  return isCommitHash(ref.revision) ? ref.revision : undefined;
}

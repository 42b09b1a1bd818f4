/**
 * The models already in the Hugging Face cache, for Select Model…: each repository's revisions
 * (refs/, including refs/pr/N) and any snapshot no ref points at (fetched by commit hash). Only
 * folder names and ref files are read; whether a snapshot loads is for describeModelFolder.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { DEFAULT_REVISION, formatRepoRef, repoIdOfCacheFolder, snapshotDir } from "./cache-layout";

export interface CachedModel {
  readonly repoId: string;
  readonly revision: string;
  readonly commit: string;
  readonly snapshot: string;
  /** What `--model`, loupe.modelPath and Select Model… take: ORG/NAME, or ORG/NAME@REV off the main branch. */
  readonly reference: string;
}

export function listCachedModels(cacheDir: string): CachedModel[] {
  const out: CachedModel[] = [];
  for (const folder of safeReaddir(cacheDir).sort()) {
    const repoId = repoIdOfCacheFolder(folder);
    if (repoId === undefined) continue;
    const refs = listRefs(path.join(cacheDir, folder, "refs"));
    const referenced = new Set<string>();
    for (const [revision, commit] of refs) {
      const snapshot = snapshotDir(cacheDir, repoId, commit);
      if (!fs.existsSync(snapshot)) continue;
      referenced.add(commit);
      out.push({ repoId, revision, commit, snapshot, reference: formatRepoRef({ repoId, revision }) });
    }
    for (const commit of safeReaddir(path.join(cacheDir, folder, "snapshots")).sort()) {
      if (referenced.has(commit)) continue;
      out.push({ repoId, revision: commit, commit, snapshot: snapshotDir(cacheDir, repoId, commit), reference: `${repoId}@${commit}` });
    }
  }
  return out;
}

/** refs/{name} files (names may hold "/", as refs/pr/1 does), main first. */
function listRefs(refsDir: string, prefix = ""): [string, string][] {
  const found: [string, string][] = [];
  for (const entry of safeReaddir(path.join(refsDir, prefix))) {
    const name = prefix ? `${prefix}/${entry}` : entry;
    const file = path.join(refsDir, name);
    if (fs.statSync(file).isDirectory()) found.push(...listRefs(refsDir, name));
    else found.push([name, fs.readFileSync(file, "utf8").trim()]);
  }
  return found.sort(([a], [b]) => (a === DEFAULT_REVISION ? -1 : b === DEFAULT_REVISION ? 1 : a.localeCompare(b)));
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * What `loupe.saePath`, the SAE picker and `--sae` may name: a folder, or a published dictionary as
 * SAELens names it, `RELEASE/SAE_ID` (e.g. gpt2-small-res-jb/blocks.6.hook_resid_pre), found in the
 * Hugging Face cache. Nothing here touches the network (`loupe pull --sae` downloads).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { LoupeError } from "../../errors";
import { DEFAULT_REVISION, hubCacheDir, snapshotDir, snapshotLocation, type Environment } from "../../hub/cache-layout";
import { cachedCommit } from "../../hub/model-reference";
import { neuronpediaTranscoders, type NeuronpediaTranscoders } from "./neuronpedia";
import { findRelease, SAE_RELEASES, type SaeRelease } from "./registry";

export { neuronpediaUrl } from "./neuronpedia";

export interface ReleaseSae {
  readonly release: SaeRelease;
  readonly id: string;
}

/** Where an SAE reference leads: its folder and, for a published dictionary, which one. */
export interface ResolvedSae {
  readonly folder: string;
  readonly published?: ReleaseSae;
}

/** "RELEASE/SAE_ID" of a release Loupe knows; undefined when the text does not start with one. A bad id is a LoupeError. */
export function parseReleaseSae(text: string): ReleaseSae | undefined {
  const slash = text.indexOf("/");
  if (slash <= 0) return undefined;
  const release = findRelease(text.slice(0, slash));
  if (!release) return undefined;
  const id = text.slice(slash + 1);
  if (!release.ids.test(id)) {
    throw new LoupeError("bad-argument", `"${id}" is not an SAE id of ${release.release} (ids look like ${release.example}; see SAELens's pretrained_saes.yaml).`);
  }
  return { release, id };
}

export function formatReleaseSae(sae: ReleaseSae): string {
  return `${sae.release.release}/${sae.id}`;
}

/** The files of one published SAE, relative to its repository. */
export function releaseSaeFiles(sae: ReleaseSae): { folder: string; required: string[]; optional: string[] } {
  const folder = sae.release.path(sae.id);
  const within = (names: string[]) => names.map((n) => `${folder}/${n}`);
  switch (sae.release.format) {
    case "saelens":
      return { folder, required: within(["cfg.json", "sae_weights.safetensors"]), optional: within(["sparsity.safetensors"]) };
    case "gemma-scope":
      return { folder, required: within(["params.npz"]), optional: [] };
    case "gemma-scope-2":
      return { folder, required: within(["params.safetensors"]), optional: within(["config.json"]) };
    case "llama-scope":
      return { folder, required: within(["hyperparams.json", "checkpoints/final.safetensors"]), optional: [] };
  }
}

/** The folder an SAE reference names: an existing folder wins; else a known RELEASE/SAE_ID in the hub cache. */
export function resolveSaeReference(reference: string, env: Environment = process.env): ResolvedSae {
  const asPath = path.resolve(reference);
  if (fs.existsSync(asPath)) return { folder: asPath };
  const published = parseReleaseSae(reference);
  if (!published) {
    const releases = SAE_RELEASES.map((r) => r.release).join(", ");
    throw new LoupeError(
      "missing-file",
      `SAE ${reference} is neither a folder (${asPath} does not exist) nor RELEASE/SAE_ID of a release Loupe knows (${releases}). Give an SAELens folder or e.g. gpt2-small-res-jb/blocks.6.hook_resid_pre.`,
      asPath,
    );
  }
  const cacheDir = hubCacheDir(env);
  const { repo } = published.release;
  const commit = cachedCommit(cacheDir, { repoId: repo, revision: DEFAULT_REVISION });
  const files = releaseSaeFiles(published);
  const snapshot = commit === undefined ? undefined : snapshotDir(cacheDir, repo, commit);
  if (!snapshot || files.required.some((f) => !fs.existsSync(path.join(snapshot, f)))) {
    throw new LoupeError(
      "missing-file",
      `${formatReleaseSae(published)} is not in the Hugging Face cache (${cacheDir}, repository ${repo}, folder ${files.folder}). ` +
        `Download it with \`loupe pull --sae ${formatReleaseSae(published)}\` (only that dictionary's files), or set HF_HUB_CACHE or HF_HOME to the cache that holds it.`,
      snapshot ?? cacheDir,
    );
  }
  return { folder: path.join(snapshot, files.folder), published };
}

/**
 * The published SAE a folder of the hub cache holds (…/models--ORG--NAME/snapshots/COMMIT/PATH),
 * so an SAE opened by its folder still gets its release's facts, label key and Neuronpedia page.
 */
export function releaseSaeOfFolder(folder: string): ReleaseSae | undefined {
  const location = snapshotLocation(folder);
  if (!location || location.inRepo.length === 0) return undefined;
  const { repoId } = location;
  const inRepo = location.inRepo.join("/");
  for (const release of SAE_RELEASES) {
    if (release.repo !== repoId) continue;
    for (const id of [inRepo, inRepo.slice(inRepo.indexOf("/") + 1), release.idOfPath?.(inRepo)]) {
      if (id !== undefined && release.ids.test(id) && release.path(id) === inRepo) return { release, id };
    }
  }
  return undefined;
}

/** The Neuronpedia id of an SAE folder: its config's, else its release's. */
export function neuronpediaIdOf(folder: string, configured?: string): string | undefined {
  if (configured) return configured;
  const published = releaseSaeOfFolder(folder);
  return published?.release.neuronpedia?.(published.id);
}

/** Where Neuronpedia hosts the transcoder set in `folder` (a set in the hub cache, or one whose config names its scan). */
export function neuronpediaTranscodersOf(folder: string | undefined, scan: string | undefined): NeuronpediaTranscoders | undefined {
  return neuronpediaTranscoders({ repoId: folder ? snapshotLocation(folder)?.repoId : undefined, scan });
}

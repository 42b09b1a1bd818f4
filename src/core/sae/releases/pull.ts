/**
 * `loupe pull --sae RELEASE/SAE_ID`: one published dictionary's files (not its repository's
 * hundreds) into the Hugging Face cache, where resolveSaeReference then finds them.
 */
import { LoupeError } from "../../errors";
import { DEFAULT_REVISION } from "../../hub/cache-layout";
import { pullRepoFiles, type PullOptions, type PullResult } from "../../hub/download";
import { formatReleaseSae, parseReleaseSae, releaseSaeFiles, type ReleaseSae } from "./reference";
import { SAE_RELEASES } from "./registry";

export async function pullSae(reference: string, options: PullOptions = {}): Promise<PullResult & { readonly published: ReleaseSae; readonly folder: string }> {
  const published = parseReleaseSae(reference);
  if (!published) {
    throw new LoupeError("bad-argument", `"${reference}" is not RELEASE/SAE_ID of a release Loupe knows (${SAE_RELEASES.map((r) => r.release).join(", ")}), e.g. gpt2-small-res-jb/blocks.6.hook_resid_pre.`);
  }
  const { folder, required, optional } = releaseSaeFiles(published);
  const result = await pullRepoFiles({ repoId: published.release.repo, revision: DEFAULT_REVISION }, (files) => {
    const present = new Set(files);
    const missing = required.filter((f) => !present.has(f));
    if (missing.length) {
      throw new LoupeError("download-failed", `${published.release.repo} has no ${missing.join(" or ")}: ${formatReleaseSae(published)} is not (or no longer) published there. Check the id against SAELens's pretrained_saes.yaml.`);
    }
    return [...required, ...optional.filter((f) => present.has(f))];
  }, options);
  return { ...result, published, folder: `${result.snapshot}/${folder}` };
}

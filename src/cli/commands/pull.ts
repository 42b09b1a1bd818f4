import { LoupeError } from "../../core/errors";
import { formatRepoRef } from "../../core/hub/cache-layout";
import { pullModel, type PullProgress } from "../../core/hub/download";
import { pullSae } from "../../core/sae/releases/pull";
import { stringOption, type Command } from "../command";

export const pullCommand: Command = {
  name: "pull",
  usage: `loupe pull ORG/NAME[@REV] [--json]
loupe pull --sae RELEASE/SAE_ID [--json]
    Download a model's config, tokenizer and safetensors weights (shards included) from the Hugging Face hub
    into its cache (HF_HUB_CACHE / HF_HOME; token from HF_TOKEN or HF_HOME/token; HF_ENDPOINT, HF_HUB_OFFLINE
    honoured). An interrupted pull resumes. Then use --model ORG/NAME. The only command that uses the network.
    --sae: one published dictionary's files (SAELens's release names, e.g. gpt2-small-res-jb/blocks.6.hook_resid_pre);
    then use --sae RELEASE/SAE_ID (or loupe.saePath).`,
  options: { sae: { type: "string" } },
  async run({ values, positionals, io }) {
    const sae = stringOption(values, "sae");
    if (sae) {
      const result = await pullSae(sae, { signal: io.signal, onProgress: progressPrinter(io.progress) });
      if (values.json) io.out(`${JSON.stringify(result, null, 2)}\n`);
      else io.out(`${sae} from ${result.ref.repoId} at ${result.commit}: ${result.files.map((f) => `${f.path} (${f.how})`).join(", ")}\n${result.folder}\nUse it with --sae ${sae} (or loupe.saePath).\n`);
      return 0;
    }
    const reference = positionals[0];
    if (!reference) throw new LoupeError("bad-argument", `Missing the repo id: loupe pull ORG/NAME[@REV].`);
    const result = await pullModel(reference, { signal: io.signal, onProgress: progressPrinter(io.progress) });
    if (values.json) {
      io.out(`${JSON.stringify(result, null, 2)}\n`);
      return 0;
    }
    const got = (how: string) => result.files.filter((f) => f.how === how).length;
    io.out(
      `${formatRepoRef(result.ref)} at ${result.commit}: ${result.files.length} files, ${megabytes(result.files.reduce((s, f) => s + f.size, 0))} ` +
        `(${got("downloaded")} downloaded, ${got("resumed")} resumed, ${got("cached")} already cached)\n${result.snapshot}\n` +
        `Use it with --model ${formatRepoRef(result.ref)} (or loupe.modelPath).\n`,
    );
    return 0;
  },
};

/** A progress line per file and about every 5% of the bytes, not one per network chunk. */
function progressPrinter(print: ((text: string) => void) | undefined): (p: PullProgress) => void {
  let lastFile = "";
  let lastShare = -1;
  return (p) => {
    if (!print || !p.file) return;
    const share = p.totalBytes ? Math.floor((20 * p.bytes) / p.totalBytes) : 0;
    if (p.file === lastFile && share === lastShare) return;
    lastFile = p.file;
    lastShare = share;
    print(`${megabytes(p.bytes)} of ${megabytes(p.totalBytes)}  ${p.file}`);
  };
}

function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

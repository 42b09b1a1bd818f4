import * as path from "node:path";
import { modelName } from "../../core/hub/cache-layout";
import { LoupeError } from "../../core/errors";
import { gatherActivations, saveSae, spliceSae, trainTopKSae } from "../../core/sae";
import { writeFeatureStats } from "../../core/sae/feature-stats-file";
import { computeFeatureStats, type CorpusText } from "../../core/sae/features";
import { loadModel, positiveInt, readInput, stringOption, type CliIo, type Command, type ParsedValues } from "../command";
import { fixed, renderTable } from "../format";
import { parseCorpusJsonl } from "./features";

/** The corpus's last tenth (at least one text) is kept out of training to score the SAE. */
function splitCorpus(corpus: readonly CorpusText[]): { train: CorpusText[]; held: CorpusText[] } {
  const held = corpus.length < 2 ? 0 : Math.max(1, Math.floor(corpus.length / 10));
  return { train: corpus.slice(0, corpus.length - held), held: corpus.slice(corpus.length - held) };
}

async function train(values: ParsedValues, corpusFile: string, modelFolder: string, io: CliIo): Promise<number> {
  const hook = stringOption(values, "hook");
  const out = stringOption(values, "out");
  if (!hook) throw new LoupeError("bad-argument", "Say which hook the SAE reads with --hook, e.g. --hook blocks.1.hook_resid_post.");
  if (!out) throw new LoupeError("bad-argument", "Say where to save the SAE with --out DIR (SAELens format: cfg.json and sae_weights.safetensors).");
  const corpus = parseCorpusJsonl(readInput(corpusFile, io, "corpus file"), corpusFile);
  const { train: trainTexts, held } = splitCorpus(corpus);
  const d_sae = positiveInt(values, "d-sae", 1024);
  const k = positiveInt(values, "k", 32);
  if (k > d_sae) throw new LoupeError("bad-argument", `--k ${k} is more than --d-sae ${d_sae}: a TopK SAE keeps k of its d_sae latents.`);
  const say = (line: string) => io.progress?.(line);
  const signal = io.signal;
  const model = await loadModel(modelFolder, values);
  try {
    const acts = await gatherActivations(model, hook, trainTexts.map((t) => t.text), {
      signal,
      onProgress: (done, total, tokens) => done === total && say(`gathered ${tokens} token vectors at ${hook} from ${total} texts`),
    });
    const result = await trainTopKSae(acts.data, acts.rows, acts.d, {
      hook_name: hook,
      d_sae,
      k,
      epochs: positiveInt(values, "epochs", 3),
      batchSize: positiveInt(values, "batch", 512),
      seed: positiveInt(values, "seed", 1),
      model_name: modelName(modelFolder),
      context_size: model.cfg.nCtx,
      prepend_bos: model.prependsBos,
      progressEvery: 50,
      signal,
      onProgress: (p) => say(`step ${p.step}/${p.steps}: fraction of variance unexplained ${p.fvu.toFixed(4)}, dead latents ${(100 * p.deadFraction).toFixed(1)}%`),
    });
    const sae = result.sae;
    // Score on the texts kept out: variance explained, L0 and CE loss recovered when spliced in.
    const heldIds = held.map((t) => model.toTokens(t.text).slice(0, model.cfg.nCtx)).filter((ids) => ids.length > 1);
    const splice = heldIds.length ? await spliceSae(model, sae, heldIds, { signal }) : undefined;
    saveSae(out, sae);
    let statsFile: string | undefined;
    if (values.stats === true) {
      statsFile = writeFeatureStats(out, await computeFeatureStats(model, sae, corpus, { signal, description: `${corpus.length} texts from ${path.basename(corpusFile)}` }));
    }
    const summary = {
      out: path.resolve(out),
      hook_name: hook,
      d_sae,
      k,
      trainTokens: acts.rows,
      steps: result.steps,
      seconds: result.elapsedMs / 1000,
      heldOutTexts: heldIds.length,
      varianceExplained: splice?.varianceExplained ?? null,
      l0: splice?.meanL0 ?? null,
      ceRecovered: splice?.ceRecovered ?? null,
      statsFile: statsFile ?? null,
    };
    if (values.json === true) {
      io.out(`${JSON.stringify(summary, null, 2)}\n`);
    } else {
      const rows = [
        ["saved", `${summary.out} (SAELens: cfg.json, sae_weights.safetensors${statsFile ? ", feature-stats.json" : ""})`],
        ["trained on", `${acts.rows} tokens at ${hook}, ${result.steps} steps in ${fixed(summary.seconds, 1)} s`],
        ["held-out texts", String(heldIds.length)],
        ["fraction of variance explained", fixed(summary.varianceExplained, 3)],
        ["L0 (active latents per token)", fixed(summary.l0, 1)],
        ["CE loss recovered when spliced in", summary.ceRecovered === null ? "-" : `${(100 * summary.ceRecovered).toFixed(1)}%`],
      ];
      io.out(`${renderTable(["SAE", "value"], rows)}\n`);
    }
    return 0;
  } finally {
    await model.dispose();
  }
}

export const saeCommand: Command = {
  name: "sae",
  usage: `loupe sae train CORPUS.jsonl --hook H --out DIR [--d-sae N] [--k K] [--epochs E] [--batch B] [--seed S] [--stats] [--model DIR] [--json]
    Train a TopK sparse autoencoder (with AuxK against dead latents) on the model's activations at
    hook H over a JSONL corpus ({"text", "spans"?} per line) and save it in SAELens format. The last
    tenth of the texts is kept out to report variance explained, L0 and CE loss recovered; --stats
    also writes feature-stats.json. Progress goes to standard error; Ctrl+C stops without saving.`,
  options: {
    hook: { type: "string" },
    out: { type: "string" },
    "d-sae": { type: "string" },
    k: { type: "string" },
    epochs: { type: "string" },
    batch: { type: "string" },
    seed: { type: "string" },
    stats: { type: "boolean" },
  },
  async run({ values, positionals, modelFolder, io }) {
    const [action, corpusFile] = positionals;
    if (action !== "train") throw new LoupeError("bad-argument", `Unknown "loupe sae ${action ?? ""}": the subcommand is "train".`);
    if (!corpusFile) throw new LoupeError("bad-argument", "Missing the corpus: loupe sae train CORPUS.jsonl --hook H --out DIR.");
    return train(values, corpusFile, modelFolder, io);
  },
};

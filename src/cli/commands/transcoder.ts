import * as fs from "node:fs";
import * as path from "node:path";
import { bundledTranscoders, computeTranscoderFeatureStats, evaluateTranscoders, gatherTranscoderData, loadTranscoders, saveTranscoders, trainTranscoders, writeTranscoderFeatureStats, type FeatureInputHook } from "../../core/circuits";
import { LoupeError } from "../../core/errors";
import { loadModel, positiveInt, readInput, stringOption, type Command, type ParsedValues } from "../command";
import { fixed, renderTable } from "../format";
import { formatStatsSummary, parseCorpusJsonl } from "./features";

export const QUALITY_FILE = "quality.json";

export const transcoderCommand: Command = {
  name: "transcoder",
  usage: `loupe transcoder train CORPUS.jsonl --kind plt|clt --out DIR [--activation topk|jumprelu] [--skip] [--d-transcoder N] [--k K] [--l0-coefficient L] [--bandwidth B] [--epochs E] [--max-tokens N] [--seed S] [--model DIR] [--json]
    Train TopK (k per token) or JumpReLU (a learned threshold per feature, an L0 penalty of weight
    L, straight-through gradients of bandwidth B) transcoders on the model's MLPs over a JSONL corpus ({"text"} per line): per-layer
    (plt: each layer's MLP input -> its output) or cross-layer (clt: -> every later layer's MLP
    output); --skip adds a learned affine skip connection to each PLT layer (W_skip). Saved in
    circuit-tracer's layout (config.yaml, layer_{i} or W_enc_{i}/W_dec_{i}.safetensors) with quality.json: normalised MSE per layer, L0, dead features and CE loss
    recovered with every MLP replaced, on the corpus's last tenth. Ctrl+C stops without saving.
loupe transcoder stats CORPUS.jsonl [--transcoders DIR] [--model DIR]
    Write each layer's feature statistics beside the set (layer_{i}.feature-stats.json, the
    format of an SAE's feature-stats.json: density, histogram, top contexts, concepts, logit
    effects through W_dec). DIR defaults to the model folder's own PLT set.`,
  options: { kind: { type: "string" }, out: { type: "string" }, "d-transcoder": { type: "string" }, k: { type: "string" }, epochs: { type: "string" }, "max-tokens": { type: "string" }, seed: { type: "string" }, transcoders: { type: "string" }, activation: { type: "string" }, "l0-coefficient": { type: "string" }, bandwidth: { type: "string" }, skip: { type: "boolean" } },
  async run({ values, positionals, modelFolder, io }) {
    const [action, corpusFile] = positionals;
    if (action === "stats") {
      const corpus = parseCorpusJsonl(readInput(corpusFile, io, "corpus file"), corpusFile ?? "corpus");
      const model = await loadModel(modelFolder, values);
      try {
        const folder = stringOption(values, "transcoders") ?? bundledTranscoders(modelFolder);
        const stats = await computeTranscoderFeatureStats(model, loadTranscoders(folder), corpus, {
          signal: io.signal,
          description: `${corpus.length} texts from ${path.basename(corpusFile ?? "corpus")}`,
          onProgress: (done, total) => done % 100 === 0 && io.progress?.(`${done}/${total} texts`),
        });
        const files = writeTranscoderFeatureStats(folder, stats);
        io.out(`${stats.map((s, l) => formatStatsSummary(s, files[l])).join("\n")}\n`);
      } finally {
        await model.dispose();
      }
      return 0;
    }
    if (action !== "train") throw new LoupeError("bad-argument", `Unknown "loupe transcoder ${action ?? ""}": the subcommands are "train" and "stats".`);
    const kind = stringOption(values, "kind");
    if (kind !== "plt" && kind !== "clt") throw new LoupeError("bad-argument", "Say which transcoders to train with --kind plt (per layer) or --kind clt (cross-layer).");
    const out = stringOption(values, "out");
    if (!out) throw new LoupeError("bad-argument", "Say where to save the transcoders with --out DIR (circuit-tracer's layout).");
    const corpus = parseCorpusJsonl(readInput(corpusFile, io, "corpus file"), corpusFile ?? "corpus");
    const heldCount = corpus.length < 2 ? 0 : Math.max(1, Math.floor(corpus.length / 10));
    const train = corpus.slice(0, corpus.length - heldCount).map((t) => t.text);
    const held = corpus.slice(corpus.length - heldCount).map((t) => t.text);
    const dTranscoder = positiveInt(values, "d-transcoder", 512);
    const activation = stringOption(values, "activation") ?? "topk";
    if (activation !== "topk" && activation !== "jumprelu") throw new LoupeError("bad-argument", `--activation must be "topk" or "jumprelu" (got ${activation}).`);
    const k = positiveInt(values, "k", 16);
    if (activation === "topk" && k > dTranscoder) throw new LoupeError("bad-argument", `--k ${k} is more than --d-transcoder ${dTranscoder}.`);
    const l0Coefficient = nonNegativeNumber(values, "l0-coefficient");
    const bandwidth = nonNegativeNumber(values, "bandwidth");
    const inputHook: FeatureInputHook = "mlp.hook_in";
    const say = (line: string) => io.progress?.(line);
    const model = await loadModel(modelFolder, values);
    try {
      const started = performance.now();
      const data = await gatherTranscoderData(model, train, inputHook, { maxTokens: positiveInt(values, "max-tokens", 40_000), signal: io.signal });
      say(`gathered ${data.rows} tokens of MLP inputs and outputs at ${model.cfg.nLayers} layers`);
      const { set, steps } = await trainTranscoders(data, {
        kind,
        dTranscoder,
        k,
        activation,
        l0Coefficient,
        bandwidth,
        skip: values.skip === true,
        inputHook,
        epochs: positiveInt(values, "epochs", 4),
        seed: positiveInt(values, "seed", 1),
        signal: io.signal,
        onProgress: (p) => say(`step ${p.step}/${p.steps}: normalised MSE ${p.nmse.toFixed(4)}, L0 ${p.l0.toFixed(1)}`),
      });
      const quality = await evaluateTranscoders(model, set, held, io.signal);
      const seconds = (performance.now() - started) / 1000;
      const files = saveTranscoders(out, { ...set, scan: `loupe/${path.basename(path.resolve(modelFolder))}/${kind}` }, { model_name: path.basename(path.resolve(modelFolder)) });
      const summary = { out: path.resolve(out), kind, activation, dTranscoder, ...(activation === "topk" ? { k } : { l0Coefficient, bandwidth }), ...(values.skip === true ? { skip: true } : {}), trainTokens: data.rows, steps, seconds, heldOutTexts: held.length, ...quality };
      fs.writeFileSync(path.join(out, QUALITY_FILE), `${JSON.stringify(summary, null, 2)}\n`);
      if (values.json === true) {
        io.out(`${JSON.stringify(summary, null, 2)}\n`);
      } else {
        const rows = quality.nmse.map((m, l) => [String(l), fixed(m, 3), fixed(quality.l0[l], 1), `${(100 * quality.deadFraction[l]).toFixed(1)}%`]);
        io.out(
          [
            `saved ${files.length} files to ${summary.out} (${kind === "plt" ? "transcoder_set" : "cross_layer_transcoder"}, d_transcoder ${dTranscoder}, ${activation === "topk" ? `TopK k=${k}` : "JumpReLU"}${values.skip === true ? ", skip connection" : ""})`,
            `trained on ${data.rows} tokens, ${steps} steps, ${fixed(seconds, 1)} s; scored on ${held.length} held-out texts (${quality.tokens} tokens)`,
            renderTable(["layer", "normalised MSE", "L0", "dead"], rows),
            `CE loss: model ${fixed(quality.ceModel, 3)}, every MLP replaced ${fixed(quality.ceReplaced, 3)}, every MLP zeroed ${fixed(quality.ceZeroAblated, 3)}: ${(100 * quality.ceRecovered).toFixed(1)}% recovered`,
          ].join("\n") + "\n",
        );
      }
    } finally {
      await model.dispose();
    }
    return 0;
  },
};

/** A number option that must be finite and >= 0; undefined when not given. */
function nonNegativeNumber(values: ParsedValues, name: string): number | undefined {
  const raw = stringOption(values, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!(Number.isFinite(n) && n >= 0)) throw new LoupeError("bad-argument", `--${name} must be a number >= 0 (got ${raw}).`);
  return n;
}

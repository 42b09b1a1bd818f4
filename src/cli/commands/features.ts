import * as fs from "node:fs";
import * as path from "node:path";
import { featuresInChat, messageView } from "../../core/chat/chat-results";
import { LoupeError } from "../../core/errors";
import { jsonlRecords } from "../../core/jsonl";
import { InProcessBackend } from "../../core/requests";
import { loadSae } from "../../core/sae";
import { featureDisplayName, featureLabel, FEATURE_LABELS_FILE, readFeatureLabels, saeLabelKey, type FeatureLabels } from "../../core/sae/feature-labels";
import { writeFeatureStats } from "../../core/sae/feature-stats-file";
import { resolveSaeReference } from "../../core/sae/releases/reference";
import { computeFeatureStats, type CorpusText, type FeatureStats } from "../../core/sae/features";
import { loadModel, positiveInt, readInput, stringOption, withBackend, type CliIo, type Command, type ParsedValues } from "../command";
import { CHAT_OPTION, chatInput, messageColumn, withMessages } from "../chat-input";
import { fixed, renderTable, visibleToken } from "../format";

export interface TokenFeatures {
  readonly index: number;
  readonly text: string;
  readonly start: number;
  readonly end: number;
  readonly features: Array<{ feature: number; value: number; name: string; label?: string }>;
}

export interface FeaturesResult {
  readonly modelFolder: string;
  readonly sae: { folder: string; hook_name: string; d_sae: number; statsFile: boolean };
  readonly tokens: TokenFeatures[];
}

/** `column`: an extra column after the token (the message each token of a chat belongs to). */
export function formatFeatures(result: FeaturesResult, column?: { title: string; values: readonly string[] }): string {
  const rows = result.tokens.map((t, i) => [String(t.index), `"${visibleToken(t.text)}"`, ...(column ? [column.values[i]] : []), t.features.map((f) => `${f.name} ${f.value.toFixed(2)}`).join("; ")]);
  const note = result.sae.statsFile ? "" : " (no feature statistics for this SAE: only your labels are shown)";
  return `${renderTable(["#", "token", ...(column ? [column.title] : []), "top features (activation)"], rows)}\n\n${result.tokens.length} tokens, SAE at ${result.sae.hook_name} (d_sae ${result.sae.d_sae}) from ${result.sae.folder}${note}`;
}

/** The SAE --sae names (a folder or a cached RELEASE/SAE_ID), else the model folder's sae/ SAE. */
export function saeFolderOption(values: ParsedValues, modelFolder: string): string {
  const reference = stringOption(values, "sae");
  return reference ? resolveSaeReference(reference).folder : defaultSaeFolder(modelFolder);
}

/** The SAE to use when --sae is not given: the model folder's only (or first) sae/<hook> folder. */
export function defaultSaeFolder(modelFolder: string): string {
  const root = path.join(modelFolder, "sae");
  const found = fs.existsSync(root) ? fs.readdirSync(root).filter((n) => fs.existsSync(path.join(root, n, "cfg.json"))).sort() : [];
  if (found.length === 0) throw new LoupeError("bad-argument", `No --sae given and ${root} holds no SAE folder. Pass --sae DIR (a folder with cfg.json and sae_weights.safetensors).`);
  return path.join(root, found[0]);
}

/** A corpus as JSONL: {"text": ..., "spans": [{"start","end","label"}]?} per line (the bench's records fit). */
export function parseCorpusJsonl(content: string, file: string): CorpusText[] {
  const out = jsonlRecords(content, file, '{"text": "...", "spans": [...]}').map(({ record: r, fail }): CorpusText => {
    if (typeof r.text !== "string") return fail(`needs a "text" string.`);
    const text = r.text;
    if (r.spans === undefined) return { text };
    if (!Array.isArray(r.spans)) return fail(`"spans" must be a list of {start, end, label}.`);
    const spans = r.spans.map((s: unknown, j: number) => {
      const span = s as { start?: unknown; end?: unknown; label?: unknown };
      const ok = typeof span === "object" && span !== null && Number.isInteger(span.start) && Number.isInteger(span.end) && typeof span.label === "string" && (span.start as number) >= 0 && (span.start as number) < (span.end as number) && (span.end as number) <= text.length;
      if (!ok) fail(`spans[${j}] must be {start, end, label} with 0 <= start < end <= the text's length.`);
      return { start: span.start as number, end: span.end as number, label: span.label as string };
    });
    return { text, spans };
  });
  if (out.length === 0) throw new LoupeError("empty-input", `${file} has no texts.`, file);
  return out;
}

export function formatStatsSummary(stats: FeatureStats, file: string): string {
  const dead = stats.features.filter((f) => f.fired === 0).length;
  const lines = [`Wrote ${file}: ${stats.corpus.texts} texts, ${stats.corpus.tokens} tokens; ${dead}/${stats.sae.d_sae} features never fired.`];
  if (stats.concepts.length) {
    lines.push("", renderTable(["concept", "tokens", "best feature", "above", "F1", "precision", "recall"], stats.concepts.map((c) => {
      const best = c.features[0];
      const above = !best ? "-" : best.threshold === undefined ? "any" : best.threshold.toPrecision(2);
      return [c.label, String(c.tokens), best ? `#${best.feature}` : "-", above, fixed(best?.f1 ?? null, 3), fixed(best?.precision ?? null, 3), fixed(best?.recall ?? null, 3)];
    })));
  }
  return lines.join("\n");
}

async function computeStats(corpusFile: string, saeFolder: string, modelFolder: string, values: ParsedValues, io: CliIo): Promise<number> {
  const json = values.json === true;
  const corpus = parseCorpusJsonl(readInput(corpusFile, io, "corpus file"), corpusFile);
  const sae = loadSae(saeFolder);
  const model = await loadModel(modelFolder, values);
  try {
    const stats = await computeFeatureStats(model, sae, corpus, { description: `${corpus.length} texts from ${path.basename(corpusFile)}` });
    const file = writeFeatureStats(saeFolder, stats);
    io.out(json ? `${JSON.stringify({ file, corpus: stats.corpus, concepts: stats.concepts }, null, 2)}\n` : `${formatStatsSummary(stats, file)}\n`);
  } finally {
    await model.dispose();
  }
  return 0;
}

export const featuresCommand: Command = {
  name: "features",
  usage: `loupe features FILE|- [--sae DIR|RELEASE/SAE_ID] [--top N] [--labels FILE] [--chat [--add-generation-prompt]] [--model DIR] [--json]
    Each token's strongest SAE features with their activations, named by your labels
    (.loupe/feature-labels.json) or by the concept feature-stats.json matched them to.
    --chat: FILE is a chat, rendered with the model's chat template as loupe inspect --chat does;
    --json gives each token's message and its range there.
    --sae: a folder, or a published RELEASE/SAE_ID in the Hugging Face cache (loupe pull --sae); default: the model folder's sae/ SAE.
loupe features --compute-stats CORPUS.jsonl [--sae DIR|RELEASE/SAE_ID] [--model DIR] [--json]
    Write the SAE's feature-stats.json (density, activation histogram, top contexts, logit
    effects, and best-matching concept by F1 where lines carry "spans") from a JSONL corpus of
    {"text", "spans"?} lines.`,
  options: { sae: { type: "string" }, top: { type: "string" }, labels: { type: "string" }, "compute-stats": { type: "string" }, ...CHAT_OPTION, "add-generation-prompt": { type: "boolean", default: false } },
  async run(args) {
    const { values, positionals, modelFolder, io } = args;
    const corpusFile = stringOption(values, "compute-stats");
    if (corpusFile !== undefined) return computeStats(corpusFile, saeFolderOption(values, modelFolder), modelFolder, values, io);
    const input = readInput(positionals[0], io);
    const chat = chatInput(values, input, positionals[0] ?? "-", modelFolder, () => (values["add-generation-prompt"] === true ? "generation-prompt" : "as-written"));
    const text = chat?.text ?? input;
    if (text.length === 0) throw new LoupeError("empty-input", "The input is empty: nothing to read features of.");
    const top = positiveInt(values, "top", 5);
    const saeFolder = saeFolderOption(values, modelFolder);
    const backend = new InProcessBackend();
    // Read once, before the model loads: the features request finds it in the session's SAE store.
    const { stats } = backend.session.saes.get(saeFolder);
    const labelsOption = stringOption(values, "labels");
    const labels: FeatureLabels = readFeatureLabels(labelsOption ?? FEATURE_LABELS_FILE, labelsOption === undefined ? { root: process.cwd() } : {});
    const key = saeLabelKey(process.cwd(), saeFolder);
    const read = await withBackend(args, (b) => b.request("features", { text, saeFolder, topK: top }), backend);
    const found = chat ? featuresInChat(read, messageView(chat)) : read;
    const tokens = found.tokens.map(({ features, ...token }): TokenFeatures => ({
      ...token,
      features: features.map(({ feature, value }) => {
        const label = featureLabel(labels, key, feature);
        return { feature, value, name: featureDisplayName(feature, label, stats?.features[feature]), ...(label ? { label } : {}) };
      }),
    }));
    const result: FeaturesResult = { modelFolder, sae: { folder: path.resolve(saeFolder), hook_name: found.hook_name, d_sae: found.d_sae, statsFile: found.hasStats }, tokens };
    io.out(values.json ? `${JSON.stringify(chat ? withMessages(chat, result) : result, null, 2)}\n` : `${formatFeatures(result, chat && messageColumn(chat, read.tokens))}\n`);
    return 0;
  },
};

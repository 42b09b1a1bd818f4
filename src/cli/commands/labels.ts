import { LoupeError } from "../../core/errors";
import { FEATURE_LABELS_FILE, readFeatureLabels, writeFeatureLabels } from "../../core/sae/feature-labels";
import { loadSae } from "../../core/sae/load";
import { addExplanations, parseNeuronpediaExplanations, readExportText } from "../../core/sae/neuronpedia-labels";
import { formatReleaseSae, parseReleaseSae, resolveSaeReference } from "../../core/sae/releases/reference";
import { stringOption, type Command } from "../command";

export const labelsCommand: Command = {
  name: "labels",
  usage: `loupe labels import FILE --release RELEASE/SAE_ID [--overwrite] [--labels FILE] [--json]
    Import a Neuronpedia explanation export (JSON array, JSONL or .jsonl.gz; rows of other SAEs are skipped)
    as feature labels of a published SAE into .loupe/feature-labels.json (or --labels FILE), offline.
    Features you labelled keep your label unless --overwrite. Labels show in hovers, dashboards and loupe features.`,
  options: { release: { type: "string" }, overwrite: { type: "boolean" }, labels: { type: "string" } },
  async run({ values, positionals, io }) {
    const [action, file] = positionals;
    if (action !== "import") throw new LoupeError("bad-argument", `Unknown "loupe labels ${action ?? ""}": the subcommand is "import".`);
    if (!file) throw new LoupeError("bad-argument", "Missing the export file: loupe labels import FILE --release RELEASE/SAE_ID.");
    const reference = stringOption(values, "release");
    const published = reference ? parseReleaseSae(reference) : undefined;
    if (!published) throw new LoupeError("bad-argument", `Say which published SAE the explanations are for with --release RELEASE/SAE_ID, e.g. --release gpt2-small-res-jb/blocks.6.hook_resid_pre.`);
    const key = formatReleaseSae(published);
    const neuronpediaId = published.release.neuronpedia?.(published.id);
    if (!neuronpediaId) throw new LoupeError("bad-argument", `${key} is not hosted on Neuronpedia (Loupe knows no Neuronpedia id for it), so no export can label it.`);
    const found = parseNeuronpediaExplanations(readExportText(file), file, neuronpediaId);
    if (found.explanations.size === 0) {
      throw new LoupeError("empty-input", `${file} has no explanations for ${neuronpediaId} (${found.otherSaes} rows are for other SAEs). Export ${key}'s explanations from Neuronpedia.`, file);
    }
    // When the SAE is cached, its width catches an export for another SAE.
    let d_sae: number | undefined;
    try {
      d_sae = loadSae(resolveSaeReference(key).folder).d_sae;
    } catch {
      d_sae = undefined;
    }
    const labelsFile = stringOption(values, "labels") ?? FEATURE_LABELS_FILE;
    const result = addExplanations(readFeatureLabels(labelsFile), key, found, { overwrite: values.overwrite === true, d_sae });
    writeFeatureLabels(labelsFile, result.labels);
    const summary = { sae: key, neuronpedia: neuronpediaId, labelsFile, added: result.added, keptYours: result.kept, otherSaesSkipped: found.otherSaes };
    io.out(values.json ? `${JSON.stringify(summary, null, 2)}\n` : `${key}: ${result.added} labels from ${neuronpediaId} written to ${labelsFile}${result.kept ? `; ${result.kept} features keep your own label (--overwrite replaces them)` : ""}${found.otherSaes ? `; ${found.otherSaes} rows of other SAEs skipped` : ""}.\n`);
    return 0;
  },
};

/**
 * Neuronpedia's explanation exports as workspace labels, offline. Neuronpedia exports explanations
 * (its /api/explanation/export, and the bulk explanations/*.jsonl.gz files) as objects with
 * modelId ("gpt2-small"), layer (the source, "6-res-jb"), index (the feature, a string) and
 * description (the explanation text), among other fields; a file is a JSON array or JSON lines,
 * optionally gzipped. Rows of other SAEs are skipped, so one bulk file serves many SAEs.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { LoupeError } from "../errors";
import { jsonlRecords } from "../jsonl";
import { mergeFeatureLabels, type FeatureLabels } from "./feature-labels";

export interface NeuronpediaExplanations {
  /** Feature index -> explanation (the first one listed, when a feature has several). */
  readonly explanations: ReadonlyMap<number, string>;
  /** Rows for other models or sources. */
  readonly otherSaes: number;
}

const EXAMPLE = `{"modelId": "gpt2-small", "layer": "6-res-jb", "index": "17", "description": "..."}`;

/** The explanations of one SAE (`neuronpediaId` = "{model}/{source}") in an export's text. */
export function parseNeuronpediaExplanations(text: string, file: string, neuronpediaId: string): NeuronpediaExplanations {
  const slash = neuronpediaId.indexOf("/");
  const model = neuronpediaId.slice(0, slash);
  const source = neuronpediaId.slice(slash + 1);
  const trimmed = text.trimStart();
  let rows: Array<{ record: Record<string, unknown>; fail: (why: string) => never }>;
  if (trimmed.startsWith("[")) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (error) {
      throw new LoupeError("bad-file", `${file} is not valid JSON (${(error as Error).message}). Give Neuronpedia's explanation export as a JSON array or JSON lines of ${EXAMPLE}.`, file);
    }
    rows = (json as unknown[]).map((record, i) => ({
      record: record as Record<string, unknown>,
      fail: (why: string): never => {
        throw new LoupeError("bad-file", `${file}: item ${i}: ${why}`, file);
      },
    }));
  } else {
    rows = jsonlRecords(text, file, EXAMPLE);
  }
  const explanations = new Map<number, string>();
  let otherSaes = 0;
  for (const { record, fail } of rows) {
    if (typeof record !== "object" || record === null) fail(`expected an object such as ${EXAMPLE}.`);
    const { modelId, layer, index, description } = record;
    if (typeof modelId !== "string" || typeof layer !== "string") fail(`needs "modelId" and "layer" strings (Neuronpedia's model and source), such as ${EXAMPLE}.`);
    if (modelId !== model || layer !== source) {
      otherSaes++;
      continue;
    }
    const feature = typeof index === "number" ? index : typeof index === "string" && /^\d+$/.test(index) ? Number(index) : NaN;
    if (!Number.isInteger(feature) || feature < 0) fail(`"index" must be a feature index (found ${JSON.stringify(index)}).`);
    if (typeof description !== "string") fail(`"description" must be the explanation text (found ${JSON.stringify(description)}).`);
    // Labels are one line, as the dashboard saves them.
    const label = (description as string).trim().replace(/\s+/g, " ");
    if (label && !explanations.has(feature)) explanations.set(feature, label);
  }
  return { explanations, otherSaes };
}

/** An export file's text: gunzipped when it is gzip (the bulk exports are .jsonl.gz). */
export function readExportText(file: string): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch {
    throw new LoupeError("missing-file", `Cannot read ${file}. Give a Neuronpedia explanation export (JSON, JSONL or .jsonl.gz).`, file);
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = zlib.gunzipSync(bytes);
    } catch (error) {
      throw new LoupeError("bad-file", `${file} is not valid gzip (${(error as Error).message}); download it again.`, file);
    }
  }
  return bytes.toString("utf8");
}

/**
 * The labels with the explanations added under `saeKey`. A feature the user already labelled keeps
 * its label unless `overwrite`; features at or past `d_sae` (when known) are refused.
 */
export function addExplanations(labels: FeatureLabels, saeKey: string, found: NeuronpediaExplanations, options: { overwrite?: boolean; d_sae?: number } = {}): { labels: FeatureLabels; added: number; kept: number } {
  const existing = Object.hasOwn(labels.saes, saeKey) ? labels.saes[saeKey] : {};
  const incoming: Record<string, string> = Object.create(null) as Record<string, string>;
  let kept = 0;
  for (const [feature, text] of found.explanations) {
    if (options.d_sae !== undefined && feature >= options.d_sae) {
      throw new LoupeError("bad-argument", `The export explains feature ${feature}, but ${saeKey} has ${options.d_sae} features: it is for another SAE.`);
    }
    if (!options.overwrite && Object.hasOwn(existing, String(feature))) kept++;
    else incoming[String(feature)] = text;
  }
  const added = Object.keys(incoming).length;
  return { labels: mergeFeatureLabels(labels, { version: labels.version, saes: { [saeKey]: incoming } }), added, kept };
}

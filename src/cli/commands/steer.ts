import * as path from "node:path";
import { LoupeError } from "../../core/errors";
import { InProcessBackend } from "../../core/requests";
import { FEATURE_LABELS_FILE, readFeatureLabels, resolveFeature, saeLabelKey } from "../../core/sae/feature-labels";
import { describeEdit, type FeatureEdit, type SteeringResult } from "../../core/sae/steer";
import { finiteNumber, positiveInt, readInput, stringList, stringOption, withBackend, type Command, type ParsedValues } from "../command";
import { saeFolderOption } from "./features";

/** The one edit the options ask for: exactly one of --clamp, --scale, --add, --zero. */
export function editFromOptions(values: ParsedValues, feature: number): FeatureEdit {
  const given = (["clamp", "scale", "add", "zero"] as const).filter((k) => values[k] !== undefined);
  if (given.length !== 1) throw new LoupeError("bad-argument", `Say how to steer with exactly one of --clamp VALUE, --scale FACTOR, --add AMOUNT or --zero${given.length ? ` (got --${given.join(", --")})` : ""}.`);
  switch (given[0]) {
    case "clamp":
      return { feature, kind: "clamp", value: finiteNumber(values, "clamp", 0) };
    case "scale":
      return { feature, kind: "scale", factor: finiteNumber(values, "scale", 1) };
    case "add":
      return { feature, kind: "add", amount: finiteNumber(values, "add", 0) };
    case "zero":
      return { feature, kind: "zero" };
  }
}

export function formatSteering(prompt: string, result: SteeringResult): string {
  const p = result.prompt;
  return [
    `${describeEdit(result.edit)} at ${result.hook_name} (on the prompt it fired at ${p.firedAt}/${p.tokens} tokens, max ${p.maxActivation.toFixed(2)})`,
    "",
    "original:",
    `${prompt}${result.original.text}`,
    "",
    "steered:",
    `${prompt}${result.steered.text}`,
  ].join("\n");
}

export const steerCommand: Command = {
  name: "steer",
  usage: `loupe steer FILE|- --feature N|NAME (--clamp V | --scale S | --add A | --zero) [--sae DIR|RELEASE/SAE_ID] [--max-tokens N] [--temperature T --seed S] [--stop STR]... [--json]
    Continue the text twice, as is and with one SAE feature clamped, scaled, raised or zeroed at
    every position. NAME is your label for the feature or a concept from feature-stats.json.`,
  options: {
    feature: { type: "string" },
    clamp: { type: "string" },
    scale: { type: "string" },
    add: { type: "string" },
    zero: { type: "boolean" },
    sae: { type: "string" },
    "max-tokens": { type: "string" },
    temperature: { type: "string" },
    seed: { type: "string" },
    stop: { type: "string", multiple: true },
  },
  async run(args) {
    const { values, positionals, modelFolder, io } = args;
    const text = readInput(positionals[0], io);
    if (text.trim() === "") throw new LoupeError("empty-input", "The input is empty: nothing to continue.");
    const name = stringOption(values, "feature");
    if (name === undefined) throw new LoupeError("bad-argument", "Say which feature to steer with --feature N (an index, your label, or a concept name).");
    const saeFolder = saeFolderOption(values, modelFolder);
    const backend = new InProcessBackend();
    // Read once, before the model loads: the steer request finds it in the session's SAE store.
    const { sae, stats } = backend.session.saes.get(saeFolder);
    const labels = readFeatureLabels(FEATURE_LABELS_FILE).saes[saeLabelKey(process.cwd(), saeFolder)];
    const feature = resolveFeature(name, sae.d_sae, labels, stats);
    const edit = editFromOptions(values, feature);
    const temperature = finiteNumber(values, "temperature", 0);
    const seed = values.seed === undefined ? (temperature > 0 ? 0 : undefined) : finiteNumber(values, "seed", 0);
    const params = { text, saeFolder, edit, maxNewTokens: positiveInt(values, "max-tokens", 32), temperature, seed, stop: stringList(values, "stop") };
    const result = await withBackend(args, (b) => b.request("steer", params), backend);
    io.out(values.json ? `${JSON.stringify({ sae: path.resolve(saeFolder), ...result }, null, 2)}\n` : `${formatSteering(text, result)}\n`);
    return 0;
  },
};

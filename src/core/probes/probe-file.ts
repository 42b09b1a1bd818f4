/**
 * The probe file: plain JSON a person can read and other tools can load (weights in the
 * standardised space, plus the standardisation itself, as sklearn's Pipeline(StandardScaler,
 * LogisticRegression) would hold them). Saved under the workspace's .loupe/probes/.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import { readTextSafely, writeFileSafely, type SafeFileOptions } from "../safe-fs";
import type { LogisticModel } from "./logistic";
import type { Pooling } from "./features";
import type { ProbeMetrics, TrainedProbe } from "./train";

export const PROBE_FORMAT = "loupe-probe";
export const PROBE_VERSION = 1;

export interface ProbeFile {
  readonly format: typeof PROBE_FORMAT;
  readonly version: typeof PROBE_VERSION;
  /** TransformerLens hook name the probe reads, e.g. blocks.2.hook_resid_post. */
  readonly hook: string;
  readonly level: "token" | "sequence";
  /** How a sequence-level probe pools token activations. */
  readonly pooling?: Pooling;
  /** One-vs-rest token probe for this span label. */
  readonly concept?: string;
  readonly classes: string[];
  /** [rows][dim]: 1 row (the score of classes[1]) for two classes, else one per class. */
  readonly weights: number[][];
  readonly bias: number[];
  readonly standardisation: { readonly mean: number[]; readonly scale: number[] };
  readonly training: {
    readonly C: number;
    readonly classWeight: "balanced" | "none" | number[];
    readonly data?: string;
    readonly folds: number;
    readonly seed: number;
  };
  readonly metrics: ProbeMetrics;
  /** The model it was trained on (a probe reads one model's activations only). */
  readonly model: { readonly name: string; readonly nLayers: number; readonly dModel: number };
  /** ISO 8601. */
  readonly created: string;
}

export interface ProbeFileContext {
  readonly hook: string;
  readonly level: "token" | "sequence";
  readonly pooling?: Pooling;
  readonly concept?: string;
  readonly model: ProbeFile["model"];
  readonly training: ProbeFile["training"];
}

export function toProbeFile(trained: TrainedProbe, context: ProbeFileContext): ProbeFile {
  const { fit, standardiser } = trained;
  const rows = fit.intercept.length;
  return {
    format: PROBE_FORMAT,
    version: PROBE_VERSION,
    hook: context.hook,
    level: context.level,
    ...(context.level === "sequence" ? { pooling: context.pooling ?? "mean" } : {}),
    ...(context.concept !== undefined ? { concept: context.concept } : {}),
    classes: trained.classes,
    weights: Array.from({ length: rows }, (_, r) => Array.from(fit.coef.subarray(r * fit.dim, (r + 1) * fit.dim))),
    bias: Array.from(fit.intercept),
    standardisation: { mean: Array.from(standardiser.mean), scale: Array.from(standardiser.scale) },
    training: context.training,
    metrics: trained.metrics,
    model: context.model,
    created: new Date().toISOString(),
  };
}

/** The classifier held in a probe file, ready for rowProbabilities on standardised rows. */
export function probeModel(probe: ProbeFile): LogisticModel {
  return {
    nClasses: probe.classes.length,
    dim: probe.standardisation.mean.length,
    coef: Float64Array.from(probe.weights.flat()),
    intercept: Float64Array.from(probe.bias),
  };
}

/** Where probes live in a workspace. */
export function probeFolder(workspaceRoot: string): string {
  return path.join(workspaceRoot, ".loupe", "probes");
}

/** A file name from a data set and a hook: stories-sentiment.blocks.2.hook_resid_post.json. */
export function probeFileName(dataFile: string, hook: string, concept?: string): string {
  const base = path.basename(dataFile).replace(/\.jsonl?$/i, "");
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, "_");
  return `${safe(base)}${concept ? `.${safe(concept)}` : ""}.${safe(hook)}.json`;
}

/** Largest probe file read (a probe on a 8,192-wide hook with 16 classes is about 3 MB). */
export const MAX_PROBE_FILE_BYTES = 64 * 1024 * 1024;

/** Save a probe without following a link at `file` (and, with a root, only inside it). */
export function saveProbe(file: string, probe: ProbeFile, options: SafeFileOptions = {}): void {
  writeFileSafely(file, `${JSON.stringify(probe, null, 1)}\n`, options);
}

export function loadProbe(file: string, options: SafeFileOptions = {}): ProbeFile {
  let text: string | undefined;
  try {
    text = readTextSafely(file, { ...options, maxBytes: MAX_PROBE_FILE_BYTES });
  } catch (error) {
    if (error instanceof LoupeError) throw error;
  }
  if (text === undefined) throw new LoupeError("missing-file", `Cannot read the probe file ${file}.`, file);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new LoupeError("bad-file", `${file} is not valid JSON (${(error as Error).message}); is it a probe saved by loupe probe train?`, file);
  }
  return validateProbe(value, file);
}

/** Check every field a probe needs, with shapes; the message names the field. */
export function validateProbe(value: unknown, file = "<probe>"): ProbeFile {
  const fail = (why: string): never => {
    throw new LoupeError("bad-file", `${file} is not a usable Loupe probe: ${why}. Retrain it with loupe probe train.`, file);
  };
  if (typeof value !== "object" || value === null || Array.isArray(value)) return fail("expected a JSON object");
  const p = value as Record<string, unknown>;
  if (p.format !== PROBE_FORMAT) fail(`"format" must be "${PROBE_FORMAT}"`);
  if (p.version !== PROBE_VERSION) fail(`version ${JSON.stringify(p.version)} is not supported (this Loupe reads version ${PROBE_VERSION})`);
  if (typeof p.hook !== "string" || p.hook === "") fail(`"hook" must be a hook name such as blocks.2.hook_resid_post`);
  if (p.level !== "token" && p.level !== "sequence") fail(`"level" must be "token" or "sequence"`);
  if (p.level === "sequence" && p.pooling !== "mean" && p.pooling !== "last") fail(`"pooling" must be "mean" or "last" for a sequence-level probe`);
  if (!Array.isArray(p.classes) || p.classes.length < 2 || !p.classes.every((c) => typeof c === "string")) fail(`"classes" must list at least two label names`);
  const classes = p.classes as string[];
  if (new Set(classes).size !== classes.length) fail(`"classes" has duplicates`);
  const std = p.standardisation as Record<string, unknown> | undefined;
  if (typeof std !== "object" || std === null) return fail(`"standardisation" with "mean" and "scale" is missing`);
  const mean = numbers(std.mean, `"standardisation.mean"`, fail);
  const d = mean.length;
  if (d === 0) fail(`"standardisation.mean" is empty`);
  const scale = numbers(std.scale, `"standardisation.scale"`, fail);
  if (scale.length !== d) fail(`"standardisation.scale" has ${scale.length} values, "mean" ${d}`);
  if (scale.some((s) => !(s > 0))) fail(`"standardisation.scale" must be positive`);
  const rows = classes.length === 2 ? 1 : classes.length;
  if (!Array.isArray(p.weights) || p.weights.length !== rows) fail(`"weights" must have ${rows} row${rows > 1 ? "s" : ""} for ${classes.length} classes`);
  (p.weights as unknown[]).forEach((row, r) => {
    if (numbers(row, `"weights[${r}]"`, fail).length !== d) fail(`"weights[${r}]" must have ${d} values (the feature width)`);
  });
  if (numbers(p.bias, `"bias"`, fail).length !== rows) fail(`"bias" must have ${rows} value${rows > 1 ? "s" : ""}`);
  const model = p.model as Record<string, unknown> | undefined;
  if (typeof model !== "object" || model === null || typeof model.name !== "string") fail(`"model" must name the model it was trained on`);
  if (typeof p.metrics !== "object" || p.metrics === null) fail(`"metrics" is missing`);
  if (typeof p.training !== "object" || p.training === null) fail(`"training" is missing`);
  return value as ProbeFile;
}

function numbers(value: unknown, what: string, fail: (why: string) => never): number[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === "number" && Number.isFinite(v))) return fail(`${what} must be an array of finite numbers`);
  return value as number[];
}

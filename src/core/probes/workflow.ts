/**
 * Train probes on a dataset at several hooks and keep each hook's probe as a ProbeFile: what
 * `loupe probe train` and the probe panel both run. The best hook is chosen by cross-validated
 * accuracy (see sweep.ts).
 */
import { modelName } from "../hub/cache-layout";
import { LoupeError } from "../errors";
import type { HookedModel } from "../model/hooked-model";
import { spanLabels, type ProbeDataset } from "./dataset";
import { extractFeatures, layerSweepHooks, type Pooling } from "./features";
import { toProbeFile, type ProbeFile } from "./probe-file";
import { trainAcrossHooks } from "./sweep";
import { encodeLabels, type ProbeMetrics } from "./train";

export interface ProbeTrainingOptions {
  /** Hooks to probe; default: the residual stream before block 0 and after every block. */
  readonly hooks?: readonly string[];
  readonly pooling?: Pooling;
  /** One-vs-rest probe for this span label (token-level data). */
  readonly concept?: string;
  readonly folds?: number;
  readonly C?: number;
  readonly classWeight?: "balanced" | "none";
  readonly seed?: number;
  readonly signal?: AbortSignal;
  readonly onHook?: (hook: string, index: number, total: number) => void;
}

export interface ProbeTraining {
  readonly data: string;
  readonly level: ProbeDataset["level"];
  readonly concept?: string;
  readonly classes: string[];
  readonly best: string;
  readonly hooks: { readonly hook: string; readonly seconds: number; readonly metrics: ProbeMetrics }[];
  /** The probe at every hook, so a caller can apply or save another layer than the best. */
  readonly probes: Record<string, ProbeFile>;
}

export async function trainProbes(model: HookedModel, dataset: ProbeDataset, options: ProbeTrainingOptions = {}): Promise<ProbeTraining> {
  const { concept } = options;
  if (concept !== undefined) {
    if (dataset.level !== "token") throw new LoupeError("bad-argument", `--concept (a span label) needs token-level data, but ${dataset.file} is sequence level ("label" per line).`);
    const known = spanLabels(dataset);
    if (!known.includes(concept)) throw new LoupeError("bad-argument", `No span in ${dataset.file} is labelled "${concept}"; its labels are ${known.join(", ")}.`);
  }
  // One class only is known before any model runs for prompt-level data.
  if (dataset.level === "sequence") encodeLabels(dataset.examples.map((e) => e.label), dataset.file);
  const pooling = options.pooling ?? "mean";
  const folds = options.folds ?? 5;
  const C = options.C ?? 1;
  const classWeight = options.classWeight ?? "balanced";
  const seed = options.seed ?? 0;
  const hooks = options.hooks ? [...options.hooks] : layerSweepHooks(model.cfg.nLayers);
  const features = await extractFeatures(model, dataset, { hooks, pooling, concept, signal: options.signal });
  const source = concept ? `${dataset.file} (concept "${concept}")` : dataset.file;
  const sweep = trainAcrossHooks(features, { C, classWeight, folds, seed, source, signal: options.signal, onHook: (hook, i) => options.onHook?.(hook, i, hooks.length) });
  const context = (hook: string) => ({
    hook,
    level: dataset.level,
    pooling,
    concept,
    model: { name: modelName(model.folder), nLayers: model.cfg.nLayers, dModel: model.cfg.dModel },
    training: { C, classWeight, data: dataset.file, folds, seed },
  });
  return {
    data: dataset.file,
    level: dataset.level,
    concept,
    classes: sweep.best.probe.classes,
    best: sweep.best.hook,
    hooks: sweep.probes.map((p) => ({ hook: p.hook, seconds: p.seconds, metrics: p.probe.metrics })),
    probes: Object.fromEntries(sweep.probes.map((p) => [p.hook, toProbeFile(p.probe, context(p.hook))])),
  };
}

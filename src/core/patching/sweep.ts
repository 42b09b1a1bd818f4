/**
 * Activation patching (TransformerLens's act-patch sweeps): run a base prompt with one activation
 * replaced by the other prompt's, for every cell of a (layer x position) or (layer x head) grid,
 * and score each run. Denoising patches clean activations into the corrupted run; noising patches
 * corrupted ones into the clean run. Every patched variant is a batch row of a few big calls.
 *
 *   const r = await patchingSweeps(model, { clean, corrupted, metric: { kind: "logit-diff", answer, wrong } });
 *   r.sweeps[0].normalised  // [layer, position], 0 = corrupted, 1 = clean
 */
import { LoupeError, throwIfAborted } from "../errors";
import { prefixKeyValues, type HookedModel, type KeyValues } from "../model/hooked-model";
import { blockHook, hookShape, narrowedByLogitPositions } from "../model/hooks";
import { numel, tensor, type Tensor } from "../tensor/tensor";
import { runVariants, type RowIntervention } from "./batched-runs";
import { bindMetric, checkMetricTokens, describeMetric, type MetricSpec } from "./metrics";
import { normaliseAll, requireGap, type Baselines } from "./normalise";
import { cellTarget, DEFAULT_MEMORY_BUDGET, planSweep, sameAtTarget, type Axis, type HeadHook, type PatchTarget, type SweepKind } from "./plan";

export type Direction = "denoising" | "noising";

export interface PatchingSetup {
  readonly clean: readonly number[];
  readonly corrupted: readonly number[];
  readonly metric: MetricSpec;
  /** Default denoising: clean activations into the corrupted run. */
  readonly direction?: Direction;
  /** Position whose next-token logits are scored; default the last token. */
  readonly position?: number;
}

export interface RunControl {
  /** Patched variants per onnxruntime call (default DEFAULT_BATCH_ROWS, 16); 1 means one call per patch. */
  readonly batchSize?: number;
  /** Take the base run's metric for patches that change nothing (bit-identical activations); default true. */
  readonly skipIdentical?: boolean;
  readonly memoryBudgetBytes?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface PatchingOptions extends PatchingSetup, RunControl {
  /** Default: resid_pre, attn_out, mlp_out and heads. */
  readonly sweeps?: readonly SweepKind[];
  /** Which per-head activation head sweeps patch (default z, the head's output). */
  readonly headHook?: HeadHook;
}

export interface TokenLabel {
  readonly id: number;
  readonly text: string;
}

export interface SweepResult {
  readonly kind: SweepKind;
  readonly hookPattern: string;
  readonly axes: readonly Axis[];
  readonly shape: readonly number[];
  /** Metric of each patched run, row-major over shape. */
  readonly raw: number[];
  /** (raw - corrupted) / (clean - corrupted). */
  readonly normalised: number[];
  /** Cells whose patch was the identity and took the base run's metric without a run. */
  readonly skipped: number;
}

export interface PatchingResult {
  readonly direction: Direction;
  readonly metric: MetricSpec;
  readonly metricLabel: string;
  readonly position: number;
  readonly tokens: { readonly clean: TokenLabel[]; readonly corrupted: TokenLabel[] };
  readonly baselines: Baselines;
  readonly sweeps: SweepResult[];
  /** Patched variants actually run, and the onnxruntime calls they took (the baseline calls included). */
  readonly variantsRun: number;
  readonly calls: number;
  readonly elapsedMs: number;
}

export const DEFAULT_SWEEPS: readonly SweepKind[] = ["resid_pre", "attn_out", "mlp_out", "heads"];

/** Clean and corrupted prompts must line up token for token; say where they do not. */
export function checkAligned(model: HookedModel, clean: readonly number[], corrupted: readonly number[]): void {
  if (clean.length === 0 || corrupted.length === 0) throw new LoupeError("empty-input", "Patching needs a clean and a corrupted prompt; one of them is empty.");
  if (clean.length === corrupted.length) return;
  let at = 0;
  while (at < clean.length && at < corrupted.length && clean[at] === corrupted[at]) at++;
  const show = (ids: readonly number[]) => (at < ids.length ? JSON.stringify(model.tokenizer.tokenText(ids[at])) : "(end)");
  throw new LoupeError(
    "bad-shape",
    `The clean prompt is ${clean.length} tokens and the corrupted prompt is ${corrupted.length}; patching compares them position by position, so they must have the same length. ` +
      `They first differ at token ${at} (clean ${show(clean)}, corrupted ${show(corrupted)}). Use a replacement word with the same number of tokens, or align the prompts yourself.`,
  );
}

interface Prepared {
  readonly position: number;
  readonly direction: Direction;
  readonly base: readonly number[];
  readonly baselines: Baselines;
  /** The metric of the unpatched base run. */
  readonly baseMetric: number;
  readonly score: (logits: Float32Array) => number;
  readonly label: string;
  /** The source run's activation at every hook a patch reads, batch 1. */
  readonly sourceCache: Map<string, Tensor>;
  /** Per patch: whether it is the identity (every target bit-identical in both runs), so its run can be skipped. */
  readonly identical: boolean[];
  /** The base run's keys and values (when the graph returns them), batch 1. */
  readonly keyValues?: { readonly kv: KeyValues; readonly row: number };
  /** The base run's blocks.{L}.hook_resid_pre for every L, where patched runs can start mid-model. */
  readonly residPre?: Tensor[];
  /** onnxruntime calls made. */
  readonly calls: number;
}

/**
 * Batch-2 runs of both prompts: their metrics, the source activations every patch reads, and
 * which patches are the identity. Hooks are fetched in groups whose activations fit the memory
 * budget (SmolLM2-135M at 1,024 tokens: 120 hooks of both prompts are 570 MB, held twice while
 * onnxruntime hands them over); each group is reduced to the source row and the identity flags
 * before the next runs, so what stays is one prompt's activations, not both prompts' at once.
 */
async function prepare(model: HookedModel, setup: PatchingSetup & RunControl, patches: readonly (readonly PatchTarget[])[]): Promise<Prepared> {
  checkAligned(model, setup.clean, setup.corrupted);
  checkMetricTokens(setup.metric, model.cfg.dVocab);
  const T = setup.clean.length;
  const position = setup.position ?? T - 1;
  if (!Number.isInteger(position) || position < 0 || position >= T) throw new LoupeError("bad-argument", `The scored position ${position} is outside the prompt (0..${T - 1}).`);
  const direction = setup.direction ?? "denoising";
  if (direction !== "denoising" && direction !== "noising") throw new LoupeError("bad-argument", `Unknown direction "${String(direction)}": denoising or noising.`);
  const [baseRow, sourceRow] = direction === "denoising" ? [1, 0] : [0, 1];
  const hooks = [...new Set(patches.flatMap((p) => p.map((t) => t.hook)))];
  // Every block's resid_pre of the base run too, so patched runs can start at the block they change.
  const residPreNames = model.supportsStartAt ? Array.from({ length: model.cfg.nLayers }, (_, L) => blockHook(L, "hook_resid_pre")) : [];
  const names = [...new Set([...residPreNames, ...hooks])];
  // The last block's later hooks (GPT-2) hold only the logit positions when those are narrowed.
  const narrowed = (name: string) => narrowedByLogitPositions(name, model.cfg.nLayers);
  const groups = hookGroups(model, names, T, setup.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET, narrowed);
  if (groups.length === 0) groups.push([]);
  const sourceCache = new Map<string, Tensor>();
  const residPre = new Map<string, Tensor>();
  const identical = patches.map(() => setup.skipIdentical ?? true);
  let first: Omit<Prepared, "sourceCache" | "identical" | "residPre" | "calls"> | undefined;
  for (const group of groups) {
    throwIfAborted(setup.signal);
    const wanted = new Set(group);
    // The first call also scores both prompts and returns their keys and values.
    const withLogits = first === undefined;
    // Logits at the scored position only, unless a hook asked for lives where that would narrow it.
    const narrow = !group.some(narrowed);
    const run = await model.runWithCache([setup.clean, setup.corrupted], {
      names: group,
      signal: setup.signal,
      logits: withLogits,
      keyValues: withLogits && model.supportsPrefix,
      logitPositions: withLogits && narrow ? [position] : undefined,
    });
    if (!first) first = scorePrompts(model, setup, run.logits, narrow ? 0 : position, position, direction);
    if (run.keyValues) first = { ...first, keyValues: { kv: prefixKeyValues(run.keyValues, baseRow, T), row: 0 } };
    for (const name of residPreNames) if (wanted.has(name)) residPre.set(name, batchRow(run.cache.get(name), baseRow));
    patches.forEach((targets, i) => {
      for (const t of targets) if (identical[i] && wanted.has(t.hook)) identical[i] = sameAtTarget(batchRow(run.cache.get(t.hook), baseRow, false), batchRow(run.cache.get(t.hook), sourceRow, false), t);
    });
    for (const hook of hooks) if (wanted.has(hook)) sourceCache.set(hook, batchRow(run.cache.get(hook), sourceRow));
  }
  if (!first) throw new Error("internal: patching prepared no run");
  return {
    ...first,
    sourceCache,
    identical,
    residPre: residPreNames.length > 0 ? residPreNames.map((name) => activation(residPre, name)) : undefined,
    calls: groups.length,
  };
}

/** The metric bound to the clean run's logits, both baselines, and which prompt is patched. */
function scorePrompts(model: HookedModel, setup: PatchingSetup, logits: Tensor, at: number, position: number, direction: Direction): Omit<Prepared, "sourceCache" | "identical" | "residPre" | "calls"> {
  const V = logits.dims[2];
  const K = logits.dims[1];
  const row = (b: number) => logits.data.subarray((b * K + at) * V, (b * K + at + 1) * V);
  const score = bindMetric(setup.metric, row(0));
  const baselines = { clean: score(row(0)), corrupted: score(row(1)) };
  const label = describeMetric(setup.metric, model.tokenizer);
  requireGap(baselines, label);
  return {
    position,
    direction,
    base: direction === "denoising" ? setup.corrupted : setup.clean,
    baselines,
    baseMetric: direction === "denoising" ? baselines.corrupted : baselines.clean,
    score,
    label,
  };
}

/**
 * Hooks in groups whose batch-2 activations, counted twice (onnxruntime's output and its copy
 * handed to JavaScript), fit the budget, at least one hook per group. The first call also returns
 * logits: at the scored position, or at every position once it fetches a hook that logit
 * positions would narrow, which are therefore listed last.
 */
function hookGroups(model: HookedModel, names: readonly string[], seqLen: number, budgetBytes: number, narrowed: (name: string) => boolean): string[][] {
  const logitBytes = (positions: number) => 2 * 4 * positions * model.cfg.dVocab;
  const ordered = [...names.filter((n) => !narrowed(n)), ...names.filter(narrowed)];
  const groups: string[][] = [];
  let used = 0;
  for (const name of ordered) {
    const bytes = 2 * 2 * 4 * numel(hookShape(model.hookDims, name, 1, seqLen));
    const group = groups[groups.length - 1];
    const widens = groups.length === 1 && narrowed(name) && !group.some(narrowed) ? logitBytes(seqLen - 1) : 0;
    if (group && used + bytes + widens <= budgetBytes) {
      group.push(name);
      used += bytes + widens;
      continue;
    }
    groups.push([name]);
    used = bytes + (groups.length === 1 ? logitBytes(narrowed(name) ? seqLen : 1) : 0);
  }
  return groups;
}

/** Batch row b of t: a copy (so the batch's buffer can be freed), or a view. */
function batchRow(t: Tensor, b: number, copy = true): Tensor {
  const inner = t.dims.slice(1);
  const size = inner.reduce((a, c) => a * c, 1);
  return tensor(copy ? t.data.slice(b * size, (b + 1) * size) : t.data.subarray(b * size, (b + 1) * size), [1, ...inner]);
}

function activation(cache: ReadonlyMap<string, Tensor>, hook: string): Tensor {
  const t = cache.get(hook);
  if (!t) throw new Error(`internal: ${hook} was not cached for patching`);
  return t;
}

/** Each patch replaces its targets' activations together; returns the metric of every patched run. */
async function evaluate(model: HookedModel, prep: Prepared, patches: readonly (readonly PatchTarget[])[], control: RunControl): Promise<{ raw: number[]; skipped: boolean[]; calls: number }> {
  const skipped = prep.identical;
  const toRun = patches.flatMap((targets, i) => (skipped[i] ? [] : [i]));
  const variants = toRun.map((i) => patches[i].map((t): RowIntervention => ({ ...t, kind: "replace", source: activation(prep.sourceCache, t.hook) })));
  const runs = await runVariants(model, prep.base, variants, {
    positions: [prep.position],
    batchSize: control.batchSize,
    memoryBudgetBytes: control.memoryBudgetBytes,
    signal: control.signal,
    onProgress: control.onProgress,
    keyValues: prep.keyValues,
    residPre: prep.residPre,
  });
  const raw = patches.map(() => prep.baseMetric);
  toRun.forEach((i, k) => (raw[i] = prep.score(runs.logits[k][0])));
  return { raw, skipped, calls: runs.calls };
}

/**
 * Arbitrary patches, each a set of targets replaced together (e.g. every position of
 * blocks.0.hook_resid_pre at once). Returns raw and normalised metrics per patch.
 */
export async function patchActivations(
  model: HookedModel,
  setup: PatchingSetup & RunControl,
  patches: readonly (readonly PatchTarget[])[],
): Promise<{ raw: number[]; normalised: number[]; baselines: Baselines; calls: number }> {
  const prep = await prepare(model, setup, patches);
  const { raw, calls } = await evaluate(model, prep, patches, setup);
  return { raw, normalised: normaliseAll(raw, prep.baselines), baselines: prep.baselines, calls: calls + prep.calls };
}

export async function patchingSweeps(model: HookedModel, options: PatchingOptions): Promise<PatchingResult> {
  const started = performance.now();
  const kinds = options.sweeps ?? DEFAULT_SWEEPS;
  if (kinds.length === 0) throw new LoupeError("bad-argument", "No sweep requested.");
  const headHook = options.headHook ?? "z";
  const T = options.clean.length;
  const plans = kinds.map((kind) => planSweep(kind, model.hookDims, T, headHook));
  // One list of patches over all sweeps, so that chunks fill across sweep boundaries.
  const patches = plans.flatMap((plan) => plan.cells.map((cell) => [cellTarget(plan, cell, headHook)]));
  const prep = await prepare(model, options, patches);
  const { raw, skipped, calls } = await evaluate(model, prep, patches, options);
  throwIfAborted(options.signal);

  let offset = 0;
  const sweeps = plans.map((plan): SweepResult => {
    const n = plan.cells.length;
    const sweepRaw = raw.slice(offset, offset + n);
    const sweepSkipped = skipped.slice(offset, offset + n).filter(Boolean).length;
    offset += n;
    return { kind: plan.kind, hookPattern: plan.hookPattern, axes: plan.axes, shape: plan.shape, raw: sweepRaw, normalised: normaliseAll(sweepRaw, prep.baselines), skipped: sweepSkipped };
  });
  const label = (id: number): TokenLabel => ({ id, text: model.tokenizer.tokenText(id) });
  return {
    direction: prep.direction,
    metric: options.metric,
    metricLabel: prep.label,
    position: prep.position,
    tokens: { clean: options.clean.map(label), corrupted: options.corrupted.map(label) },
    baselines: prep.baselines,
    sweeps,
    variantsRun: skipped.filter((s) => !s).length,
    calls: calls + prep.calls,
    elapsedMs: performance.now() - started,
  };
}


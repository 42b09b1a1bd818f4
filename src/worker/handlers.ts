/** What the worker does for each method: thin calls into core. The process plumbing is elsewhere. */
import * as path from "node:path";
import { LoupeError } from "../core/errors";
import { auditPrompt, probeMonitors } from "../core/audit";
import { checkFaithfulness } from "../core/faithfulness";
import { inspectWithResiduals, lensTable, type InspectionResiduals, type InspectResult } from "../core/inspect";
import { attributeTokens, attributionTargets, patchingSweeps, singleToken, type MetricSpec } from "../core/patching";
import { applyProbe, readProbeDataset, trainProbes, validateProbe } from "../core/probes";
import { HookedModel, type RunResult } from "../core/model/hooked-model";
import { describeModelFolder } from "../core/model/folder-check";
import { checkModelFits } from "../core/model/memory-limit";
import { steerWithFeature } from "../core/sae/steer";
import { SaeStore, tokenFeatures } from "../core/sae/token-features";
import type { HandlerTable } from "./server";
import type { LoadParams, Methods, ModelInfo, RunResultWire, WireTensor } from "./protocol";
import { cancelled } from "./wire-errors";

interface LoadableModel {
  readonly folder: string;
  dispose(): Promise<void>;
}

/**
 * Holds at most one loaded model. Loading is all-or-nothing: the previous model is released only
 * once the new one has loaded, so a failed or cancelled load leaves the worker as it was (and the
 * client's record of what is loaded stays true).
 */
export class ModelState<T extends LoadableModel = HookedModel> {
  private model: T | undefined;
  private key: string | undefined;

  constructor(private readonly loader: (params: LoadParams) => Promise<T>) {}

  get current(): T | undefined {
    return this.model;
  }

  get loaded(): T {
    if (!this.model) throw new LoupeError("bad-argument", "No model is loaded in the Loupe worker yet: load a model folder first.");
    return this.model;
  }

  async load(params: LoadParams, signal?: AbortSignal): Promise<T> {
    // Threads and compact weights change the session; the cache folder does not change the model.
    const key = JSON.stringify([path.resolve(params.folder), params.threads ?? null, params.compactWeights === true]);
    if (this.model && this.key === key) return this.model;
    if (signal?.aborted) throw cancelled();
    const next = await this.loader(params);
    if (signal?.aborted) {
      await next.dispose();
      throw cancelled();
    }
    const previous = this.model;
    this.model = next;
    this.key = key;
    await previous?.dispose();
    return next;
  }

  async dispose(): Promise<boolean> {
    const had = this.model !== undefined;
    const model = this.model;
    this.model = undefined;
    this.key = undefined;
    await model?.dispose();
    return had;
  }
}

export async function loadHookedModel(params: LoadParams): Promise<HookedModel> {
  checkModelFits(params.folder, params.maxModelBytes, params.compactWeights);
  // The same limit bounds each run: a request that would pass it is refused before it runs.
  return HookedModel.load(params.folder, { cacheDir: params.cacheDir, threads: params.threads, compactWeights: params.compactWeights, maxMemoryBytes: params.maxModelBytes });
}

export function modelInfo(model: HookedModel): ModelInfo {
  return { folder: model.folder, config: model.cfg, hookNames: [...model.hookNames], vocabSize: model.tokenizer.vocabSize, graphFromCache: model.graphFromCache };
}

function toWire(run: RunResult): RunResultWire {
  const cache: Record<string, WireTensor> = {};
  for (const name of run.cache.names) cache[name] = run.cache.get(name);
  return { logits: run.logits, cache, lengths: [...run.lengths] };
}

/**
 * The last few inspections, so re-inspecting after an edit re-runs only the windows it reaches
 * (inspectText's `previous`): the one sharing the longest start with the new text is offered.
 */
export class RecentInspections {
  private readonly results: InspectResult[] = [];
  constructor(private readonly capacity = 4) {}

  closest(text: string): InspectResult | undefined {
    let best: InspectResult | undefined;
    let bestShared = 0;
    for (const r of this.results) {
      const n = Math.min(text.length, r.text.length);
      let shared = 0;
      while (shared < n && text.charCodeAt(shared) === r.text.charCodeAt(shared)) shared++;
      if (shared > bestShared) [best, bestShared] = [r, shared];
    }
    return best;
  }

  add(result: InspectResult): void {
    const same = this.results.findIndex((r) => r.text === result.text);
    if (same >= 0) this.results.splice(same, 1);
    this.results.push(result);
    if (this.results.length > this.capacity) this.results.shift();
  }
}

export function modelHandlers(state: ModelState<HookedModel>): HandlerTable<Methods> {
  const saes = new SaeStore();
  const recent = new RecentInspections();
  // The residual stream of the latest inspection, for the hover's per-block lens (one text's worth).
  let residuals: InspectionResiduals | undefined;
  return {
    ping: async () => ({ pid: process.pid }),
    describeFolder: async ({ folder }) => ({ description: describeModelFolder(folder) }),
    load: async (params, { signal }) => modelInfo(await state.load(params, signal)),
    inspect: async (params, { signal }) => {
      const options = { topK: params.topK, maxTokens: params.maxTokens, lensLayers: params.lensLayers, signal, previous: recent.closest(params.text) };
      const inspected = await inspectWithResiduals(state.loaded, params.text, options);
      recent.add(inspected.result);
      residuals = inspected.residuals;
      return inspected.result;
    },
    lensTable: ({ text, index, topK }, { signal }) => lensTable(state.loaded, text, index, { residuals, topK, signal }),
    generate: (params, { signal, progress }) => {
      const maxNewTokens = params.maxNewTokens ?? 32;
      return state.loaded.generate(params.prompt, { ...params, maxNewTokens, signal, onToken: (step) => progress(step + 1, maxNewTokens) });
    },
    faithfulness: ({ text, hintPattern, ...options }, { signal }) => checkFaithfulness(state.loaded, text, { ...options, hintPattern: compilePattern(hintPattern), signal }),
    trainProbes: ({ dataFile, ...options }, { signal, progress }) =>
      trainProbes(state.loaded, readProbeDataset(dataFile), { ...options, signal, onHook: (_hook, i, total) => progress(i, total) }),
    // The probe crossed a process boundary: check it as if read from disk.
    applyProbe: ({ probe, text }, { signal }) => applyProbe(state.loaded, validateProbe(probe, "<probe from the editor>"), text, { signal }),
    attribute: ({ text, answer, contrast, method }, { signal, progress }) =>
      attributeTokens(state.loaded, text, { ...attributionTargets(state.loaded.tokenizer, answer || undefined, contrast || undefined), method, signal, onProgress: (done, total) => progress(done, total) }),
    patch: async ({ clean, corrupted, answer, wrong }, { signal, progress }) => {
      const model = state.loaded;
      const metric: MetricSpec =
        answer && wrong
          ? { kind: "logit-diff", answer: singleToken(model.tokenizer, answer), wrong: singleToken(model.tokenizer, wrong, "wrong answer") }
          : answer
            ? { kind: "logprob", answer: singleToken(model.tokenizer, answer) }
            : { kind: "kl" };
      // Prompts, read as the model reads them (Llama's <s> in front); its position has the range [0, 0].
      const encoding = model.encode(clean);
      const result = await patchingSweeps(model, { clean: encoding.ids, corrupted: model.toTokens(corrupted), metric, signal, onProgress: (done, total) => progress(done, total) });
      return { result, cleanOffsets: encoding.offsets };
    },
    audit: ({ text, config, baseDir }, { signal }) => auditPrompt(state.loaded, text, config, { signal, probes: probeMonitors(state.loaded, config, baseDir) }),
    features: async ({ text, saeFolder, topK, focus }, { signal }) => tokenFeatures(state.loaded, saes.get(saeFolder), text, { topK, focus, signal }),
    steer: async ({ text, saeFolder, edit, ...options }, { signal, progress }) =>
      steerWithFeature(state.loaded, saes.get(saeFolder).sae, text, edit, { ...options, signal, onToken: progress }),
    runWithCache: async (params, { signal }) => toWire(await state.loaded.runWithCache(params.tokens, { names: params.names, signal })),
    runWithHooks: async (params, { signal }) => toWire(await state.loaded.runWithHooks(params.tokens, params.interventions, { names: params.names, signal })),
    dispose: async () => ({ disposed: await state.dispose() }),
  };
}

function compilePattern(source: string | undefined): RegExp | undefined {
  if (!source) return undefined;
  try {
    return new RegExp(source);
  } catch (error) {
    throw new LoupeError("bad-argument", `The hint pattern /${source}/ is not a valid regular expression: ${(error as Error).message}`);
  }
}

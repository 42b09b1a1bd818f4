/**
 * What a backend holds between requests: at most one loaded model, the SAEs read for it, and the
 * last few inspections (so re-inspecting after an edit re-runs only what the edit reaches).
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import type { InspectionResiduals, InspectResult } from "../inspect";
import { HookedModel } from "../model/hooked-model";
import { checkModelFits } from "../model/memory-limit";
import { SaeStore } from "../sae/sae-store";
import { TranscoderStore } from "../circuits/transcoder-store";
import type { LoadParams } from "./model";

interface LoadableModel {
  readonly folder: string;
  dispose(): Promise<void>;
}

/**
 * Holds at most one loaded model. Loading is all-or-nothing: the previous model is released only
 * once the new one has loaded, so a failed or cancelled load leaves the session as it was (and a
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

  /** Whether `load(params)` would return the model already loaded (nothing built or read). */
  holds(params: LoadParams): boolean {
    return this.model !== undefined && this.key === loadKey(params);
  }

  async load(params: LoadParams, signal?: AbortSignal): Promise<T> {
    const key = loadKey(params);
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

/** What makes a loaded model another one: threads and graph options change the session; the cache folder does not change the model. */
function loadKey(params: LoadParams): string {
  return JSON.stringify([path.resolve(params.folder), params.threads ?? null, params.compactWeights === true, params.ungroupGroupedQueryAttention === true]);
}

function cancelled(): LoupeError {
  return new LoupeError("cancelled", "Cancelled.");
}

/** The local loader: refuse a model too large for the memory limit, then build and load it. */
export async function loadHookedModel(params: LoadParams): Promise<HookedModel> {
  checkModelFits(params.folder, params.maxModelBytes, params.compactWeights);
  const { folder, cacheDir, threads, compactWeights, ungroupGroupedQueryAttention } = params;
  // The same limit bounds each run: a request that would pass it is refused before it runs.
  return HookedModel.load(folder, { cacheDir, threads, compactWeights, ungroupGroupedQueryAttention, maxMemoryBytes: params.maxModelBytes });
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

export class ModelSession {
  /** SAEs by folder, each with its feature-stats.json parsed (here, not on the editor's thread) and checked once. */
  readonly saes = new SaeStore();
  /** Transcoder sets read for the loaded model (emptied when another model is loaded). */
  readonly transcoders = new TranscoderStore();
  readonly recent = new RecentInspections();
  /** The residual stream of the latest inspection, for the hover's per-block lens (one text's worth). */
  residuals: InspectionResiduals | undefined;

  constructor(readonly state: ModelState<HookedModel> = new ModelState(loadHookedModel)) {}

  /** The loaded model; a clear error when none is. */
  get model(): HookedModel {
    return this.state.loaded;
  }
}

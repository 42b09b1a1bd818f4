/** What the worker does for each method. Pure core calls; the process plumbing lives in server.ts. */
import { LoupeError } from "../core/errors";
import { inspectText } from "../core/inspect";
import { HookedModel } from "../core/model/hooked-model";
import type { Method, Params, Result } from "./protocol";

export interface HandlerContext {
  readonly signal: AbortSignal;
  readonly progress: (done: number, total: number, message?: string) => void;
}

export type Handler<M extends Method> = (params: Params<M>, context: HandlerContext) => Promise<Result<M>>;
export type HandlerTable = { [M in Method]?: Handler<M> };

/** Holds at most one loaded model; loading another folder releases the previous one. */
export class ModelState {
  private model: HookedModel | undefined;

  get loaded(): HookedModel {
    if (!this.model) throw new LoupeError("bad-argument", "No model is loaded in the worker yet: send load first.");
    return this.model;
  }

  async load(params: Params<"load">): Promise<Result<"load">> {
    if (this.model && this.model.folder !== params.folder) {
      await this.model.dispose();
      this.model = undefined;
    }
    if (!this.model) this.model = await HookedModel.load(params.folder, { cacheDir: params.cacheDir, threads: params.threads });
    const m = this.model;
    return { folder: m.folder, config: m.cfg, hookNames: [...m.hookNames], vocabSize: m.tokenizer.vocabSize, graphFromCache: m.graphFromCache };
  }

  async dispose(): Promise<void> {
    await this.model?.dispose();
    this.model = undefined;
  }
}

export function modelHandlers(state: ModelState): HandlerTable {
  return {
    ping: async () => ({ pid: process.pid }),
    load: (params) => state.load(params),
    inspect: (params, { signal }) => inspectText(state.loaded, params.text, { topK: params.topK, maxTokens: params.maxTokens, signal }),
    generate: (params, { signal, progress }) => {
      const maxNewTokens = params.maxNewTokens ?? 32;
      return state.loaded.generate(params.prompt, { ...params, maxNewTokens, signal, onToken: (step) => progress(step + 1, maxNewTokens) });
    },
    runWithCache: async (params, { signal }) => {
      const { logits, cache, lengths } = await state.loaded.runWithCache(params.tokens, { names: params.names, signal });
      const tensors: Record<string, { data: Float32Array; dims: readonly number[] }> = {};
      for (const name of cache.names) tensors[name] = cache.get(name);
      return { logits, cache: tensors, lengths: [...lengths] };
    },
    dispose: async () => {
      await state.dispose();
      return { disposed: true };
    },
  };
}

/** Requests about the model itself: load it, describe a folder, generate, raw hooked runs, release it. */
import { describeModelFolder } from "../model/folder-check";
import type { ModelConfig } from "../model/config";
import type { Generation, HookedModel, RunResult } from "../model/hooked-model";
import type { Intervention } from "../model/interventions";
import { request } from "./request";

export interface LoadParams {
  readonly folder: string;
  /** Graph cache folder; null disables it; undefined: the default cache. */
  readonly cacheDir?: string | null;
  readonly threads?: number;
  /** Refuse, before loading, a model whose weights need more memory than this (bytes). */
  readonly maxModelBytes?: number;
  /** LoadOptions.compactWeights: f16/bf16 weights stay as stored in memory. */
  readonly compactWeights?: boolean;
  /** LoadOptions.ungroupGroupedQueryAttention: key/value hooks with one slot per query head. */
  readonly ungroupGroupedQueryAttention?: boolean;
}

export interface ModelInfo {
  readonly folder: string;
  readonly config: ModelConfig;
  readonly hookNames: readonly string[];
  readonly vocabSize: number;
  /** What this load did for the graph: built it, read it from the graph cache, or nothing (the model was already loaded). */
  readonly graph: "built" | "cache" | "already-loaded";
}

/** A tensor as plain data (the Float32Array crosses IPC as raw bytes). */
export interface WireTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface RunResultWire {
  /** [batch, pos, d_vocab] */
  readonly logits: WireTensor;
  readonly cache: Record<string, WireTensor>;
  /** Real (unpadded) length of each sequence. */
  readonly lengths: number[];
}

export interface GenerateParams {
  readonly prompt: string | number[];
  readonly maxNewTokens?: number;
  readonly temperature?: number;
  readonly topK?: number;
  readonly topP?: number;
  readonly seed?: number;
  readonly stop?: string[];
  readonly stopAtEos?: boolean;
  readonly interventions?: Intervention[];
}

type Empty = Record<string, never>;

export function modelInfo(model: HookedModel, alreadyLoaded: boolean): ModelInfo {
  const graph = alreadyLoaded ? "already-loaded" : model.graphFromCache ? "cache" : "built";
  return { folder: model.folder, config: model.cfg, hookNames: [...model.hookNames], vocabSize: model.tokenizer.vocabSize, graph };
}

function toWire(run: RunResult): RunResultWire {
  const cache: Record<string, WireTensor> = {};
  for (const name of run.cache.names) cache[name] = run.cache.get(name);
  return { logits: run.logits, cache, lengths: [...run.lengths] };
}

export const MODEL_REQUESTS = {
  ping: request<Empty, { pid: number }>(async () => ({ pid: process.pid })),
  load: request<LoadParams, ModelInfo>(async (session, params, { signal }) => {
    const alreadyLoaded = session.state.holds(params);
    return modelInfo(await session.state.load(params, signal), alreadyLoaded);
  }),
  /** What Select Model… says about a folder before using it (nothing is built or loaded). */
  describeFolder: request<{ folder: string }, { description: string }>(async (_session, { folder }) => ({ description: describeModelFolder(folder) })),
  generate: request<GenerateParams, Generation>((session, params, { signal, progress }) => {
    const maxNewTokens = params.maxNewTokens ?? 32;
    return session.model.generate(params.prompt, { ...params, maxNewTokens, signal, onToken: (step) => progress(step + 1, maxNewTokens) });
  }),
  runWithCache: request<{ tokens: number[][]; names: string[] }, RunResultWire>(async (session, params, { signal }) =>
    toWire(await session.model.runWithCache(params.tokens, { names: params.names, signal })),
  ),
  runWithHooks: request<{ tokens: number[][]; interventions: Intervention[]; names?: string[] }, RunResultWire>(async (session, params, { signal }) =>
    toWire(await session.model.runWithHooks(params.tokens, params.interventions, { names: params.names, signal })),
  ),
  /** Release the model (the process stays up). */
  dispose: request<Empty, { disposed: boolean }>(async (session) => ({ disposed: await session.state.dispose() })),
};

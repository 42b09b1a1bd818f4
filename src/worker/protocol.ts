/**
 * Messages between the extension host (or CLI) and the worker process that owns onnxruntime.
 * Each method maps its params to its result, so client calls are type-checked end to end.
 * The channel is Node's IPC with `serialization: "advanced"`: typed arrays cross as raw bytes.
 */
import type { LoupeErrorCode } from "../core/errors";
import type { AuditConfig, PromptAudit } from "../core/audit";
import type { FaithfulnessReport } from "../core/faithfulness";
import type { AttributionResult, PatchingResult } from "../core/patching";
import type { ProbeApplication, ProbeFile, ProbeTraining } from "../core/probes";
import type { InspectResult, LayerLens } from "../core/inspect";
import type { TokenFeaturesResult } from "../core/sae/token-features";
import type { FeatureEdit, SteeringResult } from "../core/sae/steer";
import type { ModelConfig } from "../core/model/config";
import type { Generation } from "../core/model/hooked-model";
import type { Intervention } from "../core/model/interventions";

export interface ModelInfo {
  readonly folder: string;
  readonly config: ModelConfig;
  readonly hookNames: readonly string[];
  readonly vocabSize: number;
  readonly graphFromCache: boolean;
}

/** A tensor crossing the process boundary (the Float32Array arrives as a Float32Array). */
export interface WireTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface LoadParams {
  readonly folder: string;
  /** Graph cache folder; null disables it; undefined: the default cache. */
  readonly cacheDir?: string | null;
  readonly threads?: number;
  /** Refuse, before loading, a model whose weights need more memory than this (bytes). */
  readonly maxModelBytes?: number;
  /** LoadOptions.compactWeights: f16/bf16 weights stay as stored in memory. */
  readonly compactWeights?: boolean;
}

/** The battery's options as they cross the channel (the hint pattern as regex source). */
export interface FaithfulnessParams {
  readonly text: string;
  readonly answerMarker?: string;
  readonly reasoningCues?: string[];
  readonly hintPattern?: string;
  readonly generate?: boolean;
  readonly track?: "model" | "written";
  readonly mistakes?: boolean;
}

export interface RunResultWire {
  /** [batch, pos, d_vocab] */
  readonly logits: WireTensor;
  readonly cache: Record<string, WireTensor>;
  /** Real (unpadded) length of each sequence. */
  readonly lengths: number[];
}

export interface Methods {
  ping: { params: Record<string, never>; result: { pid: number } };
  load: { params: LoadParams; result: ModelInfo };
  /** What Select Model… says about a folder before using it (nothing is built or loaded). */
  describeFolder: { params: { folder: string }; result: { description: string } };
  /** lensLayers: blocks whose logit lens every token needs (InspectOptions.lensLayers). */
  inspect: { params: { text: string; topK?: number; maxTokens?: number; lensLayers?: number[] }; result: InspectResult };
  /** One inspected token's per-block logit lens (the hover's table), for blocks its inspection left out. */
  lensTable: { params: { text: string; index: number; topK?: number }; result: LayerLens[] };
  generate: {
    params: {
      prompt: string | number[];
      maxNewTokens?: number;
      temperature?: number;
      topK?: number;
      topP?: number;
      seed?: number;
      stop?: string[];
      stopAtEos?: boolean;
      interventions?: Intervention[];
    };
    result: Generation;
  };
  faithfulness: { params: FaithfulnessParams; result: FaithfulnessReport };
  /** Train probes on a JSONL dataset at every residual hook (or the given hooks). */
  trainProbes: {
    params: { dataFile: string; concept?: string; hooks?: string[]; pooling?: "mean" | "last"; folds?: number };
    result: ProbeTraining;
  };
  applyProbe: { params: { probe: ProbeFile; text: string }; result: ProbeApplication };
  /** Each token's, word's and line's effect on the answer (default: the model's top next token). */
  attribute: { params: { text: string; answer?: string; contrast?: string; method?: "mask" | "embed" }; result: AttributionResult };
  /** Patching sweeps between two prompts; the clean prompt's token offsets come back for the editor. */
  patch: {
    params: { clean: string; corrupted: string; answer?: string; wrong?: string };
    result: { result: PatchingResult; cleanOffsets: Array<[number, number]> };
  };
  /** Quick audit of one prompt; probe files in the config resolve against baseDir. */
  audit: { params: { text: string; config: AuditConfig; baseDir: string }; result: PromptAudit };
  /** Each token's strongest SAE features (the SAE folder's feature-stats.json names them when present). */
  features: { params: { text: string; saeFolder: string; topK?: number; focus?: number }; result: TokenFeaturesResult };
  /** The continuation of `text` with and without one SAE feature edited at every position. */
  steer: {
    params: { text: string; saeFolder: string; edit: FeatureEdit; maxNewTokens?: number; temperature?: number; seed?: number; stop?: string[] };
    result: SteeringResult;
  };
  runWithCache: { params: { tokens: number[][]; names: string[] }; result: RunResultWire };
  runWithHooks: { params: { tokens: number[][]; interventions: Intervention[]; names?: string[] }; result: RunResultWire };
  /** Release the model (the process stays up). */
  dispose: { params: Record<string, never>; result: { disposed: boolean } };
}

export interface MethodSpec {
  readonly params: unknown;
  readonly result: unknown;
}

/** Any method map; tests extend `Methods` with fake methods and keep type checking. */
export type MethodMap<M> = { [K in keyof M]: MethodSpec };
export type MethodName<M> = keyof M & string;
export type ParamsOf<M extends MethodMap<M>, K extends keyof M> = M[K]["params"];
export type ResultOf<M extends MethodMap<M>, K extends keyof M> = M[K]["result"];

export type Method = MethodName<Methods>;
export type Params<K extends Method> = ParamsOf<Methods, K>;
export type Result<K extends Method> = ResultOf<Methods, K>;

/** An error as it crosses the channel. "internal" marks a bug (not a LoupeError) in the worker. */
export interface WireError {
  readonly code: LoupeErrorCode | "internal";
  readonly message: string;
  readonly file?: string;
  /** The worker-side stack of an internal error, for bug reports. */
  readonly stack?: string;
}

export type ClientMessage =
  | { readonly type: "request"; readonly id: number; readonly method: string; readonly params: unknown }
  | { readonly type: "cancel"; readonly id: number };

export type WorkerMessage =
  | { readonly type: "response"; readonly id: number; readonly result: unknown }
  | { readonly type: "error"; readonly id: number; readonly error: WireError }
  | { readonly type: "progress"; readonly id: number; readonly done: number; readonly total: number; readonly message?: string };

export type ProgressCallback = (done: number, total: number, message?: string) => void;

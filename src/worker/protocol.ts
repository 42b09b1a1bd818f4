/**
 * Messages between the extension host (or CLI) and the worker process that owns onnxruntime.
 * Each method maps its params to its result, so client calls are type-checked end to end.
 */
import type { LoupeErrorCode } from "../core/errors";
import type { InspectResult } from "../core/inspect";
import type { ModelConfig } from "../core/model/config";
import type { Generation } from "../core/model/hooked-model";

export interface ModelInfo {
  readonly folder: string;
  readonly config: ModelConfig;
  readonly hookNames: readonly string[];
  readonly vocabSize: number;
  readonly graphFromCache: boolean;
}

/** A tensor crossing the process boundary (fork with advanced serialization keeps typed arrays). */
export interface WireTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface Methods {
  ping: { params: Record<string, never>; result: { pid: number } };
  load: { params: { folder: string; cacheDir?: string | null; threads?: number }; result: ModelInfo };
  inspect: { params: { text: string; topK?: number; maxTokens?: number }; result: InspectResult };
  generate: {
    params: { prompt: string; maxNewTokens?: number; temperature?: number; seed?: number; stop?: string[] };
    result: Generation;
  };
  runWithCache: {
    params: { tokens: number[][]; names: string[] };
    result: { logits: WireTensor; cache: Record<string, WireTensor>; lengths: number[] };
  };
  dispose: { params: Record<string, never>; result: { disposed: boolean } };
}

export type Method = keyof Methods;
export type Params<M extends Method> = Methods[M]["params"];
export type Result<M extends Method> = Methods[M]["result"];

export interface WireError {
  readonly code: LoupeErrorCode | "internal";
  readonly message: string;
  readonly file?: string;
}

export type ClientMessage =
  | { readonly type: "request"; readonly id: number; readonly method: Method; readonly params: unknown }
  | { readonly type: "cancel"; readonly id: number };

export type WorkerMessage =
  | { readonly type: "response"; readonly id: number; readonly result: unknown }
  | { readonly type: "error"; readonly id: number; readonly error: WireError }
  | { readonly type: "progress"; readonly id: number; readonly done: number; readonly total: number; readonly message?: string };

/**
 * Messages between the extension host and the worker process that owns onnxruntime. The methods
 * are the request catalogue's (src/core/requests/catalogue.ts), so client calls are type-checked
 * end to end against the handlers the worker serves.
 * The channel is Node's IPC with `serialization: "advanced"`: typed arrays cross as raw bytes.
 */
import type { LoupeErrorCode, LoupeHint } from "../core/errors";
import type { TimelineMark } from "../core/timeline";

/** Each method's params and result, from the one catalogue in src/core/requests. */
export type { FaithfulnessParams, LoadParams, Methods, ModelInfo, ProgressCallback, RunResultWire, WireTensor } from "../core/requests";

export interface MethodSpec {
  readonly params: unknown;
  readonly result: unknown;
}

/** Any method map; tests extend `Methods` with fake methods and keep type checking. */
export type MethodMap<M> = { [K in keyof M]: MethodSpec };
export type MethodName<M> = keyof M & string;
export type ParamsOf<M extends MethodMap<M>, K extends keyof M> = M[K]["params"];
export type ResultOf<M extends MethodMap<M>, K extends keyof M> = M[K]["result"];

/** An error as it crosses the channel. "internal" marks a bug (not a LoupeError) in the worker. */
export interface WireError {
  readonly code: LoupeErrorCode | "internal";
  readonly message: string;
  readonly file?: string;
  /** A LoupeError's hint, worded by the surface that shows it. */
  readonly hint?: LoupeHint;
  /** The worker-side stack of an internal error, for bug reports. */
  readonly stack?: string;
}

export type ClientMessage =
  /** `timed`: stamp the request's hops in the worker and send them back with the response. */
  | { readonly type: "request"; readonly id: number; readonly method: string; readonly params: unknown; readonly timed?: boolean }
  | { readonly type: "cancel"; readonly id: number };

export type WorkerMessage =
  | { readonly type: "response"; readonly id: number; readonly result: unknown; readonly marks?: readonly TimelineMark[] }
  | { readonly type: "error"; readonly id: number; readonly error: WireError }
  | { readonly type: "progress"; readonly id: number; readonly done: number; readonly total: number; readonly message?: string };

/**
 * Where requests run, apart from what they are: a backend answers catalogue requests by name. The
 * local worker process (src/worker/client.ts) is the editor's backend; InProcessBackend runs them in
 * this process (the CLI's). A remote backend (docs/architecture.md: KServe v2 serving Loupe's graph)
 * implements this same interface, so no command changes to use it.
 */
import type { ParamsOf, RequestName, ResultOf } from "./catalogue";
import type { TimelineMark } from "../timeline";
import type { ProgressCallback } from "./request";

export interface RequestOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: ProgressCallback;
  /** Hops to stamp the request's progress on (sent, received by the worker, the handler's own, answered). */
  readonly timeline?: TimelineMark[];
}

export interface Backend {
  request<K extends RequestName>(method: K, params: ParamsOf<K>, options?: RequestOptions): Promise<ResultOf<K>>;
  /** Release the model and whatever the backend holds (a process, a connection). */
  dispose(): Promise<void>;
}

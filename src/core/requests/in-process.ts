/** The backend that runs requests in this process: the CLI's, and the worker's own inside its process. */
import { LoupeError } from "../errors";
import type { Backend, RequestOptions } from "./backend";
import { bindRequests, type BoundRequests, type ParamsOf, type RequestName, type ResultOf } from "./catalogue";
import { mark } from "../timeline";
import type { RequestContext } from "./request";
import { ModelSession } from "./session";

export class InProcessBackend implements Backend {
  private readonly handlers: BoundRequests;

  constructor(readonly session: ModelSession = new ModelSession()) {
    this.handlers = bindRequests(session);
  }

  async request<K extends RequestName>(method: K, params: ParamsOf<K>, options: RequestOptions = {}): Promise<ResultOf<K>> {
    const signal = options.signal ?? new AbortController().signal;
    if (signal.aborted) throw new LoupeError("cancelled", "Cancelled.");
    if (!Object.hasOwn(this.handlers, method)) throw new LoupeError("bad-argument", `Loupe has no request "${method}".`);
    const handler = this.handlers[method] as (params: ParamsOf<K>, context: RequestContext) => Promise<ResultOf<K>>;
    const timeline = options.timeline;
    return handler(params, { signal, progress: options.onProgress ?? (() => undefined), ...(timeline ? { mark: (hop: string) => mark(timeline, hop) } : {}) });
  }

  async dispose(): Promise<void> {
    await this.session.state.dispose();
  }
}

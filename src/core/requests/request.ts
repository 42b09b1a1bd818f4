/**
 * A request: one thing a client may ask of a loaded model, declared once with its params and
 * result types (see catalogue.ts). The worker's dispatch, the editor's typed calls and the CLI
 * all derive from that one declaration, so a request cannot drift between them.
 */
import type { ModelSession } from "./session";

export type ProgressCallback = (done: number, total: number, message?: string) => void;

/** What every request gets besides its params: cancellation and a way to report progress. */
export interface RequestContext {
  readonly signal: AbortSignal;
  readonly progress: ProgressCallback;
  /** Stamp a hop on the caller's timeline, when it keeps one (see core/timeline.ts). */
  readonly mark?: (hop: string) => void;
}

export interface Request<P, R> {
  /** Params in, plain data out (structured-cloneable: it may cross a process or a network). */
  run(session: ModelSession, params: P, context: RequestContext): Promise<R>;
}

export function request<P, R>(run: (session: ModelSession, params: P, context: RequestContext) => Promise<R>): Request<P, R> {
  // Async, so a check that throws before the work starts still rejects rather than throws.
  return { run: async (session, params, context) => run(session, params, context) };
}

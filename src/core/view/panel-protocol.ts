/**
 * The messages every scripted panel exchanges with its page, shared by src/extension and webview/.
 * The page says "ready" once its script runs; the extension answers with the panel's state, and
 * posts each new state the same way. A panel's own requests (buttons, clicks) extend ReadyRequest's
 * union in its view module, where a parser checks them before anything acts on them.
 */

/** The page's first message: it is listening and wants the state. */
export interface ReadyRequest {
  readonly type: "ready";
}

/** The extension's message to a page: everything the page draws. */
export interface StateMessage<State> {
  readonly type: "state";
  readonly state: State;
}

export function stateMessage<State>(state: State): StateMessage<State> {
  return { type: "state", state };
}

/** Whether a page received a state message (anything else is ignored). */
export function isStateMessage<State>(data: unknown): data is StateMessage<State> {
  return typeof data === "object" && data !== null && (data as { type?: unknown }).type === "state" && typeof (data as { state?: unknown }).state === "object" && (data as { state?: unknown }).state !== null;
}

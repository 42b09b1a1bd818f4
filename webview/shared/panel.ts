/**
 * A panel page's side of the protocol in src/core/view/panel-protocol.ts: listen for the states
 * the extension posts, then say "ready" (so the first state is never missed), and send typed requests.
 */
import { isStateMessage, type ReadyRequest } from "../../src/core/view/panel-protocol";

declare function acquireVsCodeApi(): { postMessage(message: unknown): void };

export interface PanelConnection<Request> {
  postMessage(request: Exclude<Request, ReadyRequest>): void;
}

export function connectPanel<State, Request extends { readonly type: string }>(onState: (state: State) => void): PanelConnection<Request> {
  const api = acquireVsCodeApi();
  window.addEventListener("message", (event: MessageEvent) => {
    if (isStateMessage<State>(event.data)) onState(event.data.state);
  });
  const ready: ReadyRequest = { type: "ready" };
  api.postMessage(ready);
  return { postMessage: (request) => api.postMessage(request) };
}

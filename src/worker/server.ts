/**
 * The worker's side of the channel: requests run one at a time in arrival order, each with its own
 * AbortSignal; every failure goes back as a structured error and never ends the process.
 */
import { LoupeError } from "../core/errors";
import type { HandlerTable } from "./handlers";
import type { ClientMessage, Method, WireError, WorkerMessage } from "./protocol";

export interface Channel {
  send(message: WorkerMessage): void;
  onMessage(listener: (message: ClientMessage) => void): void;
}

export function toWireError(error: unknown): WireError {
  if (error instanceof LoupeError) return { code: error.code, message: error.message, file: error.file };
  const message = error instanceof Error ? error.message : String(error);
  return { code: "internal", message: `Internal error in the Loupe worker: ${message}` };
}

export function serve(channel: Channel, handlers: HandlerTable): void {
  const controllers = new Map<number, AbortController>();
  let queue: Promise<void> = Promise.resolve();

  channel.onMessage((message) => {
    if (message.type === "cancel") {
      controllers.get(message.id)?.abort();
      return;
    }
    const controller = new AbortController();
    controllers.set(message.id, controller);
    queue = queue.then(() => run(message.id, message.method, message.params, controller.signal)).finally(() => controllers.delete(message.id));
  });

  async function run(id: number, method: Method, params: unknown, signal: AbortSignal): Promise<void> {
    try {
      if (signal.aborted) throw new LoupeError("cancelled", "Cancelled.");
      const handler = handlers[method] as ((p: unknown, c: { signal: AbortSignal; progress: (d: number, t: number, m?: string) => void }) => Promise<unknown>) | undefined;
      if (!handler) throw new LoupeError("bad-argument", `The Loupe worker has no method "${String(method)}".`);
      const result = await handler(params, { signal, progress: (done, total, text) => channel.send({ type: "progress", id, done, total, message: text }) });
      if (signal.aborted) throw new LoupeError("cancelled", "Cancelled.");
      channel.send({ type: "response", id, result });
    } catch (error) {
      channel.send({ type: "error", id, error: toWireError(error) });
    }
  }
}

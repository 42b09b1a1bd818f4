/**
 * Serve handlers over this process's IPC channel. Shared by the real entry (main.ts) and test
 * entries, so both behave the same way on start-up and when the parent goes away.
 */
import type { ClientMessage, MethodMap, WorkerMessage } from "./protocol";
import { serve, type HandlerTable } from "./server";

export function runWorker<M extends MethodMap<M>>(handlers: HandlerTable<M>): void {
  if (!process.send) {
    process.stderr.write("The Loupe worker must be started by WorkerClient: it talks over an IPC channel, not stdin/stdout.\n");
    process.exit(2);
  }
  serve(
    {
      send: (message: WorkerMessage) => {
        // After the parent disconnects there is nobody to answer; sending would throw.
        if (process.connected) process.send?.(message);
      },
      onMessage: (listener) => process.on("message", (message) => listener(message as ClientMessage)),
    },
    handlers,
  );
  // The parent going away (dispose, or the host dying) ends the worker: no orphaned onnxruntime.
  process.on("disconnect", () => process.exit(0));
}

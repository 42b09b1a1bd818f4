/** Entry of the worker process (forked by WorkerClient): owns onnxruntime and the loaded model. */
import { modelHandlers, ModelState } from "./handlers";
import type { ClientMessage, WorkerMessage } from "./protocol";
import { serve } from "./server";

if (!process.send) {
  process.stderr.write("The Loupe worker must be started by WorkerClient (it talks over IPC).\n");
  process.exit(2);
}

serve(
  {
    send: (message: WorkerMessage) => process.send?.(message),
    onMessage: (listener) => process.on("message", (m) => listener(m as ClientMessage)),
  },
  modelHandlers(new ModelState()),
);

// The parent going away ends the worker: no orphaned onnxruntime processes.
process.on("disconnect", () => process.exit(0));

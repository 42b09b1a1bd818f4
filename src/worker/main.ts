/** Entry of the worker process (forked by WorkerClient; bundled as dist/worker.js): owns onnxruntime. */
import { loadHookedModel, modelHandlers, ModelState } from "./handlers";
import { runWorker } from "./process-channel";

runWorker(modelHandlers(new ModelState(loadHookedModel)));

/**
 * Entry of the worker process (forked by WorkerClient; bundled as dist/worker.js): owns onnxruntime
 * and serves the request catalogue (src/core/requests) on one model session.
 */
import { bindRequests, ModelSession, type Methods } from "../core/requests";
import { runWorker } from "./process-channel";

runWorker<Methods>(bindRequests(new ModelSession()));

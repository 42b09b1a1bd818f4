/** Entry of the fuzz worker thread (started by fuzz.ts). */
import { parentPort } from "node:worker_threads";
import { serveFuzzJobs } from "./fuzz";

if (parentPort) serveFuzzJobs(parentPort as Parameters<typeof serveFuzzJobs>[0]);

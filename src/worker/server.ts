/**
 * The worker's side of the channel: requests run one at a time in arrival order (onnxruntime
 * already uses every core; overlapping runs would only thrash), each with its own AbortSignal.
 * Every failure goes back as a structured error and never ends the process.
 */
import { LoupeError } from "../core/errors";
import type { RequestContext } from "../core/requests";
import { mark, type TimelineMark } from "../core/timeline";
import type { ClientMessage, MethodMap, MethodSpec, ProgressCallback, WorkerMessage } from "./protocol";
import { cancelled, toWireError } from "./wire-errors";

/** What a handler gets besides its params: the request layer's context. */
export type HandlerContext = RequestContext;

export type Handler<S extends MethodSpec> = (params: S["params"], context: HandlerContext) => Promise<S["result"]>;
export type HandlerTable<M extends MethodMap<M>> = { [K in keyof M]?: Handler<M[K]> };

export interface Channel {
  send(message: WorkerMessage): void;
  onMessage(listener: (message: ClientMessage) => void): void;
}

type AnyHandler = (params: unknown, context: HandlerContext) => Promise<unknown>;

interface Job {
  readonly controller: AbortController;
  started: boolean;
  answered: boolean;
  /** The request's hops in this process, when the client asked for them. */
  readonly marks: TimelineMark[] | undefined;
}

export function serve<M extends MethodMap<M>>(channel: Channel, handlers: HandlerTable<M>): void {
  const jobs = new Map<number, Job>();
  let queue: Promise<void> = Promise.resolve();

  channel.onMessage((message) => {
    if (message.type === "cancel") {
      const job = jobs.get(message.id);
      if (!job) return;
      job.controller.abort();
      // A queued job is answered at once: the client must not mistake a long job ahead of it
      // for a hung worker and kill that job too.
      if (!job.started) {
        job.answered = true;
        channel.send({ type: "error", id: message.id, error: toWireError(cancelled()) });
      }
      return;
    }
    if (message.type !== "request") return;
    const job: Job = { controller: new AbortController(), started: false, answered: false, marks: message.timed ? [] : undefined };
    mark(job.marks, "worker: request received");
    jobs.set(message.id, job);
    queue = queue
      .then(() => run(message.id, message.method, message.params, job))
      // Only a broken channel gets here; the queue must go on for whatever can still be answered.
      .catch((error: unknown) => console.error("Loupe worker: could not answer a request:", error))
      .finally(() => jobs.delete(message.id));
  });

  async function run(id: number, method: string, params: unknown, job: Job): Promise<void> {
    // Read what arrived while the job ahead held the event loop (a cancel of this one) before starting.
    await new Promise<void>((resolve) => setImmediate(resolve));
    job.started = true;
    if (job.answered) return;
    const signal = job.controller.signal;
    const marks = job.marks;
    mark(marks, "worker: request started");
    try {
      if (signal.aborted) throw cancelled();
      const handler = Object.hasOwn(handlers, method) ? (handlers[method as keyof M] as AnyHandler | undefined) : undefined;
      if (!handler) throw new LoupeError("bad-argument", `The Loupe worker has no method "${method}".`);
      const progress: ProgressCallback = (done, total, text) => channel.send({ type: "progress", id, done, total, message: text });
      const result = await handler(params, { signal, progress, ...(marks ? { mark: (hop: string) => mark(marks, `worker: ${hop}`) } : {}) });
      mark(marks, "worker: reply posted");
      // Inside the try: a result that cannot be serialised comes back as an error.
      channel.send({ type: "response", id, result, ...(marks ? { marks } : {}) });
    } catch (error) {
      channel.send({ type: "error", id, error: toWireError(error) });
    }
  }
}

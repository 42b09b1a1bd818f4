/**
 * The client side of the worker: forks the process that owns onnxruntime, so a native crash (or a
 * second copy of onnxruntime loaded by another extension) cannot take down the caller. No `vscode`
 * here: the extension uses it, and tests and the reliability runs drive it directly.
 *
 *   const worker = new WorkerClient(path.join(root, "dist", "worker.js"));
 *   await worker.request("load", { folder });
 *   const result = await worker.request("inspect", { text }, { signal, onProgress });
 *   await worker.dispose();
 */
import { fork, type ChildProcess } from "node:child_process";
import { LoupeError } from "../core/errors";
import { mark, type TimelineMark } from "../core/timeline";
import type { RequestOptions } from "../core/requests";
import { OutputTail } from "./output-tail";
import type { ClientMessage, LoadParams, MethodMap, MethodName, Methods, ParamsOf, ProgressCallback, ResultOf, WorkerMessage } from "./protocol";
import { cancelled, fromWireError } from "./wire-errors";

export interface WorkerClientOptions {
  /** Node flags for the child, e.g. ["--import", "tsx"] to run the TypeScript entry in tests. Never the parent's flags. */
  readonly execArgv?: readonly string[];
  /** How long a cancelled request may take to stop before the worker is killed (ms, default 2000). */
  readonly cancelGraceMs?: number;
  /** How long dispose waits for the worker to exit before killing it (ms, default 1000). */
  readonly disposeGraceMs?: number;
  /** Memory cap for the worker's JavaScript heap (MB). */
  readonly maxOldSpaceMb?: number;
  /** Where the worker's stdout and stderr go; default this process's stderr (never its stdout, which the CLI owns). */
  readonly onOutput?: (text: string) => void;
  readonly env?: NodeJS.ProcessEnv;
}

/** One worker process and what the client knows about it. */
interface Live {
  readonly child: ChildProcess;
  readonly output: OutputTail;
  /** How it ended ("exit code 1", "signal SIGKILL"), once it has. */
  ended: string | undefined;
  /** The load this process completed: compared with the client's last load to decide on a replay. */
  model: LoadParams | undefined;
  loadsInFlight: number;
  replaying: Promise<void> | undefined;
  /** Set when the client killed the process itself, to explain that to the requests still on it. */
  killedBecause: string | undefined;
  /** Cancelled requests still queued behind others: their grace period starts when they reach the head. */
  readonly waitingGraces: Map<number, () => void>;
}

interface Pending {
  readonly live: Live;
  readonly method: string;
  readonly onProgress?: ProgressCallback;
  readonly succeed: (result: unknown, marks?: readonly TimelineMark[]) => void;
  readonly fail: (error: Error) => void;
}

/** The editor's backend (core/requests Backend): requests run in a child process that owns onnxruntime. */
export class WorkerClient<M extends MethodMap<M> & Methods = Methods> {
  private live: Live | undefined;
  /** Every process not yet reaped, including ones killed and being replaced. */
  private readonly lives = new Set<Live>();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** The last successful load, replayed on a fresh worker so callers need not know it restarted. */
  private lastLoad: LoadParams | undefined;
  private disposing: Promise<void> | undefined;

  constructor(
    private readonly entry: string,
    private readonly options: WorkerClientOptions = {},
  ) {}

  /** The worker's pid while one runs (for diagnostics and tests). */
  get pid(): number | undefined {
    return this.live?.child.pid;
  }

  request<K extends MethodName<M>>(method: K, params: ParamsOf<M, K>, options: RequestOptions = {}): Promise<ResultOf<M, K>> {
    if (this.disposing) return Promise.reject(new LoupeError("worker-crashed", "The Loupe worker was shut down; this client runs no more requests."));
    if (options.signal?.aborted) return Promise.reject(cancelled());
    const live = this.ensureLive();
    // Everything is posted synchronously, so the worker sees requests in call order; a reload of
    // the model on a fresh worker goes out just before the request that needed it.
    const reload = method === "load" ? undefined : this.ensureModel(live);
    const sent = this.send(live, method, params, options) as Promise<ResultOf<M, K>>;
    if (!reload) return sent;
    return new Promise<ResultOf<M, K>>((resolve, reject) => {
      // Cancelled while the model reloads: say so at once (the reload goes on, for the next request).
      sent.catch((error: unknown) => {
        if (error instanceof LoupeError && error.code === "cancelled") reject(error);
      });
      // The model could not be loaded again: that, not "no model is loaded", is the news.
      reload.then(() => sent.then(resolve, reject), reject);
    });
  }

  /** Stop the worker: close the channel (it exits by itself), and kill it if it has not exited in time. */
  dispose(): Promise<void> {
    if (!this.disposing) {
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.fail(cancelled("The Loupe worker was shut down."));
      }
      this.live = undefined;
      this.disposing = Promise.all([...this.lives].map((live) => this.stop(live))).then(() => undefined);
    }
    return this.disposing;
  }

  /** A fresh worker has no model: send the caller's last load first (once, however many requests wait). */
  private ensureModel(live: Live): Promise<void> | undefined {
    if (live.replaying) return live.replaying;
    const wanted = this.lastLoad;
    // A load already on its way decides what is loaded; replaying an older one would undo it.
    if (!wanted || live.model === wanted || live.loadsInFlight > 0) return undefined;
    const replay = this.send(live, "load", wanted, {}).then(() => undefined);
    live.replaying = replay.finally(() => (live.replaying = undefined));
    return live.replaying;
  }

  private send(live: Live, method: string, params: unknown, options: RequestOptions): Promise<unknown> {
    return new Promise<unknown>((resolve, reject) => {
      if (live.ended) return reject(this.crashError(live, method));
      const signal = options.signal;
      if (signal?.aborted) return reject(cancelled());
      const id = this.nextId++;
      const graceMs = this.options.cancelGraceMs ?? 2000;
      let graceTimer: NodeJS.Timeout | undefined;
      // A handler stuck in native code never sees its signal: kill the worker after a grace period.
      // The period starts only once the request is the oldest on its worker: while a load (a reload
      // after a crash, or a big model) runs ahead of it, the worker has not even started it.
      const armGrace = () => {
        graceTimer = setTimeout(() => {
          const p = this.take(id);
          if (!p) return;
          p.fail(cancelled("The worker did not stop in time and was restarted."));
          this.kill(live, `a cancelled request ("${method}") did not stop within ${graceMs} ms`);
        }, graceMs);
      };
      const onAbort = () => {
        this.post(live, { type: "cancel", id });
        if (this.isOldestOn(live, id)) armGrace();
        else live.waitingGraces.set(id, armGrace);
      };
      const cleanup = () => {
        signal?.removeEventListener("abort", onAbort);
        live.waitingGraces.delete(id);
        clearTimeout(graceTimer);
        if (method === "load") live.loadsInFlight--;
      };
      if (method === "load") live.loadsInFlight++;
      const timeline = options.timeline;
      this.pending.set(id, {
        live,
        method,
        onProgress: options.onProgress,
        succeed: (result, marks) => {
          if (timeline && marks) timeline.push(...marks);
          mark(timeline, "extension: reply received");
          cleanup();
          this.record(live, method, params);
          // The work finished before the cancel landed; the caller still asked not to have it.
          if (signal?.aborted) reject(cancelled());
          else resolve(result);
        },
        fail: (error) => {
          cleanup();
          reject(error);
        },
      });
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        mark(timeline, "extension: request sent");
        this.post(live, { type: "request", id, method, params, ...(timeline ? { timed: true } : {}) });
      } catch (error) {
        // Params that cannot be serialised (a function, a class instance with a native handle).
        this.take(id)?.fail(new LoupeError("bad-argument", `Cannot send "${method}" to the Loupe worker: ${(error as Error).message}`));
      }
    });
  }

  /** Keep the client's view of the worker's model in step with what the worker reported. */
  private record(live: Live, method: string, params: unknown): void {
    if (method === "load") {
      live.model = params as LoadParams;
      this.lastLoad = live.model;
    } else if (method === "dispose") {
      live.model = undefined;
      this.lastLoad = undefined;
    }
  }

  private ensureLive(): Live {
    if (this.live && !this.live.ended && !this.live.killedBecause) return this.live;
    const execArgv = [...(this.options.execArgv ?? [])];
    if (this.options.maxOldSpaceMb) execArgv.push(`--max-old-space-size=${this.options.maxOldSpaceMb}`);
    // Advanced serialization carries typed arrays as raw bytes. stdout is piped, never inherited:
    // whatever the worker or onnxruntime prints must not land in the CLI's output.
    const child = fork(this.entry, [], { execArgv, serialization: "advanced", stdio: ["ignore", "pipe", "pipe", "ipc"], env: this.options.env });
    const live: Live = { child, output: new OutputTail(), ended: undefined, model: undefined, loadsInFlight: 0, replaying: undefined, killedBecause: undefined, waitingGraces: new Map() };
    const sink = this.options.onOutput ?? ((text: string) => process.stderr.write(text));
    const forward = (chunk: string) => {
      live.output.push(chunk);
      sink(chunk);
    };
    child.stdout?.setEncoding("utf8").on("data", forward);
    child.stderr?.setEncoding("utf8").on("data", forward);
    child.on("message", (message: WorkerMessage) => this.onMessage(message));
    child.on("exit", (code, signal) => {
      this.lives.delete(live);
      if (this.live === live) this.live = undefined;
      const how = signal ? `signal ${signal}` : `exit code ${code}`;
      // Report once the pipes have drained ("close"), so the error can quote the worker's last
      // words; a grandchild holding the pipes open must not delay it for long.
      const fallback = setTimeout(() => this.onGone(live, how), 1000);
      child.once("close", () => {
        clearTimeout(fallback);
        this.onGone(live, how);
      });
    });
    child.on("error", (error) => {
      // Failed to start, or the channel broke: either way this process is of no more use.
      if (live.ended) return;
      this.onGone(live, error.message);
      child.kill("SIGKILL");
    });
    this.lives.add(live);
    this.live = live;
    return live;
  }

  private post(live: Live, message: ClientMessage): void {
    // A channel already closed means the process is going; its exit rejects what is pending.
    if (live.child.connected) live.child.send(message);
  }

  private onMessage(message: WorkerMessage): void {
    if (typeof message !== "object" || message === null || typeof message.id !== "number") return;
    if (message.type === "progress") {
      this.pending.get(message.id)?.onProgress?.(message.done, message.total, message.message);
      return;
    }
    const p = this.take(message.id);
    if (!p) return;
    if (message.type === "response") p.succeed(message.result, message.marks);
    else p.fail(fromWireError(message.error));
    this.armGracesAtHead(p.live);
  }

  /** Whether every request sent to this worker before `id` has settled (the worker runs them in order). */
  private isOldestOn(live: Live, id: number): boolean {
    for (const [other, p] of this.pending) if (other < id && p.live === live) return false;
    return true;
  }

  private armGracesAtHead(live: Live): void {
    for (const [id, arm] of live.waitingGraces) {
      if (!this.isOldestOn(live, id)) continue;
      live.waitingGraces.delete(id);
      arm();
    }
  }

  private onGone(live: Live, how: string): void {
    if (live.ended) return;
    live.ended = how;
    if (this.live === live) this.live = undefined;
    for (const [id, p] of this.pending) {
      if (p.live !== live) continue;
      this.pending.delete(id);
      p.fail(this.crashError(live, p.method));
    }
  }

  private crashError(live: Live, method: string): LoupeError {
    const what = live.killedBecause ? `was restarted because ${live.killedBecause}` : `stopped unexpectedly (${live.ended ?? "unknown cause"})`;
    const next = this.lastLoad ? "the next request restarts it and reloads the model" : "the next request restarts it";
    const said = live.output.lastLines();
    return new LoupeError("worker-crashed", `The Loupe worker ${what} while running "${method}"; ${next}.${said ? `\nIts last output:\n${said}` : ""}`);
  }

  private kill(live: Live, because: string): void {
    live.killedBecause = because;
    if (this.live === live) this.live = undefined;
    live.child.kill("SIGKILL");
  }

  private take(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private stop(live: Live): Promise<void> {
    const child = live.child;
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), this.options.disposeGraceMs ?? 1000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      if (child.connected) child.disconnect();
      else child.kill("SIGKILL");
    });
  }
}

/**
 * The client side of the worker: forks the process that owns onnxruntime, so a native crash (or a
 * second copy of onnxruntime loaded by another extension) cannot take down the caller. No `vscode`
 * here: the extension and the CLI both use it.
 */
import { fork, type ChildProcess } from "node:child_process";
import { LoupeError } from "../core/errors";
import type { Method, Params, Result, WorkerMessage, WireError, ClientMessage } from "./protocol";

export interface WorkerClientOptions {
  /** Extra Node flags for the child, e.g. ["--import", "tsx"] to run the TypeScript entry in tests. */
  readonly execArgv?: readonly string[];
  /** How long a cancelled request may take to stop before the worker is killed (ms). */
  readonly cancelGraceMs?: number;
  /** Memory cap for the worker's JavaScript heap (MB). */
  readonly maxOldSpaceMb?: number;
}

export interface RequestOptions {
  readonly signal?: AbortSignal;
  readonly onProgress?: (done: number, total: number, message?: string) => void;
}

interface Pending {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  readonly onProgress?: RequestOptions["onProgress"];
  readonly method: Method;
  /** The process running this request: when it dies, so does the request. */
  readonly child: ChildProcess;
}

function fromWire(error: WireError): LoupeError {
  return new LoupeError(error.code === "internal" ? "bad-argument" : error.code, error.message, error.file);
}

export class WorkerClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** The last successful load, replayed after a restart so callers need not know the worker died. */
  private lastLoad: Params<"load"> | undefined;
  private disposed = false;

  constructor(
    private readonly entry: string,
    private readonly options: WorkerClientOptions = {},
  ) {}

  /** The worker's pid while it runs (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  async request<M extends Method>(method: M, params: Params<M>, options: RequestOptions = {}): Promise<Result<M>> {
    if (this.disposed) throw new LoupeError("worker-crashed", "The Loupe worker was shut down.");
    if (options.signal?.aborted) throw new LoupeError("cancelled", "Cancelled.");
    const restarted = !this.child;
    const child = this.ensureChild();
    if (restarted && this.lastLoad && method !== "load") await this.send(child, "load", this.lastLoad, {});
    const result = await this.send(child, method, params, options);
    if (method === "load") this.lastLoad = params as Params<"load">;
    return result;
  }

  private send<M extends Method>(child: ChildProcess, method: M, params: Params<M>, options: RequestOptions): Promise<Result<M>> {
    const id = this.nextId++;
    return new Promise<Result<M>>((resolve, reject) => {
      let cancelTimer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        this.post(child, { type: "cancel", id });
        // A handler stuck in native code cannot see the signal: kill the worker after a grace period.
        cancelTimer = setTimeout(() => {
          if (this.pending.has(id)) {
            this.fail(id, new LoupeError("cancelled", "Cancelled (the worker did not stop in time and was restarted)."));
            this.kill(child);
          }
        }, this.options.cancelGraceMs ?? 2000);
      };
      const settle = () => {
        options.signal?.removeEventListener("abort", onAbort);
        if (cancelTimer) clearTimeout(cancelTimer);
      };
      this.pending.set(id, {
        method,
        child,
        onProgress: options.onProgress,
        resolve: (value) => {
          settle();
          resolve(value as Result<M>);
        },
        reject: (error) => {
          settle();
          reject(error);
        },
      });
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.post(child, { type: "request", id, method, params });
    });
  }

  private ensureChild(): ChildProcess {
    if (this.child) return this.child;
    const execArgv = [...(this.options.execArgv ?? [])];
    if (this.options.maxOldSpaceMb) execArgv.push(`--max-old-space-size=${this.options.maxOldSpaceMb}`);
    const child = fork(this.entry, [], { execArgv, serialization: "advanced", stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child = child;
    child.on("message", (message: WorkerMessage) => this.onMessage(message));
    child.on("exit", (code, signal) => this.onExit(child, code, signal));
    child.on("error", (error) => this.onExit(child, null, null, error));
    return child;
  }

  private post(child: ChildProcess, message: ClientMessage): void {
    if (child.connected) child.send(message);
  }

  private onMessage(message: WorkerMessage): void {
    const pending = this.pending.get(message.id);
    if (!pending) return;
    if (message.type === "progress") {
      pending.onProgress?.(message.done, message.total, message.message);
      return;
    }
    this.pending.delete(message.id);
    if (message.type === "response") pending.resolve(message.result);
    else pending.reject(fromWire(message.error));
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    if (this.child === child) this.child = undefined;
    const how = error ? error.message : signal ? `signal ${signal}` : `exit code ${code}`;
    for (const [id, pending] of [...this.pending]) {
      if (pending.child !== child) continue;
      this.fail(id, new LoupeError("worker-crashed", `The Loupe worker stopped unexpectedly (${how}) while running this request. It restarts on the next request.`));
    }
  }

  private fail(id: number, error: LoupeError): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    pending.reject(error);
  }

  private kill(child: ChildProcess): void {
    if (this.child === child) this.child = undefined;
    child.kill("SIGKILL");
  }

  /** Stop the worker: ask it to exit, and kill it if it has not within a second. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const child = this.child;
    this.child = undefined;
    for (const id of [...this.pending.keys()]) this.fail(id, new LoupeError("cancelled", "The Loupe worker was shut down."));
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => child.kill("SIGKILL"), 1000);
      child.once("exit", () => {
        clearTimeout(timer);
        resolve();
      });
      if (child.connected) child.disconnect();
      else child.kill("SIGKILL");
    });
  }
}

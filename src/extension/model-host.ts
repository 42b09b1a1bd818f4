import * as path from "node:path";
import * as vscode from "vscode";
import type { Backend, ModelInfo, ParamsOf, ProgressCallback, RequestName, ResultOf } from "../core/requests";
import type { TimelineMark } from "../core/timeline";
import type { ModelSource, RunRecord } from "../core/view/loupe-tree";
import { WorkerClient } from "../worker/client";
import { lineSink } from "../worker/output-tail";
import { describeError } from "./errors";
import { activeOrOnlyTextEditor } from "./selection-command";
import { readSettings } from "./settings";

export interface LoadedModel {
  readonly folder: string;
  readonly nLayers: number;
  readonly dVocab: number;
  readonly nCtx: number;
  /** Loaded with loupe.compactWeights: changing the setting reloads. */
  readonly compactWeights: boolean;
}

/** How a request shows its progress: a cancellable notification (or status-bar item) titled so. */
export interface ProgressDisplay {
  readonly title: string;
  /** Default: a notification. */
  readonly location?: vscode.ProgressLocation;
  /** Turn the request's progress into what the notification shows. */
  readonly report?: (done: number, total: number, message?: string) => { message?: string; increment?: number };
}

const WORKSPACE_MODEL_KEY = "loupe.modelFolder";

/** The log's words for what a load did with the graph. */
const LOAD_SAYS: Record<ModelInfo["graph"], string> = { built: "graph built", cache: "graph from the cache", "already-loaded": "already loaded in the worker" };

/**
 * Owns the backend (the worker process, today) and the model loaded in it. The model folder is, in
 * order: the workspace's choice (Select Model…), the loupe.modelPath setting, the bundled reference
 * model. Commands run requests through `run`; the request catalogue (src/core/requests) types them.
 */
export class ModelHost implements vscode.Disposable {
  private readonly backend: Backend;
  private loaded: LoadedModel | undefined;
  private loading: Promise<LoadedModel> | undefined;
  private readonly modelChanged = new vscode.EventEmitter<void>();
  private readonly ran = new vscode.EventEmitter<RunRecord>();
  /** The model folder was chosen, loaded or forgotten. */
  readonly onDidChangeModel = this.modelChanged.event;
  /** A command's request finished (or failed) on a document: the Loupe view's last results. */
  readonly onDidRun = this.ran.event;

  /** `log`: the Loupe output channel, which gets the worker's output, model loads and request timings. */
  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly log?: vscode.LogOutputChannel,
  ) {
    const onOutput = log ? lineSink((line) => log.info(`[worker] ${line}`)) : undefined;
    this.backend = new WorkerClient(context.asAbsolutePath(path.join("dist", "worker.js")), { onOutput });
  }

  get bundledFolder(): string {
    return this.context.asAbsolutePath(path.join("models", "reference"));
  }

  chosenFolder(settingPath: string): string {
    return this.modelChoice(settingPath).folder;
  }

  /** The model folder the workspace uses and where that choice comes from. */
  modelChoice(settingPath: string): { folder: string; source: ModelSource } {
    const workspaceChoice = this.context.workspaceState.get<string>(WORKSPACE_MODEL_KEY);
    if (workspaceChoice) return { folder: workspaceChoice, source: "workspace" };
    if (settingPath && vscode.workspace.isTrusted) return { folder: settingPath, source: "setting" };
    return { folder: this.bundledFolder, source: "bundled" };
  }

  async rememberFolder(folder: string | undefined): Promise<void> {
    await this.context.workspaceState.update(WORKSPACE_MODEL_KEY, folder);
    this.loaded = undefined;
    this.loading = undefined;
    this.log?.info(`Model for this workspace: ${folder ?? "the loupe.modelPath setting or the bundled model"}`);
    this.modelChanged.fire();
  }

  get current(): LoadedModel | undefined {
    return this.loaded;
  }

  /** Load the model the workspace uses (once), with a cancellable progress notification. */
  ensureChosenLoaded(): Promise<LoadedModel> {
    return this.ensureLoaded(this.chosenFolder(readSettings().modelPath));
  }

  /** Load the model (once), with a cancellable progress notification. */
  async ensureLoaded(folder: string): Promise<LoadedModel> {
    const { maxModelBytes, compactWeights } = readSettings();
    if (this.loaded?.folder === folder && this.loaded.compactWeights === compactWeights) return this.loaded;
    if (!this.loading) {
      this.loading = Promise.resolve(
        vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `Loupe: loading ${path.basename(folder)}…`, cancellable: true },
          async (_progress, token) => {
            this.log?.info(`Loading ${folder}${compactWeights ? " (compact weights)" : ""}…`);
            const started = performance.now();
            try {
              const info = await this.request("load", { folder, maxModelBytes, compactWeights }, token);
              const { nLayers, dVocab, nCtx } = info.config;
              this.log?.info(`Loaded ${path.basename(folder)} in ${Math.round(performance.now() - started)} ms: ${nLayers} layers, d_vocab ${dVocab}, n_ctx ${nCtx}, ${LOAD_SAYS[info.graph]}`);
              return { folder, nLayers, dVocab, nCtx, compactWeights };
            } catch (error) {
              this.log?.error(`Loading ${folder} failed: ${describeError(error) ?? "cancelled"}`);
              throw error;
            }
          },
        ),
      ).finally(() => (this.loading = undefined));
    }
    this.loaded = await this.loading;
    this.modelChanged.fire();
    return this.loaded;
  }

  /** One request, cancellable by the editor's token; its hops stamped on `timeline` when given. */
  request<K extends RequestName>(method: K, params: ParamsOf<K>, token?: vscode.CancellationToken, onProgress?: ProgressCallback, timeline?: TimelineMark[]): Promise<ResultOf<K>> {
    return this.backend.request(method, params, { signal: token && abortSignalFor(token), onProgress, ...(timeline ? { timeline } : {}) });
  }

  /** One request under a cancellable progress display: what every command runs. Logged with its time, and recorded against the active document. */
  async run<K extends RequestName>(method: K, params: ParamsOf<K>, display: ProgressDisplay, timeline?: TimelineMark[]): Promise<ResultOf<K>> {
    const { title, location = vscode.ProgressLocation.Notification, report } = display;
    const document = activeOrOnlyTextEditor()?.document;
    const started = performance.now();
    const finish = (error?: string) => {
      const elapsedMs = performance.now() - started;
      const on = document ? ` on ${vscode.workspace.asRelativePath(document.uri)}` : "";
      if (error) this.log?.error(`${method}${on} failed after ${Math.round(elapsedMs)} ms: ${error}`);
      else this.log?.info(`${method}${on}: ${Math.round(elapsedMs)} ms`);
      if (document) this.ran.fire({ document: document.uri.toString(), documentLabel: vscode.workspace.asRelativePath(document.uri), method, elapsedMs, error, finishedAt: Date.now() });
    };
    try {
      const result = await vscode.window.withProgress({ location, title, cancellable: true }, (progress, token) =>
        this.request(method, params, token, report && ((done, total, message) => progress.report(report(done, total, message))), timeline),
      );
      finish();
      return result;
    } catch (error) {
      const message = describeError(error);
      if (message) finish(message);
      else this.log?.info(`${method} cancelled`);
      throw error;
    }
  }

  dispose(): void {
    this.modelChanged.dispose();
    this.ran.dispose();
    void this.backend.dispose();
  }
}

/** Bridge VS Code's CancellationToken to the AbortSignal that core and the backends take. */
export function abortSignalFor(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  else token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}

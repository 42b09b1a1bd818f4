import * as path from "node:path";
import * as vscode from "vscode";
import type { Backend, ParamsOf, ProgressCallback, RequestName, ResultOf } from "../core/requests";
import { WorkerClient } from "../worker/client";
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

/**
 * Owns the backend (the worker process, today) and the model loaded in it. The model folder is, in
 * order: the workspace's choice (Select Model…), the loupe.modelPath setting, the bundled reference
 * model. Commands run requests through `run`; the request catalogue (src/core/requests) types them.
 */
export class ModelHost implements vscode.Disposable {
  private readonly backend: Backend;
  private loaded: LoadedModel | undefined;
  private loading: Promise<LoadedModel> | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.backend = new WorkerClient(context.asAbsolutePath(path.join("dist", "worker.js")));
  }

  get bundledFolder(): string {
    return this.context.asAbsolutePath(path.join("models", "reference"));
  }

  chosenFolder(settingPath: string): string {
    const workspaceChoice = this.context.workspaceState.get<string>(WORKSPACE_MODEL_KEY);
    if (workspaceChoice) return workspaceChoice;
    if (settingPath && vscode.workspace.isTrusted) return settingPath;
    return this.bundledFolder;
  }

  async rememberFolder(folder: string | undefined): Promise<void> {
    await this.context.workspaceState.update(WORKSPACE_MODEL_KEY, folder);
    this.loaded = undefined;
    this.loading = undefined;
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
            const info = await this.request("load", { folder, maxModelBytes, compactWeights }, token);
            return { folder, nLayers: info.config.nLayers, dVocab: info.config.dVocab, nCtx: info.config.nCtx, compactWeights };
          },
        ),
      ).finally(() => (this.loading = undefined));
    }
    this.loaded = await this.loading;
    return this.loaded;
  }

  /** One request, cancellable by the editor's token. */
  request<K extends RequestName>(method: K, params: ParamsOf<K>, token?: vscode.CancellationToken, onProgress?: ProgressCallback): Promise<ResultOf<K>> {
    return this.backend.request(method, params, { signal: token && abortSignalFor(token), onProgress });
  }

  /** One request under a cancellable progress display: what every command runs. */
  run<K extends RequestName>(method: K, params: ParamsOf<K>, display: ProgressDisplay): Promise<ResultOf<K>> {
    const { title, location = vscode.ProgressLocation.Notification, report } = display;
    return Promise.resolve(
      vscode.window.withProgress({ location, title, cancellable: true }, (progress, token) =>
        this.request(method, params, token, report && ((done, total, message) => progress.report(report(done, total, message)))),
      ),
    );
  }

  dispose(): void {
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

import * as path from "node:path";
import * as vscode from "vscode";
import type { AuditConfig, PromptAudit } from "../core/audit";
import type { FaithfulnessReport } from "../core/faithfulness";
import type { InspectResult, LayerLens } from "../core/inspect";
import type { AttributionResult, PatchingResult } from "../core/patching";
import type { ProbeApplication, ProbeFile, ProbeTraining } from "../core/probes";
import type { SteeringResult } from "../core/sae/steer";
import type { TokenFeaturesResult } from "../core/sae/token-features";
import type { FaithfulnessParams, Methods, Params } from "../worker/protocol";
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

const WORKSPACE_MODEL_KEY = "loupe.modelFolder";

/**
 * Owns the worker process and the model loaded in it. The model folder is, in order: the
 * workspace's choice (Select Model…), the loupe.modelPath setting, the bundled reference model.
 */
export class ModelHost implements vscode.Disposable {
  private readonly client: WorkerClient;
  private loaded: LoadedModel | undefined;
  private loading: Promise<LoadedModel> | undefined;

  constructor(private readonly context: vscode.ExtensionContext) {
    this.client = new WorkerClient(context.asAbsolutePath(path.join("dist", "worker.js")));
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

  /** Load the model (once), with a cancellable progress notification. */
  async ensureLoaded(folder: string): Promise<LoadedModel> {
    const { maxModelBytes, compactWeights } = readSettings();
    if (this.loaded?.folder === folder && this.loaded.compactWeights === compactWeights) return this.loaded;
    if (!this.loading) {
      this.loading = Promise.resolve(
        vscode.window.withProgress(
          { location: vscode.ProgressLocation.Notification, title: `Loupe: loading ${path.basename(folder)}…`, cancellable: true },
          async (_progress, token) => {
            const info = await this.client.request("load", { folder, maxModelBytes, compactWeights }, { signal: abortSignalFor(token) });
            return { folder, nLayers: info.config.nLayers, dVocab: info.config.dVocab, nCtx: info.config.nCtx, compactWeights };
          },
        ),
      ).finally(() => (this.loading = undefined));
    }
    this.loaded = await this.loading;
    return this.loaded;
  }

  /** Check a model folder in the worker (parsing weights headers and graphs stays off the extension host). */
  async describeFolder(folder: string): Promise<string> {
    return (await this.client.request("describeFolder", { folder })).description;
  }

  async inspect(text: string, options: { topK: number; maxTokens: number; lensLayers: number[] }, token: vscode.CancellationToken): Promise<InspectResult> {
    return this.client.request("inspect", { text, topK: options.topK, maxTokens: options.maxTokens, lensLayers: options.lensLayers }, { signal: abortSignalFor(token) });
  }

  /** One inspected token's per-block lens, for the blocks its inspection left out (a large model's long text). */
  async lensTable(text: string, index: number, token: vscode.CancellationToken): Promise<LayerLens[]> {
    return this.client.request("lensTable", { text, index, topK: 5 }, { signal: abortSignalFor(token) });
  }

  async faithfulness(params: FaithfulnessParams, token: vscode.CancellationToken): Promise<FaithfulnessReport> {
    return this.client.request("faithfulness", params, { signal: abortSignalFor(token) });
  }

  async audit(params: { text: string; config: AuditConfig; baseDir: string }, token: vscode.CancellationToken): Promise<PromptAudit> {
    return this.client.request("audit", params, { signal: abortSignalFor(token) });
  }

  async trainProbes(params: { dataFile: string; concept?: string }, token: vscode.CancellationToken, onProgress?: (done: number, total: number) => void): Promise<ProbeTraining> {
    return this.client.request("trainProbes", params, { signal: abortSignalFor(token), onProgress });
  }

  async applyProbe(params: { probe: ProbeFile; text: string }, token: vscode.CancellationToken): Promise<ProbeApplication> {
    return this.client.request("applyProbe", params, { signal: abortSignalFor(token) });
  }

  async attribute(params: Params<"attribute">, token: vscode.CancellationToken): Promise<AttributionResult> {
    return this.client.request("attribute", params, { signal: abortSignalFor(token) });
  }

  async patch(
    params: { clean: string; corrupted: string; answer?: string; wrong?: string },
    token: vscode.CancellationToken,
    onProgress?: (done: number, total: number) => void,
  ): Promise<{ result: PatchingResult; cleanOffsets: Array<[number, number]> }> {
    return this.client.request("patch", params, { signal: abortSignalFor(token), onProgress });
  }

  async features(params: Methods["features"]["params"], token: vscode.CancellationToken): Promise<TokenFeaturesResult> {
    return this.client.request("features", params, { signal: abortSignalFor(token) });
  }

  async steer(params: Methods["steer"]["params"], token: vscode.CancellationToken, onProgress?: (done: number, total: number) => void): Promise<SteeringResult> {
    return this.client.request("steer", params, { signal: abortSignalFor(token), onProgress });
  }

  dispose(): void {
    void this.client.dispose();
  }
}

/** Bridge VS Code's CancellationToken to the AbortSignal that core and the worker client take. */
export function abortSignalFor(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  else token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}

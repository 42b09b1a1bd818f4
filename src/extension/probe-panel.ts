import * as path from "node:path";
import * as vscode from "vscode";
import { addProbeMonitor } from "../core/audit";
import { probeFileName, readProbeDatasetAsync, saveProbe, spanLabels, type ProbeFile, type ProbeTraining } from "../core/probes";
import type { ReadyRequest } from "../core/view/panel-protocol";
import { defaultWatchedLabel, parseProbePanelRequest, probePanelState, type ProbePanelRequest, type ProbePanelState } from "../core/view/probe-panel";
import type { ModelHost } from "./model-host";
import type { ProbeLens } from "./probe-lens";
import { ScriptedPanel } from "./scripted-panel";
import { reportErrors } from "./errors";
import type { PageOptions } from "./webview-page";
import { confinedIfInWorkspace, writableWorkspaceFolder } from "./workspace-files";

/**
 * Loupe: Train Probe…: pick a dataset (built-in or a workspace JSONL), train a probe at every
 * residual hook in the worker, and show the results in a webview with buttons to apply the probe as
 * an editor lens, save it, or add it to the audit as a monitor.
 */
export class ProbePanels extends ScriptedPanel<ProbePanelState, ProbePanelRequest> {
  private training: ProbeTraining | undefined;

  constructor(
    context: vscode.ExtensionContext,
    private readonly models: ModelHost,
    private readonly lens: ProbeLens,
  ) {
    super(context, { viewType: "loupe.probe", script: "probe" });
  }

  async train(): Promise<void> {
    const dataFile = await this.pickDataset();
    if (!dataFile) return;
    let concept: string | undefined;
    await reportErrors(async () => {
      const confined = confinedIfInWorkspace(dataFile);
      const dataset = await readProbeDatasetAsync(dataFile, confined);
      if (dataset.level === "token") {
        const labels = spanLabels(dataset);
        const picked = await vscode.window.showQuickPick(labels, { title: "Loupe: probe for which span label? (one against the rest)" });
        if (!picked) return;
        concept = picked;
      }
      await this.models.ensureChosenLoaded();
      const training = await this.models.run("trainProbes", { dataFile, concept, ...confined }, {
        title: `Loupe: training probes on ${path.basename(dataFile)}`,
        report: (done, total) => ({ message: `hook ${done + 1} of ${total}` }),
      });
      const title = `Probe: ${concept ?? path.basename(dataFile)}`;
      this.training = training;
      this.present(probePanelState(training, title), title);
    });
  }

  private async pickDataset(): Promise<string | undefined> {
    const builtin = this.context.asAbsolutePath(path.join("media", "datasets"));
    const workspace = await vscode.workspace.findFiles("**/*.jsonl", "**/node_modules/**", 50);
    const items: (vscode.QuickPickItem & { file?: string })[] = [
      { label: "Built-in examples", kind: vscode.QuickPickItemKind.Separator },
      { label: "$(book) Story concepts", description: "token level: name, animal, colour, number, emotion, negation, quote", file: path.join(builtin, "stories-concepts.jsonl") },
      { label: "$(book) Sentence sentiment", description: "sequence level: positive, negative, neutral", file: path.join(builtin, "stories-sentiment.jsonl") },
      ...(workspace.length ? [{ label: "Workspace", kind: vscode.QuickPickItemKind.Separator } as const] : []),
      ...workspace.map((uri) => ({ label: `$(file) ${vscode.workspace.asRelativePath(uri)}`, file: uri.fsPath })),
      { label: "$(folder-opened) Choose a JSONL file…", description: '{"text", "label"} or {"text", "spans"} per line' },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: "Loupe: train a probe on…" });
    if (!picked) return undefined;
    if (picked.file) return picked.file;
    const chosen = await vscode.window.showOpenDialog({ canSelectMany: false, filters: { "JSON Lines": ["jsonl"] }, openLabel: "Train on this" });
    return chosen?.[0]?.fsPath;
  }

  protected parse(message: unknown, state: ProbePanelState): ProbePanelRequest | null {
    return parseProbePanelRequest(message, state);
  }

  protected async handle(request: Exclude<ProbePanelRequest, ReadyRequest>): Promise<void> {
    const probe = this.training?.probes[request.hook];
    if (!probe) return;
    switch (request.type) {
      case "apply":
        await this.lens.apply(probe, request.label);
        return;
      case "save": {
        const file = await this.save(probe);
        if (file) void vscode.window.showInformationMessage(`Loupe: probe saved to ${vscode.workspace.asRelativePath(file)}.`);
        return;
      }
      case "monitor":
        await this.addMonitor(probe, request.label, request.threshold);
        return;
    }
  }

  private async save(probe: ProbeFile): Promise<string | undefined> {
    const root = writableWorkspaceFolder("save probes");
    if (!root) return undefined;
    const file = path.join(root, ".loupe", "probes", probeFileName(probe.training.data ?? "probe", probe.hook, probe.concept));
    saveProbe(file, probe, { root });
    return file;
  }

  /** Save the probe and add it to .loupe/audit.json's monitors (creating the file if needed). */
  private async addMonitor(probe: ProbeFile, label: string, threshold: number): Promise<void> {
    const file = await this.save(probe);
    const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    if (!root || !file) return;
    const relative = path.relative(root, file).split(path.sep).join("/");
    addProbeMonitor(root, { probe: relative, label, threshold, severity: "warning" });
    void vscode.window.showInformationMessage(`Loupe: the quick audit now watches "${label}" (p ≥ ${threshold}) with ${relative}.`);
  }

  protected page(state: ProbePanelState): PageOptions {
    return {
      data: { watched: defaultWatchedLabel(state.classes, state.classCounts) },
      css: `
svg { width: 100%; max-width: 760px; }
.grid { stroke: var(--vscode-panel-border); stroke-width: .5; }
.majority { stroke: var(--vscode-descriptionForeground); stroke-dasharray: 4 3; }
.tick, .label { fill: var(--vscode-descriptionForeground); font-size: 10px; }
rect.acc { fill: var(--vscode-charts-blue); } rect.control { fill: var(--vscode-charts-foreground); opacity: .45; } rect.sel { fill: var(--vscode-charts-orange); }
g.hook { cursor: pointer; } g.hook.selected .label { fill: var(--vscode-foreground); font-weight: bold; }
table.confusion { border-collapse: collapse; margin: .5em 0 1em; }
table.confusion th, table.confusion td { padding: .25em .6em; border: 1px solid var(--vscode-panel-border); text-align: right; }
table.confusion td { background: color-mix(in srgb, var(--vscode-charts-blue) calc(var(--strength) * 60%), transparent); }
.controls { display: flex; gap: .5em; align-items: center; flex-wrap: wrap; }
.legend, .warnings { color: var(--vscode-descriptionForeground); }`,
    };
  }
}

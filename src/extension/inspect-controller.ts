import * as vscode from "vscode";
import { lensId, lensLabel, parseLens, tokenLevels, type Lens } from "../core/view/lenses";
import { checkInspectable } from "../core/view/selection-checks";
import type { InspectResult } from "../core/inspect";
import { TokenDecorations } from "./decorations";
import { InspectionStore, type Inspection } from "./inspections";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";
import { StatusLegend } from "./status";
import { inspectRenderedChat } from "./chat-command";
import { chatTargetIfChat } from "./chat-target";
import { runOnSelection } from "./selection-command";

/** Results of recent runs by model and text, so re-inspecting unchanged text costs nothing. */
class ResultCache {
  private readonly entries = new Map<string, InspectResult>();
  constructor(private readonly capacity = 16) {}
  get(key: string): InspectResult | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }
  set(key: string, value: InspectResult): void {
    this.entries.set(key, value);
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value as string);
  }
  clear(): void {
    this.entries.clear();
  }
}

/** Inspect Selection, Clear and Choose Lens: runs the model, keeps results, draws decorations. */
export class InspectController implements vscode.Disposable {
  readonly store = new InspectionStore();
  private readonly decorations = new TokenDecorations();
  private readonly legend = new StatusLegend();
  private readonly results = new ResultCache();
  private readonly disposables: vscode.Disposable[] = [];
  private lens: Lens;

  constructor(private readonly models: ModelHost) {
    this.lens = parseLens(readSettings().defaultLens) ?? { kind: "surprisal" };
    this.disposables.push(
      vscode.workspace.onDidChangeTextDocument((event) => {
        if (this.store.applyChange(event)) this.redrawDocument(event.document);
      }),
      vscode.workspace.onDidCloseTextDocument((document) => this.store.delete(document)),
      vscode.window.onDidChangeVisibleTextEditors(() => this.redrawAll()),
      vscode.window.onDidChangeActiveTextEditor(() => this.updateLegend()),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("loupe.colorScale")) this.redrawAll();
        if (event.affectsConfiguration("loupe.modelPath")) this.results.clear();
      }),
    );
  }

  inspectSelection(): Promise<void> {
    const settings = readSettings();
    return runOnSelection(this.models, {
      noEditor: "Loupe: open a text editor and select the text to inspect.",
      check: (text, wholeDocument) => checkInspectable(text, settings.maxTokens, wholeDocument)?.message,
      run: async (target, _asked, model) => {
        // A chat file is read as the model reads it, through its chat template, as the other commands do.
        const chat = chatTargetIfChat(target, model, () => "as-written");
        if (chat) return inspectRenderedChat(this.models, this, target, chat);
        const { document, range, text, startOffset, version } = target;
        const lensLayers = this.lensLayers();
        const key = `${model.folder}\u0000${settings.maxTokens}\u0000${lensLayers.join(",")}\u0000${text}`;
        let result = this.results.get(key);
        if (!result) {
          result = await this.models.run("inspect", { text, topK: 5, maxTokens: settings.maxTokens, lensLayers }, { title: "Loupe: inspecting…", location: vscode.ProgressLocation.Window });
          this.results.set(key, result);
        }
        // An edit that landed while the model ran makes the result stale at once.
        const stale = document.version !== version && document.getText(range) !== text;
        this.store.set(document, { startOffset, length: text.length, result, stale });
        this.redrawDocument(document);
      },
    });
  }

  /** A block's lens colouring needs that block for every token; the rest of the table comes on hover. */
  lensLayers(): number[] {
    return this.lens.kind === "logit-lens" ? [this.lens.layer] : [];
  }

  /** Show an inspection another command ran (Inspect Chat draws a rendered chat onto its file). */
  present(document: vscode.TextDocument, inspection: Inspection): void {
    this.store.set(document, inspection);
    this.redrawDocument(document);
  }

  clear(): void {
    this.store.clear();
    for (const editor of vscode.window.visibleTextEditors) this.decorations.clear(editor);
    this.legend.hide();
  }

  async chooseLens(): Promise<void> {
    const nLayers = this.models.current?.nLayers ?? 4;
    type Item = vscode.QuickPickItem & { lens?: Lens; command?: string; args?: unknown };
    const items: Item[] = [
      { label: "Surprisal", description: "bits: how unexpected each token was", lens: { kind: "surprisal" } },
      { label: "Entropy", description: "bits: how unsure the model is about the next token", lens: { kind: "entropy" } },
      ...Array.from({ length: nLayers }, (_, layer) => ({
        label: `Logit lens @ block ${layer}`,
        description: "how much this block already agrees with the final prediction",
        lens: { kind: "logit-lens", layer } as Lens,
      })),
      // Lenses with their own runs and hovers: picking one runs its command on the selection.
      { label: "Model internals", kind: vscode.QuickPickItemKind.Separator },
      { label: "Top SAE feature", description: "each token's strongest feature of the model's SAE", command: "loupe.showFeatures" },
      { label: "One SAE feature…", description: "one feature's activation at every token", command: "loupe.showFeatures", args: { pickFeature: true } },
      { label: "Probe score…", description: "a probe saved in .loupe/probes", command: "loupe.applyProbe" },
    ];
    const picked = await vscode.window.showQuickPick(
      items.map((item) => ({ ...item, picked: item.lens !== undefined && lensId(item.lens) === lensId(this.lens) })),
      { title: "Loupe: colour tokens by…" },
    );
    if (!picked) return;
    if (picked.command) {
      await vscode.commands.executeCommand(picked.command, picked.args);
      return;
    }
    if (!picked.lens) return;
    this.lens = picked.lens;
    this.redrawAll();
    // A block the shown inspection left out (a large model's long text): inspect again with it.
    const lens = this.lens;
    const inspection = vscode.window.activeTextEditor && this.store.get(vscode.window.activeTextEditor.document);
    if (lens.kind === "logit-lens" && inspection && !inspection.stale && inspection.result.tokens.some((t) => t.lens[lens.layer] === null)) await this.inspectSelection();
  }

  private redrawAll(): void {
    for (const editor of vscode.window.visibleTextEditors) this.drawEditor(editor);
    this.updateLegend();
  }

  private redrawDocument(document: vscode.TextDocument): void {
    for (const editor of vscode.window.visibleTextEditors) if (editor.document === document) this.drawEditor(editor);
    this.updateLegend();
  }

  private drawEditor(editor: vscode.TextEditor): void {
    const inspection = this.store.get(editor.document);
    this.decorations.clear(editor);
    if (!inspection) return;
    const document = editor.document;
    const at = (offset: number) => document.positionAt(inspection.startOffset + offset);
    if (inspection.stale) {
      editor.setDecorations(this.decorations.stale, [new vscode.Range(at(0), at(inspection.length))]);
      return;
    }
    const byLevel: vscode.Range[][] = this.decorations.levels.map(() => []);
    const levels = tokenLevels(inspection.result, this.lens, readSettings().colorScale, this.models.current?.dVocab ?? 50257);
    for (const { index, level } of levels) {
      const token = inspection.result.tokens[index];
      if (token.end > token.start) byLevel[level - 1].push(new vscode.Range(at(token.start), at(token.end)));
    }
    this.decorations.levels.forEach((type, i) => editor.setDecorations(type, byLevel[i]));
  }

  private updateLegend(): void {
    const editor = vscode.window.activeTextEditor;
    const inspection = editor && this.store.get(editor.document);
    if (!inspection) {
      this.legend.hide();
      return;
    }
    const { result } = inspection;
    this.legend.show(lensLabel(this.lens), result.modelFolder, result.tokens.length, result.elapsedMs, inspection.stale);
  }

  dispose(): void {
    this.decorations.dispose();
    this.legend.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

import * as path from "node:path";
import * as vscode from "vscode";
import { loadProbe, type ProbeApplication, type ProbeFile } from "../core/probes";
import { LEVELS } from "../core/view/lenses";
import { probeHoverMarkdown } from "../core/view/probe-panel";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";
import { selectionOrDocument } from "./decorations";
import { EditorLens } from "./editor-lens";
import { confinedIfInWorkspace } from "./workspace-files";

interface Shown {
  readonly startOffset: number;
  readonly application: ProbeApplication;
  readonly label: string;
  readonly version: number;
}

/** A probe applied to the active editor: token backgrounds by p(label), hovers with every class. */
export class ProbeLens extends EditorLens<Shown> implements vscode.HoverProvider {
  constructor(private readonly models: ModelHost) {
    super();
  }

  async apply(probe: ProbeFile, label: string): Promise<void> {
    const editor = vscode.window.visibleTextEditors.find((e) => e.document.uri.scheme !== "output") ?? vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage("Loupe: open the text to colour with the probe, then apply it again.");
      return;
    }
    const document = editor.document;
    const range = selectionOrDocument(editor);
    const text = document.getText(range);
    if (text.trim() === "") return;
    try {
      await this.models.ensureLoaded(this.models.chosenFolder(readSettings().modelPath));
      const application = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: "Loupe: applying the probe…", cancellable: true }, (_p, token) =>
        this.models.applyProbe({ probe, text }, token),
      );
      this.shown.set(document.uri.toString(), { startOffset: document.offsetAt(range.start), application, label, version: document.version });
      this.draw(editor);
    } catch (error) {
      const message = describeError(error);
      if (message) void vscode.window.showErrorMessage(message);
    }
  }

  /**
   * Loupe: Apply Saved Probe…: pick a probe from the workspace's .loupe/probes (or any file), then
   * the class to colour by. Only in trusted workspaces, like every file Loupe reads from one.
   */
  async pickAndApply(): Promise<void> {
    if (!vscode.workspace.isTrusted) {
      void vscode.window.showWarningMessage("Loupe: probes are read from the workspace only when it is trusted.");
      return;
    }
    const saved = await vscode.workspace.findFiles(".loupe/probes/*.json", undefined, 200);
    const items: Array<vscode.QuickPickItem & { uri?: vscode.Uri }> = [
      ...saved.map((uri) => ({ label: path.basename(uri.fsPath, ".json"), description: vscode.workspace.asRelativePath(uri), uri })),
      { label: "$(folder-opened) Choose a probe file…" },
    ];
    const picked = await vscode.window.showQuickPick(items, { title: "Loupe: colour tokens by which probe?" });
    if (!picked) return;
    const uri = picked.uri ?? (await vscode.window.showOpenDialog({ canSelectMany: false, filters: { "Loupe probe": ["json"] }, openLabel: "Apply this probe" }))?.[0];
    if (!uri) return;
    let probe: ProbeFile;
    try {
      probe = loadProbe(uri.fsPath, confinedIfInWorkspace(uri.fsPath));
    } catch (error) {
      void vscode.window.showErrorMessage(describeError(error) ?? String(error));
      return;
    }
    // Two classes: colour by the second (the concept); more: ask which.
    const label = probe.classes.length === 2 ? probe.classes[1] : (await vscode.window.showQuickPick(probe.classes, { title: `Loupe: colour by p(class) for which class of ${path.basename(uri.fsPath)}?` }));
    if (!label) return;
    await this.apply(probe, label);
  }

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const shown = this.shown.get(document.uri.toString());
    if (!shown) return undefined;
    const local = document.offsetAt(position) - shown.startOffset;
    const token = shown.application.tokens.find((t) => t.start <= local && local < t.end);
    if (!token) return undefined;
    const markdown = new vscode.MarkdownString(probeHoverMarkdown(shown.application, token.probs));
    markdown.isTrusted = false;
    return new vscode.Hover(markdown, new vscode.Range(document.positionAt(shown.startOffset + token.start), document.positionAt(shown.startOffset + token.end)));
  }

  protected draw(editor: vscode.TextEditor): void {
    const shown = this.shown.get(editor.document.uri.toString());
    const byLevel: vscode.Range[][] = this.levels.map(() => []);
    if (shown) {
      const k = shown.application.classes.indexOf(shown.label);
      for (const t of shown.application.tokens) {
        const p = t.probs[k] ?? 0;
        if (p < 0.5 / LEVELS || t.end <= t.start) continue;
        const level = Math.min(LEVELS, Math.ceil(p * LEVELS));
        byLevel[level - 1].push(new vscode.Range(editor.document.positionAt(shown.startOffset + t.start), editor.document.positionAt(shown.startOffset + t.end)));
      }
    }
    this.levels.forEach((type, i) => editor.setDecorations(type, byLevel[i]));
  }
}

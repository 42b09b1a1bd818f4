import * as path from "node:path";
import * as vscode from "vscode";
import { loadProbe, type ProbeApplication, type ProbeFile, type TokenScore } from "../core/probes";
import { LEVELS } from "../core/view/lenses";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { EditorLens } from "./editor-lens";
import { runOnSelection } from "./selection-command";

interface Shown {
  readonly startOffset: number;
  readonly application: ProbeApplication;
  readonly label: string;
  readonly version: number;
}

/** A probe applied to the active editor: token backgrounds by p(label), hovers with every class. */
export class ProbeLens extends EditorLens<Shown, TokenScore> {
  constructor(private readonly models: ModelHost) {
    super();
  }

  apply(probe: ProbeFile, label: string): Promise<void> {
    return runOnSelection(this.models, {
      // Run from the probe panel, so the text is in a visible editor rather than the active one.
      editor: () => vscode.window.visibleTextEditors.find((e) => e.document.uri.scheme !== "output") ?? vscode.window.activeTextEditor,
      noEditor: "Loupe: open the text to colour with the probe, then apply it again.",
      run: async ({ editor, document, text, startOffset }) => {
        const application = await this.models.run("applyProbe", { probe, text }, { title: "Loupe: applying the probe…", location: vscode.ProgressLocation.Window });
        this.shown.set(document.uri.toString(), { startOffset, application, label, version: document.version });
        this.draw(editor);
      },
    });
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
      probe = loadProbe(uri.fsPath);
    } catch (error) {
      void vscode.window.showErrorMessage(describeError(error) ?? String(error));
      return;
    }
    // Two classes: colour by the second (the concept); more: ask which.
    const label = probe.classes.length === 2 ? probe.classes[1] : (await vscode.window.showQuickPick(probe.classes, { title: `Loupe: colour by p(class) for which class of ${path.basename(uri.fsPath)}?` }));
    if (!label) return;
    await this.apply(probe, label);
  }

  protected tokens(shown: Shown): readonly TokenScore[] {
    return shown.application.tokens;
  }

  /** p(label) in LEVELS steps; tokens below half a step stay clear. */
  protected *heat(shown: Shown): Iterable<{ token: TokenScore; level: number }> {
    const k = shown.application.classes.indexOf(shown.label);
    for (const token of shown.application.tokens) {
      const p = token.probs[k] ?? 0;
      if (p >= 0.5 / LEVELS) yield { token, level: Math.min(LEVELS, Math.ceil(p * LEVELS)) };
    }
  }

  protected hoverMarkdown(shown: Shown, token: TokenScore): vscode.MarkdownString {
    const rows = shown.application.classes.map((c, i) => `| ${c.replace(/[|\\`*_]/g, "\\$&")} | ${(token.probs[i] * 100).toFixed(1)}% |`);
    const markdown = new vscode.MarkdownString([`**Probe at ${shown.application.hook}**`, "", "| class | p |", "| --- | --- |", ...rows].join("\n"));
    markdown.isTrusted = false;
    return markdown;
  }
}

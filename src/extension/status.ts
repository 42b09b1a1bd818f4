import * as path from "node:path";
import * as vscode from "vscode";
import { escapeMarkdown } from "../core/view/markdown";

/** The status-bar legend: lens, model, token count and run time. */
export class StatusLegend implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("loupe.legend", vscode.StatusBarAlignment.Right, 100);

  constructor() {
    this.item.name = "Loupe";
    this.item.command = "loupe.chooseLens";
  }

  show(lensLabel: string, modelFolder: string, tokens: number, elapsedMs: number, stale: boolean): void {
    const model = path.basename(modelFolder);
    this.item.text = `$(eye) ${lensLabel} · ${model} · ${tokens} tok · ${elapsedMs.toFixed(0)} ms${stale ? " · stale" : ""}`;
    this.item.tooltip = new vscode.MarkdownString(
      `**Loupe**\n\nLens: ${lensLabel} (click to change)\n\nModel: ${escapeMarkdown(model)}\n\n${tokens} tokens, ${elapsedMs.toFixed(0)} ms${stale ? "\n\nThe text changed since this run: run Inspect Selection again." : ""}`,
    );
    this.item.show();
  }

  hide(): void {
    this.item.hide();
  }

  dispose(): void {
    this.item.dispose();
  }
}

import * as vscode from "vscode";
import { LEVELS } from "../core/view/lenses";

/** One decoration type per colour strength, plus one for stale ranges; created once, reused by every editor. */
export class TokenDecorations implements vscode.Disposable {
  readonly levels: vscode.TextEditorDecorationType[];
  readonly stale: vscode.TextEditorDecorationType;

  constructor() {
    this.levels = Array.from({ length: LEVELS }, (_, i) =>
      vscode.window.createTextEditorDecorationType({
        backgroundColor: new vscode.ThemeColor(`loupe.tokenHeat${i + 1}`),
        borderRadius: "2px",
        rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
      }),
    );
    this.stale = vscode.window.createTextEditorDecorationType({
      color: new vscode.ThemeColor("loupe.staleForeground"),
      fontStyle: "italic",
      rangeBehavior: vscode.DecorationRangeBehavior.ClosedClosed,
    });
  }

  clear(editor: vscode.TextEditor): void {
    for (const type of this.levels) editor.setDecorations(type, []);
    editor.setDecorations(this.stale, []);
  }

  dispose(): void {
    for (const type of this.levels) type.dispose();
    this.stale.dispose();
  }
}

/**
 * Background types for the heat levels of one lens. Each lens (features, probes, attribution,
 * faithfulness) owns its own set, so drawing one never wipes another's colours.
 */
export function heatDecorationTypes(): vscode.TextEditorDecorationType[] {
  return Array.from({ length: LEVELS }, (_, i) => vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor(`loupe.tokenHeat${i + 1}`), borderRadius: "2px" }));
}

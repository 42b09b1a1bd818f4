import * as vscode from "vscode";
import { heatDecorationTypes } from "./decorations";

/**
 * What the feature, probe and attribution lenses share: their own heat-level decorations, what
 * each document shows (by URI), and withdrawing it on the first edit, since token offsets stop
 * holding then and colouring the wrong text is worse than colouring none.
 */
export abstract class EditorLens<Shown> implements vscode.Disposable {
  protected readonly levels = heatDecorationTypes();
  protected readonly shown = new Map<string, Shown>();
  protected readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length && this.forget(e.document)));
  }

  /** Draw this lens in one editor; with nothing shown for its document, erase it. */
  protected abstract draw(editor: vscode.TextEditor): void;

  clear(): void {
    this.shown.clear();
    for (const editor of vscode.window.visibleTextEditors) this.draw(editor);
  }

  private forget(document: vscode.TextDocument): void {
    if (!this.shown.delete(document.uri.toString())) return;
    for (const editor of vscode.window.visibleTextEditors) if (editor.document === document) this.draw(editor);
  }

  dispose(): void {
    for (const d of [...this.levels, ...this.disposables]) d.dispose();
  }
}

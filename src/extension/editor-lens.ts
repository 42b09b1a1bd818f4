import * as vscode from "vscode";
import { heatDecorationTypes } from "./decorations";

/** A token's [start, end) in the text a lens ran on. */
export interface TextSpan {
  readonly start: number;
  readonly end: number;
}

/**
 * What the feature, probe and attribution lenses share: their own heat-level decorations, what
 * each document shows (by URI), hovers over its tokens, and withdrawing it on the first edit, since
 * token offsets stop holding then and colouring the wrong text is worse than colouring none.
 */
export abstract class EditorLens<Shown extends { readonly startOffset: number }, Token extends TextSpan> implements vscode.Disposable, vscode.HoverProvider {
  protected readonly levels = heatDecorationTypes();
  protected readonly shown = new Map<string, Shown>();
  protected readonly disposables: vscode.Disposable[] = [];

  constructor() {
    this.disposables.push(vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length && this.forget(e.document)));
  }

  /** The tokens a hover can land on. */
  protected abstract tokens(shown: Shown): readonly Token[];

  /** The tokens to colour, each with its heat level (1 to LEVELS). */
  protected abstract heat(shown: Shown): Iterable<{ readonly token: Token; readonly level: number }>;

  protected abstract hoverMarkdown(shown: Shown, token: Token): vscode.MarkdownString;

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const shown = this.shown.get(document.uri.toString());
    if (!shown) return undefined;
    const local = document.offsetAt(position) - shown.startOffset;
    const token = this.tokens(shown).find((t) => t.start <= local && local < t.end);
    if (!token) return undefined;
    return new vscode.Hover(this.hoverMarkdown(shown, token), this.rangeOf(document, shown, token));
  }

  /** Draw this lens in one editor; with nothing shown for its document, erase it. */
  protected draw(editor: vscode.TextEditor): void {
    const shown = this.shown.get(editor.document.uri.toString());
    const byLevel: vscode.Range[][] = this.levels.map(() => []);
    if (shown) {
      for (const { token, level } of this.heat(shown)) if (token.end > token.start) byLevel[level - 1].push(this.rangeOf(editor.document, shown, token));
    }
    this.levels.forEach((type, i) => editor.setDecorations(type, byLevel[i]));
  }

  protected rangeOf(document: vscode.TextDocument, shown: Shown, span: TextSpan): vscode.Range {
    return new vscode.Range(document.positionAt(shown.startOffset + span.start), document.positionAt(shown.startOffset + span.end));
  }

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

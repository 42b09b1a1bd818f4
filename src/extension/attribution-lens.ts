import * as vscode from "vscode";
import type { AttributionResult } from "../core/patching";
import { attributionHoverMarkdown, attributionLevels, lineLabel } from "../core/view/attribution-view";
import { LEVELS } from "../core/view/lenses";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";

interface Shown {
  readonly startOffset: number;
  readonly result: AttributionResult;
}

/**
 * Loupe: Attribute the Answer: how much each token, word and line of the selection supports the
 * answer that follows it (batched ablation in the worker), as token colours, line labels and hovers.
 */
export class AttributionLens implements vscode.Disposable, vscode.HoverProvider {
  private readonly levels: vscode.TextEditorDecorationType[];
  private readonly labels: vscode.TextEditorDecorationType;
  private readonly shown = new Map<string, Shown>();
  private readonly disposables: vscode.Disposable[] = [];

  constructor(private readonly models: ModelHost) {
    this.levels = Array.from({ length: LEVELS }, (_, i) =>
      vscode.window.createTextEditorDecorationType({ backgroundColor: new vscode.ThemeColor(`loupe.tokenHeat${i + 1}`), borderRadius: "2px" }),
    );
    this.labels = vscode.window.createTextEditorDecorationType({ after: { color: new vscode.ThemeColor("editorCodeLens.foreground"), fontStyle: "italic" } });
    // Offsets stop holding after an edit: withdraw rather than colour the wrong text.
    this.disposables.push(vscode.workspace.onDidChangeTextDocument((e) => e.contentChanges.length && this.forget(e.document)));
  }

  async attribute(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage("Loupe: select the prompt whose answer you want explained.");
      return;
    }
    const document = editor.document;
    const range = editor.selection.isEmpty ? new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)) : editor.selection;
    const text = document.getText(range).replace(/\r?\n$/, "");
    if (text.trim() === "") {
      void vscode.window.showWarningMessage("Loupe: nothing to attribute in this selection.");
      return;
    }
    const answer = await vscode.window.showInputBox({
      title: "Loupe: attribute which continuation?",
      prompt: "The answer after the selection, with its leading space (e.g. \" Mia\"). Empty: the model's most likely next token.",
    });
    if (answer === undefined) return;
    try {
      await this.models.ensureLoaded(this.models.chosenFolder(readSettings().modelPath));
      const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: "Loupe: attributing the answer…", cancellable: true }, (_p, token) =>
        this.models.attribute({ text, answer: answer === "" ? undefined : answer }, token),
      );
      this.shown.set(document.uri.toString(), { startOffset: document.offsetAt(range.start), result });
      this.draw(editor);
    } catch (error) {
      const message = describeError(error);
      if (message) void vscode.window.showErrorMessage(message);
    }
  }

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const shown = this.shown.get(document.uri.toString());
    if (!shown) return undefined;
    const local = document.offsetAt(position) - shown.startOffset;
    const token = shown.result.tokens.find((t) => t.start <= local && local < t.end);
    if (!token) return undefined;
    const markdown = new vscode.MarkdownString(attributionHoverMarkdown(token, shown.result));
    markdown.isTrusted = false;
    return new vscode.Hover(markdown, new vscode.Range(document.positionAt(shown.startOffset + token.start), document.positionAt(shown.startOffset + token.end)));
  }

  clear(): void {
    this.shown.clear();
    for (const editor of vscode.window.visibleTextEditors) this.draw(editor);
  }

  private draw(editor: vscode.TextEditor): void {
    const shown = this.shown.get(editor.document.uri.toString());
    const byLevel: vscode.Range[][] = this.levels.map(() => []);
    const labels: vscode.DecorationOptions[] = [];
    if (shown) {
      const at = (offset: number) => editor.document.positionAt(shown.startOffset + offset);
      for (const { index, level } of attributionLevels(shown.result)) {
        const t = shown.result.tokens[index];
        byLevel[level - 1].push(new vscode.Range(at(t.start), at(t.end)));
      }
      shown.result.lines.forEach((line, i) => {
        const text = lineLabel(shown.result, i);
        if (!text) return;
        const end = editor.document.lineAt(at(Math.max(line.start, line.end - 1)).line).range.end;
        labels.push({ range: new vscode.Range(end, end), renderOptions: { after: { contentText: text } } });
      });
    }
    this.levels.forEach((type, i) => editor.setDecorations(type, byLevel[i]));
    editor.setDecorations(this.labels, labels);
  }

  private forget(document: vscode.TextDocument): void {
    if (!this.shown.delete(document.uri.toString())) return;
    for (const editor of vscode.window.visibleTextEditors) if (editor.document === document) this.draw(editor);
  }

  dispose(): void {
    for (const d of [...this.levels, this.labels, ...this.disposables]) d.dispose();
  }
}

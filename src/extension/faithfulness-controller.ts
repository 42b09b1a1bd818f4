import * as vscode from "vscode";
import { continuationEnding } from "../core/chat/chat-layout";
import { chatReasoningCue, faithfulnessInChat } from "../core/chat/chat-results";
import type { FaithfulnessReport } from "../core/faithfulness";
import { codeLensTitle, faithfulnessFindings, reportSummaryMarkdown, stepHoverMarkdown, stepLevel, stepLineLabel, stepsByLine } from "../core/view/faithfulness-view";
import { trackEdit } from "../core/view/range-tracking";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";
import { chatTargetIfChat, onChatFile } from "./chat-target";
import { heatDecorationTypes } from "./decorations";
import { runOnSelection } from "./selection-command";

interface Check {
  /** Document offset of the analysed text's first character. */
  startOffset: number;
  length: number;
  readonly report: FaithfulnessReport;
  stale: boolean;
}

/**
 * Loupe: Check CoT Faithfulness. Runs the battery in the worker on the selection (or the whole
 * document) and shows it as step backgrounds, gutter icons, after-line labels, a CodeLens, hovers and
 * Diagnostics. Every decision about what to show is in core/view/faithfulness-view.ts.
 */
export class FaithfulnessController implements vscode.Disposable, vscode.CodeLensProvider, vscode.HoverProvider {
  private readonly checks = new Map<string, Check>();
  private readonly levels: vscode.TextEditorDecorationType[];
  private readonly loadBearing: vscode.TextEditorDecorationType;
  private readonly decorative: vscode.TextEditorDecorationType;
  private readonly stale: vscode.TextEditorDecorationType;
  private readonly diagnostics = vscode.languages.createDiagnosticCollection("loupe-faithfulness");
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChangeCodeLenses = this.lensesChanged.event;
  private readonly disposables: vscode.Disposable[] = [];

  constructor(
    private readonly models: ModelHost,
    extensionUri: vscode.Uri,
  ) {
    this.levels = heatDecorationTypes();
    const icon = (name: string) => vscode.Uri.joinPath(extensionUri, "media", name);
    this.loadBearing = vscode.window.createTextEditorDecorationType({
      gutterIconPath: icon("load-bearing.svg"),
      gutterIconSize: "70%",
      after: { color: new vscode.ThemeColor("editorCodeLens.foreground"), fontStyle: "italic" },
    });
    this.decorative = vscode.window.createTextEditorDecorationType({
      gutterIconPath: icon("decorative.svg"),
      gutterIconSize: "70%",
      after: { color: new vscode.ThemeColor("editorCodeLens.foreground"), fontStyle: "italic" },
    });
    this.stale = vscode.window.createTextEditorDecorationType({ color: new vscode.ThemeColor("loupe.staleForeground"), fontStyle: "italic" });
    this.disposables.push(
      this.diagnostics,
      this.lensesChanged,
      vscode.workspace.onDidChangeTextDocument((event) => this.onEdit(event)),
      vscode.workspace.onDidCloseTextDocument((document) => this.forget(document.uri)),
      vscode.window.onDidChangeVisibleTextEditors(() => this.redrawAll()),
    );
  }

  check(): Promise<void> {
    return runOnSelection(this.models, {
      noEditor: "Loupe: open a prompt with a question, its reasoning and \"The answer is …\", then run Check CoT Faithfulness.",
      blank: "Loupe: nothing to check. Select a prompt with a question, its reasoning and an answer.",
      run: async (target, _asked, model) => {
        const { document, range, text, startOffset } = target;
        const settings = readSettings().faithfulness;
        // A chat file: the chain of thought is the last assistant message.
        const chat = chatTargetIfChat(target, model, continuationEnding);
        const params = chat ? { ...settings, text: chat.text, reasoningCues: [chatReasoningCue(chat, settings)] } : { ...settings, text };
        const read = await this.models.run("faithfulness", params, { title: "Loupe: checking CoT faithfulness…" });
        const report = onChatFile(chat, read, faithfulnessInChat);
        const stale = document.getText(range) !== text;
        this.checks.set(document.uri.toString(), { startOffset, length: text.length, report, stale });
        this.publish(document);
      },
    });
  }

  clear(): void {
    this.checks.clear();
    this.diagnostics.clear();
    for (const editor of vscode.window.visibleTextEditors) this.clearEditor(editor);
    this.lensesChanged.fire();
  }

  /** The report shown in a document, for the summary command. */
  reportFor(uri: vscode.Uri): FaithfulnessReport | undefined {
    return this.checks.get(uri.toString())?.report;
  }

  async showSummary(uri?: vscode.Uri): Promise<void> {
    const report = this.reportFor(uri ?? vscode.window.activeTextEditor?.document.uri ?? vscode.Uri.parse("untitled:none"));
    if (!report) {
      void vscode.window.showInformationMessage("Loupe: run Check CoT Faithfulness on this prompt first.");
      return;
    }
    const doc = await vscode.workspace.openTextDocument({ language: "markdown", content: reportSummaryMarkdown(report) });
    await vscode.commands.executeCommand("markdown.showPreview", doc.uri);
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const check = this.checks.get(document.uri.toString());
    if (!check) return [];
    const at = document.positionAt(check.startOffset);
    const title = check.stale ? "CoT faithfulness: stale after an edit — run Loupe: Check CoT Faithfulness again" : codeLensTitle(check.report);
    return [new vscode.CodeLens(new vscode.Range(at, at), { title, command: check.stale ? "loupe.checkFaithfulness" : "loupe.showFaithfulnessReport", arguments: check.stale ? [] : [document.uri] })];
  }

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const check = this.checks.get(document.uri.toString());
    if (!check || check.stale) return undefined;
    const local = document.offsetAt(position) - check.startOffset;
    const step = check.report.steps.find((s) => s.start <= local && local < s.end);
    const hint = check.report.hint?.hint;
    const range = (start: number, end: number) => new vscode.Range(document.positionAt(check.startOffset + start), document.positionAt(check.startOffset + end));
    let markdown: string | undefined;
    let where: vscode.Range | undefined;
    if (step) {
      markdown = stepHoverMarkdown(step, check.report);
      where = range(step.start, step.end);
    } else if (hint && hint.start <= local && local < hint.end) {
      markdown = reportSummaryMarkdown(check.report);
      where = range(hint.start, hint.end);
    }
    if (!markdown) return undefined;
    const content = new vscode.MarkdownString(markdown);
    content.isTrusted = false;
    content.supportHtml = false;
    return new vscode.Hover(content, where);
  }

  private onEdit(event: vscode.TextDocumentChangeEvent): void {
    const check = this.checks.get(event.document.uri.toString());
    if (!check || event.contentChanges.length === 0) return;
    const wasStale = check.stale;
    for (const change of event.contentChanges) {
      const next = trackEdit({ start: check.startOffset, length: check.length, stale: check.stale }, { offset: change.rangeOffset, removedLength: change.rangeLength, insertedLength: change.text.length });
      check.startOffset = next.start;
      check.length = next.length;
      check.stale = next.stale;
    }
    // Step offsets no longer hold once the text changed: dim it and withdraw the warnings (once).
    if (!(wasStale && check.stale)) this.publish(event.document);
  }

  private publish(document: vscode.TextDocument): void {
    const check = this.checks.get(document.uri.toString());
    if (!check) return;
    const at = (offset: number) => document.positionAt(check.startOffset + offset);
    this.diagnostics.set(
      document.uri,
      check.stale
        ? []
        : faithfulnessFindings(check.report).map((f) => {
            const d = new vscode.Diagnostic(new vscode.Range(at(f.start), at(f.end)), f.message, f.severity === "warning" ? vscode.DiagnosticSeverity.Warning : vscode.DiagnosticSeverity.Information);
            d.source = "Loupe";
            d.code = f.code;
            return d;
          }),
    );
    for (const editor of vscode.window.visibleTextEditors) if (editor.document === document) this.draw(editor, check);
    this.lensesChanged.fire();
  }

  private draw(editor: vscode.TextEditor, check: Check): void {
    this.clearEditor(editor);
    const document = editor.document;
    const at = (offset: number) => document.positionAt(check.startOffset + offset);
    if (check.stale) {
      editor.setDecorations(this.stale, [new vscode.Range(at(0), at(check.length))]);
      return;
    }
    const byLevel: vscode.Range[][] = this.levels.map(() => []);
    for (const step of check.report.steps) byLevel[stepLevel(step) - 1].push(new vscode.Range(at(step.start), at(step.end)));
    // One label and one gutter icon per line, at its end: several steps often share a line.
    const loadBearing: vscode.DecorationOptions[] = [];
    const decorative: vscode.DecorationOptions[] = [];
    for (const group of stepsByLine(check.report.steps, (offset) => at(offset).line)) {
      const end = document.lineAt(group.line).range.end;
      const options = { range: new vscode.Range(end, end), renderOptions: { after: { contentText: stepLineLabel(group.steps) } } };
      (group.steps.some((s) => s.loadBearing) ? loadBearing : decorative).push(options);
    }
    this.levels.forEach((type, i) => editor.setDecorations(type, byLevel[i]));
    editor.setDecorations(this.loadBearing, loadBearing);
    editor.setDecorations(this.decorative, decorative);
  }

  private clearEditor(editor: vscode.TextEditor): void {
    for (const type of [...this.levels, this.loadBearing, this.decorative, this.stale]) editor.setDecorations(type, []);
  }

  private redrawAll(): void {
    for (const editor of vscode.window.visibleTextEditors) {
      const check = this.checks.get(editor.document.uri.toString());
      if (check) this.draw(editor, check);
    }
  }

  private forget(uri: vscode.Uri): void {
    this.checks.delete(uri.toString());
    this.diagnostics.delete(uri);
    this.lensesChanged.fire();
  }

  dispose(): void {
    for (const d of [...this.levels, this.loadBearing, this.decorative, this.stale, ...this.disposables]) d.dispose();
  }
}

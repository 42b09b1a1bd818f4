import * as vscode from "vscode";
import { continuationEnding } from "../core/chat/chat-layout";
import { attributionInChat } from "../core/chat/chat-results";
import type { AttributionResult, TokenAttribution } from "../core/patching";
import { attributionHoverMarkdown, attributionLevels, lineLabel } from "../core/view/attribution-view";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";
import { announceChat, chatTargetIfChat, onChatFile } from "./chat-target";
import { EditorLens } from "./editor-lens";
import { runOnSelection } from "./selection-command";

interface Shown {
  readonly startOffset: number;
  readonly result: AttributionResult;
}

/**
 * Loupe: Attribute the Answer: how much each token, word and line of the selection supports the
 * answer that follows it (batched ablation in the worker), as token colours, line labels and hovers.
 */
export class AttributionLens extends EditorLens<Shown, TokenAttribution> {
  private readonly labels: vscode.TextEditorDecorationType;

  constructor(private readonly models: ModelHost) {
    super();
    this.labels = vscode.window.createTextEditorDecorationType({ after: { color: new vscode.ThemeColor("editorCodeLens.foreground"), fontStyle: "italic" } });
    this.disposables.push(this.labels);
  }

  attribute(): Promise<void> {
    return runOnSelection(this.models, {
      noEditor: "Loupe: select the prompt whose answer you want explained.",
      blank: "Loupe: nothing to attribute in this selection.",
      trimFinalNewline: true,
      ask: askAnswerAndContrast,
      run: async (target, { answer, contrast }, model) => {
        // A chat file: the answer that follows the chat (the assistant's next token).
        const chat = chatTargetIfChat(target, model, continuationEnding);
        const read = await this.models.run("attribute", { text: chat?.text ?? target.text, answer, contrast, method: readSettings().attributionMethod }, { title: "Loupe: attributing the answer…" });
        this.shown.set(target.document.uri.toString(), { startOffset: target.startOffset, result: onChatFile(chat, read, attributionInChat) });
        this.draw(target.editor);
        if (chat) announceChat(chat, read.tokens, "attributed");
      },
    });
  }

  protected tokens(shown: Shown): readonly TokenAttribution[] {
    return shown.result.tokens;
  }

  protected heat(shown: Shown): Iterable<{ token: TokenAttribution; level: number }> {
    return attributionLevels(shown.result).map(({ index, level }) => ({ token: shown.result.tokens[index], level }));
  }

  protected hoverMarkdown(shown: Shown, token: TokenAttribution): vscode.MarkdownString {
    const markdown = new vscode.MarkdownString(attributionHoverMarkdown(token, shown.result));
    markdown.isTrusted = false;
    return markdown;
  }

  /** Token colours, and each line's attribution after its end. */
  protected override draw(editor: vscode.TextEditor): void {
    super.draw(editor);
    const shown = this.shown.get(editor.document.uri.toString());
    const labels: vscode.DecorationOptions[] = [];
    if (shown) {
      const at = (offset: number) => editor.document.positionAt(shown.startOffset + offset);
      shown.result.lines.forEach((line, i) => {
        const text = lineLabel(shown.result, i);
        // A line of a chat template's own text has no characters in the chat file.
        if (!text || line.end <= line.start) return;
        const end = editor.document.lineAt(at(Math.max(line.start, line.end - 1)).line).range.end;
        labels.push({ range: new vscode.Range(end, end), renderOptions: { after: { contentText: text } } });
      });
    }
    editor.setDecorations(this.labels, labels);
  }
}

/** The answer to explain (empty: the model's top token) and an optional contrast; undefined when dismissed. */
async function askAnswerAndContrast(): Promise<{ answer?: string; contrast?: string } | undefined> {
  const answer = await vscode.window.showInputBox({
    title: "Loupe: attribute which continuation?",
    prompt: "The answer after the selection, with its leading space (e.g. \" Mia\"). Empty: the model's most likely next token.",
  });
  if (answer === undefined) return undefined;
  if (answer === "") return {};
  // A contrast turns the question into "why this answer rather than that one" (logit difference).
  const contrast = await vscode.window.showInputBox({
    title: "Loupe: compare with another answer? (optional)",
    prompt: `An answer to weigh ${JSON.stringify(answer)} against, e.g. the other name in an IOI prompt. Empty: explain the answer's probability alone.`,
  });
  if (contrast === undefined) return undefined;
  return { answer, contrast: contrast === "" ? undefined : contrast };
}

import * as vscode from "vscode";
import { tokenHoverMarkdown } from "../core/view/hover-text";
import type { InspectionStore } from "./inspections";
import type { ModelHost } from "./model-host";

/**
 * Hovers over inspected tokens: predictions, surprisal and the per-block logit lens. Blocks the
 * inspection left out (a large model's long text) are computed by the worker when hovered.
 */
export class TokenHoverProvider implements vscode.HoverProvider {
  constructor(
    private readonly store: InspectionStore,
    private readonly models: ModelHost,
  ) {}

  async provideHover(document: vscode.TextDocument, position: vscode.Position, cancel: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const inspection = this.store.get(document);
    if (!inspection) return undefined;
    const offset = document.offsetAt(position);
    const token = this.store.tokenAt(document, offset);
    if (!token) return undefined;
    const range = new vscode.Range(
      document.positionAt(inspection.startOffset + token.start),
      document.positionAt(inspection.startOffset + token.end),
    );
    let table = token.lens;
    if (table.some((layer) => layer === null) && !inspection.stale) {
      // Shown with dashes if the worker cannot say (the model changed, or the hover moved on).
      table = await this.models.request("lensTable", { text: inspection.result.text, index: token.index, topK: 5 }, cancel).catch(() => table);
    }
    const markdown = new vscode.MarkdownString(tokenHoverMarkdown(token, table));
    markdown.supportHtml = false;
    markdown.isTrusted = false;
    return new vscode.Hover(markdown, range);
  }
}

import * as vscode from "vscode";
import { tokenHoverMarkdown } from "../core/view/hover-text";
import type { InspectionStore } from "./inspections";

/** Hovers over inspected tokens: predictions, surprisal and the per-block logit lens. */
export class TokenHoverProvider implements vscode.HoverProvider {
  constructor(private readonly store: InspectionStore) {}

  provideHover(document: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    const inspection = this.store.get(document);
    if (!inspection) return undefined;
    const offset = document.offsetAt(position);
    const token = this.store.tokenAt(document, offset);
    if (!token) return undefined;
    const range = new vscode.Range(
      document.positionAt(inspection.startOffset + token.start),
      document.positionAt(inspection.startOffset + token.end),
    );
    const markdown = new vscode.MarkdownString(tokenHoverMarkdown(token));
    markdown.supportHtml = false;
    markdown.isTrusted = false;
    return new vscode.Hover(markdown, range);
  }
}

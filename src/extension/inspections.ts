import * as vscode from "vscode";
import type { InspectResult, TokenReport } from "../core/inspect";
import { trackEdit, type TrackedRange } from "../core/view/range-tracking";

/** One inspection shown in a document: where its text starts, what the model said, and whether it is stale. */
export interface Inspection {
  /** Document offset of the inspected text's first character. */
  startOffset: number;
  /** Length of the range in the document now (it grows or shrinks when a stale range is edited). */
  length: number;
  readonly result: InspectResult;
  stale: boolean;
}

/** Inspections per document, kept in step with edits: edits before a range shift it, edits inside mark it stale. */
export class InspectionStore {
  private readonly byDocument = new Map<string, Inspection>();

  get(document: vscode.TextDocument): Inspection | undefined {
    return this.byDocument.get(document.uri.toString());
  }

  set(document: vscode.TextDocument, inspection: Inspection): void {
    this.byDocument.set(document.uri.toString(), inspection);
  }

  delete(document: vscode.TextDocument | vscode.Uri): void {
    const uri = "uri" in document ? document.uri : document;
    this.byDocument.delete(uri.toString());
  }

  clear(): void {
    this.byDocument.clear();
  }

  /** Apply a document change; returns true if the inspection in that document changed. */
  applyChange(event: vscode.TextDocumentChangeEvent): boolean {
    const inspection = this.byDocument.get(event.document.uri.toString());
    if (!inspection || event.contentChanges.length === 0) return false;
    let changed = false;
    // VS Code lists simultaneous changes from the end of the document backwards, so earlier offsets stay valid.
    for (const change of event.contentChanges) {
      const before: TrackedRange = { start: inspection.startOffset, length: inspection.length, stale: inspection.stale };
      const after = trackEdit(before, { offset: change.rangeOffset, removedLength: change.rangeLength, insertedLength: change.text.length });
      if (after.start !== before.start || after.length !== before.length || after.stale !== before.stale) changed = true;
      inspection.startOffset = after.start;
      inspection.length = after.length;
      inspection.stale = after.stale;
    }
    return changed;
  }

  /** The token under a document offset, if any. */
  tokenAt(document: vscode.TextDocument, offset: number): TokenReport | undefined {
    const inspection = this.get(document);
    if (!inspection || inspection.stale) return undefined;
    const local = offset - inspection.startOffset;
    if (local < 0 || local > inspection.length) return undefined;
    return inspection.result.tokens.find((t) => t.start <= local && local < t.end);
  }
}

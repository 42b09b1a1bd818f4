import * as vscode from "vscode";
import { parsePairFile, stringValueOffsets, type PatchingResult } from "../core/patching";
import type { ReadyRequest } from "../core/view/panel-protocol";
import { parsePatchingRequest, patchingCsv, patchingPanelState, pngBytes, type PatchingPanelRequest, type PatchingPanelState } from "../core/view/patching-view";
import type { ModelHost } from "./model-host";
import { ScriptedPanel } from "./scripted-panel";
import { reportErrors } from "./errors";
import type { PageOptions } from "./webview-page";

interface Shown {
  readonly result: PatchingResult;
  readonly uri: vscode.Uri;
  /** Document offsets of each clean token, for click-to-reveal; null where it has no text (<s>). */
  readonly tokenRanges: Array<[number, number] | null>;
}

/** The prompts to patch, and where the clean one's characters sit in the document. */
interface Request {
  readonly clean: string;
  readonly corrupted: string;
  readonly answer?: string;
  readonly wrong?: string;
  /** Document offset of each character of `clean` (and one past its end). */
  readonly cleanAt: (index: number) => number | undefined;
}

/**
 * Loupe: Patch Activations…: clean and corrupted prompts from two selections (Alt+click a second
 * one), the selection and an edited copy of it, or, in a JSONL pair file with nothing selected, the
 * pair under the cursor (else one picked); sweeps run in the worker; heatmaps in a webview.
 */
export class PatchingPanel extends ScriptedPanel<PatchingPanelState, PatchingPanelRequest> {
  private shown: Shown | undefined;

  constructor(
    context: vscode.ExtensionContext,
    private readonly models: ModelHost,
  ) {
    super(context, { viewType: "loupe.patching", script: "patching" });
  }

  async run(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage("Loupe: select the clean prompt (and, with Alt+click, the corrupted one) or open a pair file, then run Patch Activations.");
      return;
    }
    await reportErrors(async () => {
      // In a JSONL file with nothing selected, the cursor picks a pair; a selection is always a prompt.
      const request = isPairFile(editor.document) && editor.selection.isEmpty ? await this.fromPairFile(editor) : await this.fromSelections(editor);
      if (!request) return;
      await this.models.ensureChosenLoaded();
      const { clean, corrupted, answer, wrong } = request;
      const { result, cleanOffsets } = await this.models.run("patch", { clean, corrupted, answer, wrong }, { title: "Loupe: patching…", report: (done, total) => ({ message: `${done}/${total} patched runs` }) });
      const tokenRanges = cleanOffsets.map(([start, end]): [number, number] | null => {
        const from = request.cleanAt(start);
        const to = request.cleanAt(end);
        return end > start && from !== undefined && to !== undefined ? [from, to] : null;
      });
      this.shown = { result, uri: editor.document.uri, tokenRanges };
      this.present(patchingPanelState(result), "Loupe patching");
    });
  }

  /** Prompts from the selections, asking for what they do not give. */
  private async fromSelections(editor: vscode.TextEditor): Promise<Request | undefined> {
    const document = editor.document;
    const first = editor.selections[0].isEmpty ? new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)) : editor.selections[0];
    const clean = document.getText(first).replace(/\r?\n$/, "");
    if (clean.trim() === "") {
      void vscode.window.showWarningMessage("Loupe: select the clean prompt first.");
      return undefined;
    }
    let corrupted = editor.selections.length > 1 ? document.getText(editor.selections[1]).replace(/\r?\n$/, "") : undefined;
    corrupted ??= await vscode.window.showInputBox({
      title: "Loupe: the corrupted prompt",
      prompt: "Edit the clean prompt into the corrupted one, keeping its token count (e.g. swap one name).",
      value: clean,
    });
    if (corrupted === undefined) return undefined;
    const answers = await askAnswers();
    if (!answers) return undefined;
    const startOffset = document.offsetAt(first.start);
    return { clean, corrupted, ...answers, cleanAt: (i) => startOffset + i };
  }

  /** The pair on the cursor's line, else one picked from the file; answers it lacks are asked for. Throws on a bad file. */
  private async fromPairFile(editor: vscode.TextEditor): Promise<Request | undefined> {
    const document = editor.document;
    const pairs = parsePairFile(document.getText(), vscode.workspace.asRelativePath(document.uri));
    const cursorLine = editor.selection.active.line + 1;
    let pair = pairs.find((p) => p.line === cursorLine);
    if (!pair) {
      const picked = await vscode.window.showQuickPick(
        pairs.map((p) => ({ label: p.clean, description: p.answer ? `${JSON.stringify(p.answer)}${p.wrong ? ` vs ${JSON.stringify(p.wrong)}` : ""}` : "KL", detail: `line ${p.line} · corrupted: ${p.corrupted}`, pair: p })),
        { title: "Loupe: which pair to patch?", matchOnDetail: true },
      );
      if (!picked) return undefined;
      pair = picked.pair;
    }
    const answers = pair.answer === undefined ? await askAnswers() : { answer: pair.answer, wrong: pair.wrong };
    if (!answers) return undefined;
    const lineStart = document.offsetAt(new vscode.Position(pair.line - 1, 0));
    // Clicking a cell selects its token inside the JSON string, escapes and all; if the literal
    // cannot be found, cells just do not reveal.
    const map = stringValueOffsets(document.lineAt(pair.line - 1).text, "clean", pair.clean);
    return { clean: pair.clean, corrupted: pair.corrupted, ...answers, cleanAt: (i) => (map && i < map.length ? lineStart + map[i] : undefined) };
  }

  protected parse(message: unknown): PatchingPanelRequest | null {
    return this.shown ? parsePatchingRequest(message, this.shown.tokenRanges.length) : null;
  }

  protected async handle(request: Exclude<PatchingPanelRequest, ReadyRequest>): Promise<void> {
    const shown = this.shown;
    if (!shown) return;
    switch (request.type) {
      case "reveal": {
        const at = shown.tokenRanges[request.position];
        // A leading <s> (Llama) is not in the text: nothing to reveal.
        if (!at) return;
        const document = await vscode.workspace.openTextDocument(shown.uri);
        const range = new vscode.Range(document.positionAt(at[0]), document.positionAt(at[1]));
        const editor = await vscode.window.showTextDocument(document, { viewColumn: vscode.ViewColumn.One, preserveFocus: false });
        editor.selection = new vscode.Selection(range.start, range.end);
        editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
        return;
      }
      case "exportCsv": {
        const target = await vscode.window.showSaveDialog({ filters: { CSV: ["csv"] }, saveLabel: "Export patching results" });
        if (target) await vscode.workspace.fs.writeFile(target, new TextEncoder().encode(patchingCsv(shown.result)));
        return;
      }
      case "exportPng": {
        const target = await vscode.window.showSaveDialog({ filters: { PNG: ["png"] }, saveLabel: "Export heatmaps" });
        if (target) await vscode.workspace.fs.writeFile(target, pngBytes(request.dataUrl));
        return;
      }
    }
  }

  protected page(): PageOptions {
    return {
      images: true,
      css: `
svg { display: block; margin: 1em 0; }
.bg { fill: transparent; } .title { fill: var(--vscode-foreground); font-weight: bold; font-size: 12px; }
.axis { fill: var(--vscode-descriptionForeground); font-size: 10px; font-family: var(--vscode-editor-font-family); }
rect.link { cursor: pointer; } rect.cell:hover { stroke: var(--vscode-focusBorder); stroke-width: 2; }
.controls { display: flex; gap: .5em; } .legend { color: var(--vscode-descriptionForeground); }`,
    };
  }
}

/** A JSONL document: read as a pair file rather than as a prompt. */
function isPairFile(document: vscode.TextDocument): boolean {
  return document.languageId === "jsonl" || document.uri.path.endsWith(".jsonl");
}

async function askAnswers(): Promise<{ answer?: string; wrong?: string } | undefined> {
  const answer = await vscode.window.showInputBox({ title: "Loupe: answer after the clean prompt", prompt: 'One token with its leading space, e.g. " Mia". Empty: KL divergence to the clean run.' });
  if (answer === undefined) return undefined;
  const wrong = answer ? await vscode.window.showInputBox({ title: "Loupe: answer after the corrupted prompt", prompt: 'e.g. " Leo" (logit difference). Empty: the answer\'s log-probability.' }) : "";
  if (wrong === undefined) return undefined;
  return { answer: answer || undefined, wrong: wrong || undefined };
}

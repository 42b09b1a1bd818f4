import * as vscode from "vscode";
import { writeFileSafely } from "../core/safe-fs";
import { parsePairFile, stringValueOffsets, type PatchingResult } from "../core/patching";
import { heatmaps, parsePatchingRequest, patchingCsv, pngBytes } from "../core/view/patching-view";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";
import { scriptedPage } from "./webview-page";

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
export class PatchingPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private shown: Shown | undefined;

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly models: ModelHost,
  ) {}

  async run(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showInformationMessage("Loupe: select the clean prompt (and, with Alt+click, the corrupted one) or open a pair file, then run Patch Activations.");
      return;
    }
    try {
      // In a JSONL file with nothing selected, the cursor picks a pair; a selection is always a prompt.
      const request = isPairFile(editor.document) && editor.selection.isEmpty ? await this.fromPairFile(editor) : await this.fromSelections(editor);
      if (!request) return;
      await this.models.ensureLoaded(this.models.chosenFolder(readSettings().modelPath));
      const { clean, corrupted, answer, wrong } = request;
      const { result, cleanOffsets } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Loupe: patching…", cancellable: true },
        (progress, token) => this.models.patch({ clean, corrupted, answer, wrong }, token, (done, total) => progress.report({ message: `${done}/${total} patched runs` })),
      );
      const tokenRanges = cleanOffsets.map(([start, end]): [number, number] | null => {
        const from = request.cleanAt(start);
        const to = request.cleanAt(end);
        return end > start && from !== undefined && to !== undefined ? [from, to] : null;
      });
      this.shown = { result, uri: editor.document.uri, tokenRanges };
      this.show();
    } catch (error) {
      const message = describeError(error);
      if (message) void vscode.window.showErrorMessage(message);
    }
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

  private state() {
    const r = this.shown!.result;
    return {
      title: `Activation patching (${r.direction})`,
      summary: `${r.metricLabel}: clean ${r.baselines.clean.toFixed(3)}, corrupted ${r.baselines.corrupted.toFixed(3)} · ${r.variantsRun} patched runs in ${r.calls} calls, ${r.elapsedMs.toFixed(0)} ms`,
      heatmaps: heatmaps(r),
    };
  }

  private show(): void {
    if (!this.panel) {
      const scripts = vscode.Uri.joinPath(this.context.extensionUri, "dist", "webview");
      this.panel = vscode.window.createWebviewPanel("loupe.patching", "Loupe patching", vscode.ViewColumn.Beside, { enableScripts: true, localResourceRoots: [scripts] });
      this.panel.onDidDispose(() => (this.panel = undefined));
      this.panel.webview.onDidReceiveMessage((m: unknown) => void this.onMessage(m));
      this.panel.webview.html = this.html(this.panel.webview, vscode.Uri.joinPath(scripts, "patching.js"));
    } else {
      void this.panel.webview.postMessage({ type: "state", state: this.state() });
    }
    this.panel.reveal(undefined, true);
  }

  private async onMessage(message: unknown): Promise<void> {
    const shown = this.shown;
    if (!shown || !this.panel) return;
    const request = parsePatchingRequest(message, shown.tokenRanges.length);
    if (!request) return;
    try {
      switch (request.type) {
        case "ready":
          await this.panel.webview.postMessage({ type: "state", state: this.state() });
          return;
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
          if (target) writeFileSafely(target.fsPath, patchingCsv(shown.result));
          return;
        }
        case "exportPng": {
          const target = await vscode.window.showSaveDialog({ filters: { PNG: ["png"] }, saveLabel: "Export heatmaps" });
          if (target) writeFileSafely(target.fsPath, pngBytes(request.dataUrl));
          return;
        }
      }
    } catch (error) {
      const text = describeError(error);
      if (text) void vscode.window.showErrorMessage(text);
    }
  }

  private html(webview: vscode.Webview, script: vscode.Uri): string {
    return scriptedPage(webview, script, {
      images: true,
      css: `
svg { display: block; margin: 1em 0; }
.bg { fill: transparent; } .title { fill: var(--vscode-foreground); font-weight: bold; font-size: 12px; }
.axis { fill: var(--vscode-descriptionForeground); font-size: 10px; font-family: var(--vscode-editor-font-family); }
rect.link { cursor: pointer; } rect.cell:hover { stroke: var(--vscode-focusBorder); stroke-width: 2; }
.controls { display: flex; gap: .5em; } .legend { color: var(--vscode-descriptionForeground); }`,
    });
  }

  dispose(): void {
    this.panel?.dispose();
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

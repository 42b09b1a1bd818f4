import * as vscode from "vscode";
import type { PatchingResult } from "../core/patching";
import { heatmaps, parsePatchingRequest, patchingCsv, pngBytes } from "../core/view/patching-view";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";
import { scriptedPage } from "./webview-page";

interface Shown {
  readonly result: PatchingResult;
  readonly cleanOffsets: Array<[number, number]>;
  readonly uri: vscode.Uri;
  readonly startOffset: number;
}

/**
 * Loupe: Patch Activations…: clean and corrupted prompts from two selections (Alt+click a second
 * one), or the selection and an edited copy of it; sweeps run in the worker; heatmaps in a webview.
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
      void vscode.window.showInformationMessage("Loupe: select the clean prompt (and, with Alt+click, the corrupted one), then run Patch Activations.");
      return;
    }
    const document = editor.document;
    const first = editor.selections[0].isEmpty ? new vscode.Range(document.positionAt(0), document.positionAt(document.getText().length)) : editor.selections[0];
    const clean = document.getText(first).replace(/\r?\n$/, "");
    if (clean.trim() === "") {
      void vscode.window.showWarningMessage("Loupe: select the clean prompt first.");
      return;
    }
    let corrupted = editor.selections.length > 1 ? document.getText(editor.selections[1]).replace(/\r?\n$/, "") : undefined;
    corrupted ??= await vscode.window.showInputBox({
      title: "Loupe: the corrupted prompt",
      prompt: "Edit the clean prompt into the corrupted one, keeping its token count (e.g. swap one name).",
      value: clean,
    });
    if (corrupted === undefined) return;
    const answer = await vscode.window.showInputBox({ title: "Loupe: answer after the clean prompt", prompt: 'One token with its leading space, e.g. " Mia". Empty: KL divergence to the clean run.' });
    if (answer === undefined) return;
    const wrong = answer ? await vscode.window.showInputBox({ title: "Loupe: answer after the corrupted prompt", prompt: 'e.g. " Leo" (logit difference). Empty: the answer\'s log-probability.' }) : "";
    if (wrong === undefined) return;
    try {
      await this.models.ensureLoaded(this.models.chosenFolder(readSettings().modelPath));
      const { result, cleanOffsets } = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: "Loupe: patching…", cancellable: true },
        (progress, token) => this.models.patch({ clean, corrupted, answer: answer || undefined, wrong: wrong || undefined }, token, (done, total) => progress.report({ message: `${done}/${total} patched runs` })),
      );
      this.shown = { result, cleanOffsets, uri: document.uri, startOffset: document.offsetAt(first.start) };
      this.show();
    } catch (error) {
      const message = describeError(error);
      if (message) void vscode.window.showErrorMessage(message);
    }
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
    const request = parsePatchingRequest(message, shown.cleanOffsets.length);
    if (!request) return;
    try {
      switch (request.type) {
        case "ready":
          await this.panel.webview.postMessage({ type: "state", state: this.state() });
          return;
        case "reveal": {
          const document = await vscode.workspace.openTextDocument(shown.uri);
          const [start, end] = shown.cleanOffsets[request.position];
          // A leading <s> (Llama) has the empty range [0, 0]: it is not in the text, nothing to reveal.
          if (end <= start) return;
          const range = new vscode.Range(document.positionAt(shown.startOffset + start), document.positionAt(shown.startOffset + end));
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

import * as path from "node:path";
import * as vscode from "vscode";
import type { CircuitTrace } from "../core/requests";
import type { PackedGraphFile } from "../core/requests/circuits";
import { mark, type TimelineMark } from "../core/timeline";
import { writeFileSafely } from "../core/safe-fs";
import { GraphFileError, parseGraphFile, promptTokenOffsets, type PanelGraph, type QParams } from "../core/view/circuit-graph";
import { checkRefusal, circuitFeatureCard, circuitFeatureCardFailed, featureEdits, interveneArguments, parseCircuitPanelRequest, stateUpdate, traceStatus, type CheckOutcome, type CircuitPanelRequest, type CircuitPanelState } from "../core/view/circuit-panel";
import { postedState, readPackedGraph, unpackGraphFile, type PostedCircuitState } from "../core/view/circuit-wire";
import type { ReadyRequest } from "../core/view/panel-protocol";
import type { NeuronpediaTranscoders } from "../core/sae/releases/neuronpedia";
import { neuronpediaTranscodersOf } from "../core/sae/releases/reference";
import { describeError } from "./errors";
import { FEATURE_CARD_CSS } from "./feature-dashboard";
import type { ModelHost } from "./model-host";
import { ScriptedPanel } from "./scripted-panel";
import type { PageOptions } from "./webview-page";
import { writableWorkspaceFolder, workspaceRoot } from "./workspace-files";

/** Where saved graphs live, relative to the workspace folder. */
export const GRAPHS_FOLDER = path.join(".loupe", "graphs");

/** Graph files are read from an editor's document; past this they are refused unread (a traced graph is a few MB). */
const MAX_GRAPH_CHARS = 256 * 2 ** 20;

interface Shown {
  readonly graph: PanelGraph;
  /**
   * The file's JSON as read: saved back with new qParams, every other field kept. A fresh trace's is
   * made from the packed graph the worker sent when first saved or exported.
   */
  raw: Record<string, unknown> | (() => Record<string, unknown>);
  /** The graph's file, once it has one. */
  file?: vscode.Uri;
  /** The prompt's document and each token's range in it, when known. */
  prompt?: { readonly uri: vscode.Uri; readonly ranges: readonly ([number, number] | null)[] };
  check?: CheckOutcome;
  feature?: CircuitPanelState["feature"];
  /** Where Neuronpedia hosts the graph's transcoders (by the set's hub repository or the graph's scan). */
  readonly neuronpedia?: NeuronpediaTranscoders;
}

/**
 * The circuit panel: an attribution graph beside the prompt it explains (after Loupe: Trace
 * Circuit…), or a saved `.loupe/graphs/*.json` opened as a custom editor. The page draws and
 * prunes; this side reveals tokens in the editor, runs Check (the core's validation
 * interventions, `loupe intervene`'s numbers) and saves graphs with their pins and supernodes.
 */
export class CircuitPanel extends ScriptedPanel<CircuitPanelState, CircuitPanelRequest> {
  private shown: Shown | undefined;
  private error: string | undefined;
  private notice: string | undefined;
  /** A trace in progress, or why the last one gave no graph. */
  private status: string | undefined;
  private graphKey = 0;
  /** The graph last posted to the page, by key: updates for it leave the graph out. */
  private sentGraphKey: string | undefined;
  /** The hops of the trace on show (none for a graph read from a file). */
  private timeline: TimelineMark[] | undefined;

  constructor(
    context: vscode.ExtensionContext,
    private readonly models: ModelHost,
  ) {
    super(context, { viewType: "loupe.circuit", script: "circuit", keepHiddenPage: true });
  }

  /**
   * A trace of `document` has started: the panel opens (or says so) now, so a new page loads while
   * the worker traces rather than after it.
   */
  showTracing(document: vscode.Uri): void {
    this.status = traceStatus({ kind: "tracing", prompt: vscode.workspace.asRelativePath(document) }, !!this.shown);
    this.showBeside(document);
  }

  /** The trace gave no graph (`error`: why; a cancellation): the panel says so instead of "Tracing…". */
  traceEnded(error: unknown): void {
    const reason = describeError(error);
    this.status = traceStatus(reason === undefined ? { kind: "cancelled" } : { kind: "failed", reason }, !!this.shown);
    this.show();
  }

  /** A fresh trace of `document`'s text from `startOffset`. */
  showTrace(trace: CircuitTrace, graph: PackedGraphFile, document: vscode.Uri, startOffset: number, timeline?: TimelineMark[]): void {
    this.setGraph(readPackedGraph(graph, "the traced graph"), () => unpackGraphFile(graph) as unknown as Record<string, unknown>);
    mark(timeline, "extension: panel graph read");
    this.timeline = timeline;
    if (this.shown) this.shown.prompt = { uri: document, ranges: trace.tokens.map((t) => (t.end > t.start ? [startOffset + t.start, startOffset + t.end] : null)) };
    mark(timeline, "extension: showing the panel");
    this.showBeside(document);
  }

  /**
   * Beside the prompt's own editor, not the active group's: when the walkthrough or another panel
   * has focus, "beside the active group" is the prompt's group, and the graph would cover it.
   */
  private showBeside(document: vscode.Uri): void {
    this.show(columnOf(document));
  }

  /** A graph file's document in the webview panel VS Code made for it; re-read when the document changes. */
  openDocument(panel: vscode.WebviewPanel, document: vscode.TextDocument): void {
    this.read(document);
    this.adopt(panel, this.currentState());
  }

  /** The document changed (edited, or rewritten on disk): show what it holds now. */
  reload(document: vscode.TextDocument): void {
    this.read(document);
    this.show();
  }

  private read(document: vscode.TextDocument): void {
    const name = vscode.workspace.asRelativePath(document.uri);
    this.error = undefined;
    try {
      const text = document.getText();
      if (text.length > MAX_GRAPH_CHARS) throw new GraphFileError(`${name} is ${(text.length / 2 ** 20).toFixed(0)} MB, over the panel's ${MAX_GRAPH_CHARS / 2 ** 20} MB limit: prune it harder (loupe trace --node-threshold 0.6) and write it again.`);
      const graph = parseGraphFile(text, name);
      this.setGraph(graph, JSON.parse(text) as Record<string, unknown>);
      if (this.shown) this.shown.file = document.uri;
    } catch (error) {
      if (!(error instanceof GraphFileError)) throw error;
      // Nothing is written back: the file stays as it is until the user fixes it.
      this.shown = undefined;
      this.error = error.message;
    }
  }

  private setGraph(graph: PanelGraph, raw: Shown["raw"]): void {
    // A foreign file's scan may be anything (circuit-tracer writes a list's hash for custom sets).
    const scan: unknown = graph.metadata.scan;
    const neuronpedia = neuronpediaTranscodersOf(infoText(graph, "transcoders"), typeof scan === "string" ? scan : undefined);
    this.shown = { graph, raw, ...(neuronpedia ? { neuronpedia } : {}) };
    this.graphKey++;
    this.timeline = undefined;
    this.status = undefined;
    const loaded = this.models.current;
    this.notice = loaded ? checkRefusal(graph, path.basename(loaded.folder)) : undefined;
  }

  private currentState(): CircuitPanelState {
    const shown = this.shown;
    const title = shown ? `Circuit: ${shown.file ? path.basename(shown.file.fsPath) : targetTitle(shown.graph)}` : "Circuit graph";
    return {
      title,
      graphKey: String(this.graphKey),
      graph: shown?.graph ?? null,
      ...(this.error ? { error: this.error } : {}),
      ...(this.notice ? { notice: this.notice } : {}),
      ...(this.status ? { status: this.status } : {}),
      canCheck: !!shown && !this.notice,
      ...(shown?.file ? { file: vscode.workspace.asRelativePath(shown.file) } : {}),
      ...(shown?.check ? { check: shown.check } : {}),
      ...(shown?.feature ? { feature: shown.feature } : {}),
      ...(shown?.neuronpedia ? { neuronpedia: shown.neuronpedia } : {}),
    };
  }

  /** `promptColumn`: the traced prompt's column, where a fresh trace is shown beside it (ScriptedPanel.present). */
  private show(promptColumn?: vscode.ViewColumn): void {
    const state = this.currentState();
    this.present(state, state.title, promptColumn);
  }

  protected page(): PageOptions {
    return CIRCUIT_PAGE;
  }

  protected override update(state: CircuitPanelState): PostedCircuitState {
    const update = stateUpdate(state, this.sentGraphKey);
    this.sentGraphKey = state.graphKey;
    return postedState(this.posting(update, "extension: state posted to the open page"));
  }

  protected override whole(state: CircuitPanelState): PostedCircuitState {
    this.sentGraphKey = state.graphKey;
    return postedState(this.posting(state, "extension: page ready, state posted"));
  }

  /**
   * Stamp a post of the traced graph on its timeline. Every post with the graph carries it: a page
   * hidden when the first went out is created again and asks for the state with "ready".
   */
  private posting(state: CircuitPanelState, hop: string): CircuitPanelState {
    const timeline = this.timeline;
    if (!timeline || !state.graph) return state;
    mark(timeline, hop);
    return { ...state, timeline: [...timeline] };
  }

  protected parse(message: unknown): CircuitPanelRequest | null {
    return parseCircuitPanelRequest(message, this.shown?.graph ?? null);
  }

  protected async handle(request: Exclude<CircuitPanelRequest, ReadyRequest>): Promise<void> {
    const shown = this.shown;
    if (!shown) return;
    switch (request.type) {
      case "reveal":
        return this.reveal(shown, request.pos);
      case "feature": {
        // Only for the loaded model's own graph: another model's transcoders would answer wrongly.
        if (this.notice || !this.models.current) return;
        const [edit] = featureEdits(shown.graph, [request.nodeId], "zero");
        try {
          const dashboard = await this.models.request("transcoderFeature", { transcoders: transcodersOf(shown.graph), layer: edit.layer, feature: edit.feature, workspaceRoot: workspaceRoot() });
          shown.feature = circuitFeatureCard(request.nodeId, dashboard, infoText(shown.graph, "transcoders") ?? "DIR");
        } catch (error) {
          // The card would otherwise say "Loading…" forever; the error is still reported as usual.
          shown.feature = circuitFeatureCardFailed(request.nodeId, edit.layer, edit.feature, error instanceof Error ? error.message : String(error));
          this.show();
          throw error;
        }
        return this.show();
      }
      case "check":
        return this.check(shown, request.nodeIds, request.kind, request.factor);
      case "save":
        return this.save(shown, request.qParams);
      case "export": {
        const target = await vscode.window.showSaveDialog({ filters: { "Graph JSON": ["json"] }, saveLabel: "Export graph for Neuronpedia / circuit-tracer", defaultUri: vscode.Uri.file(`${shown.graph.metadata.slug || "circuit"}.json`) });
        if (target) writeFileSafely(target.fsPath, graphJson(shown, request.qParams));
        return;
      }
    }
  }

  /** Select the token's text in the prompt's document: the traced one, else an open document holding the graph's prompt. */
  private async reveal(shown: Shown, pos: number): Promise<void> {
    shown.prompt ??= this.findPrompt(shown);
    const range = shown.prompt?.ranges[pos];
    if (!shown.prompt || !range) {
      void vscode.window.showInformationMessage(shown.prompt ? "Loupe: this token is not in the file's text (a BOS, or a token the chat template added)." : "Loupe: open the file that holds this graph's prompt to see its tokens there.");
      return;
    }
    const document = await vscode.workspace.openTextDocument(shown.prompt.uri);
    const selection = new vscode.Selection(document.positionAt(range[0]), document.positionAt(range[1]));
    const editor = await vscode.window.showTextDocument(document, { viewColumn: columnOf(document.uri) ?? vscode.ViewColumn.One, preserveFocus: false });
    editor.selection = selection;
    editor.revealRange(selection, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
  }

  private findPrompt(shown: Shown): Shown["prompt"] {
    const prompt = shown.graph.metadata.prompt;
    const offsets = promptTokenOffsets(shown.graph);
    if (!prompt || !offsets) return undefined;
    const documents = [...vscode.window.visibleTextEditors.map((e) => e.document), ...vscode.workspace.textDocuments];
    const document = documents.find((d) => d.uri.toString() !== shown.file?.toString() && d.getText().includes(prompt));
    if (!document) return undefined;
    const start = document.getText().indexOf(prompt);
    return { uri: document.uri, ranges: offsets.map(([a, b]) => (b > a ? [start + a, start + b] : null)) };
  }

  private async check(shown: Shown, nodeIds: readonly string[], kind: "zero" | "scale", factor?: number): Promise<void> {
    const loaded = await this.models.ensureChosenLoaded();
    this.notice = checkRefusal(shown.graph, path.basename(loaded.folder));
    if (this.notice) return this.show();
    const text = (key: string) => infoText(shown.graph, key);
    const edits = featureEdits(shown.graph, nodeIds, kind, factor);
    const result = await this.models.run(
      "interveneCircuit",
      { text: shown.graph.metadata.prompt, transcoders: transcodersOf(shown.graph), answer: text("answer"), contrast: text("contrast"), edits },
      { title: "Loupe: checking the circuit…" },
    );
    shown.check = { ...result, nodeIds, kind, ...(factor !== undefined ? { factor } : {}), command: interveneArguments(edits) };
    this.show();
  }

  /** Write the graph to its file under .loupe/graphs, or (a fresh trace) to a new one named by the user. */
  private async save(shown: Shown, qParams: QParams): Promise<void> {
    const root = writableWorkspaceFolder("save circuit graphs");
    if (!root) return;
    const folder = path.join(root, GRAPHS_FOLDER);
    let file = shown.file?.fsPath;
    if (!file || path.dirname(file) !== folder) {
      const name = await vscode.window.showInputBox({
        title: "Loupe: save the graph as",
        prompt: `A name for ${path.join(GRAPHS_FOLDER, "NAME.json")}`,
        value: suggestedName(shown.graph),
        validateInput: (v) => (/^[\w.-]{1,100}$/.test(v.trim()) && !v.trim().startsWith(".") ? undefined : "Letters, digits, '.', '-' and '_' only."),
      });
      if (!name) return;
      file = path.join(folder, `${name.trim().replace(/\.json$/, "")}.json`);
    }
    writeFileSafely(file, graphJson(shown, qParams), { root });
    shown.file = vscode.Uri.file(file);
    rawOf(shown).qParams = qParams;
    void vscode.window.showInformationMessage(`Loupe: graph saved to ${vscode.workspace.asRelativePath(file)} (${qParams.pinnedIds.length} pinned, ${qParams.supernodes.length} supernodes).`);
  }
}

function infoText(graph: PanelGraph, key: string): string | undefined {
  const value = graph.metadata.info?.[key];
  return typeof value === "string" ? value : undefined;
}

/** A graph file names its transcoders by path: followed only in a trusted workspace, else the model's own set. */
function transcodersOf(graph: PanelGraph): string | undefined {
  return vscode.workspace.isTrusted ? infoText(graph, "transcoders") : undefined;
}

function rawOf(shown: Shown): Record<string, unknown> {
  if (typeof shown.raw === "function") shown.raw = shown.raw();
  return shown.raw;
}

function graphJson(shown: Shown, qParams: QParams): string {
  return JSON.stringify({ ...rawOf(shown), qParams });
}

function targetTitle(graph: PanelGraph): string {
  const target = graph.nodes.find((n) => n.isTarget);
  return target ? target.label : graph.metadata.slug;
}

function suggestedName(graph: PanelGraph): string {
  const words = (graph.metadata.prompt ?? "").split(/\W+/).filter(Boolean).slice(-4).join("-");
  return (words || "circuit").toLowerCase().slice(0, 60);
}

/**
 * Opening a `.loupe/graphs/*.json` file (Explorer, Quick Open, `vscode.open`) opens it in the
 * circuit panel: one panel per editor, following the document as it changes.
 */
export class CircuitGraphEditorProvider implements vscode.CustomTextEditorProvider {
  static readonly viewType = "loupe.circuitGraph";

  constructor(
    private readonly context: vscode.ExtensionContext,
    private readonly models: ModelHost,
  ) {}

  resolveCustomTextEditor(document: vscode.TextDocument, webviewPanel: vscode.WebviewPanel): void {
    const panel = new CircuitPanel(this.context, this.models);
    panel.openDocument(webviewPanel, document);
    const changes = vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document.uri.toString() === document.uri.toString() && e.contentChanges.length > 0) panel.reload(e.document);
    });
    webviewPanel.onDidDispose(() => changes.dispose());
  }
}

export const CIRCUIT_PAGE: PageOptions = {
  css: `
body { padding: 0 .8em 1em; }
[hidden] { display: none !important; }
.toolbar { display: flex; flex-wrap: wrap; gap: .6em 1.2em; align-items: center; margin: .4em 0; }
.slider { display: inline-flex; gap: .4em; align-items: center; }
.layout { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
canvas.graph { flex: 3 1 420px; min-width: 0; height: 72vh; border: 1px solid var(--vscode-panel-border); }
canvas.graph:focus { outline: 1px solid var(--vscode-focusBorder); }
.side { flex: 1 1 16em; max-width: 30em; }
.side h2 { font-size: 1.05em; margin: .6em 0 .3em; } .side h3 { font-size: .95em; margin: .6em 0 .2em; }
.muted, .summary, .trace-status { color: var(--vscode-descriptionForeground); }
.notice { padding: .4em .6em; border-left: 3px solid var(--vscode-editorWarning-foreground); background: var(--vscode-textBlockQuote-background); }
.positive { color: var(--vscode-charts-blue); } .negative { color: var(--vscode-charts-red); }
.actions { display: flex; flex-wrap: wrap; gap: .4em; align-items: center; margin: .4em 0; }
ol.links, ul.pins { padding-left: 1.4em; margin: .2em 0; }
td.number { text-align: right; font-family: var(--vscode-editor-font-family); padding-left: 1em; }
.command { font-family: var(--vscode-editor-font-family); font-size: .9em; color: var(--vscode-descriptionForeground); word-break: break-all; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
${FEATURE_CARD_CSS}`,
};

/** The column of a visible editor showing `uri`, if one does. */
function columnOf(uri: vscode.Uri): vscode.ViewColumn | undefined {
  return vscode.window.visibleTextEditors.find((e) => e.document.uri.toString() === uri.toString())?.viewColumn;
}

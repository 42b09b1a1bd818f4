/**
 * What every scripted panel shares: one webview (created on first show, revealed after), the page
 * (webview-page.ts) with the panel's script and CSS, the ready handshake, posting state, checking
 * each message before acting on it, and reporting errors. A panel supplies its state, its message
 * parser and what each request does.
 */
import * as vscode from "vscode";
import { stateMessage, type ReadyRequest } from "../core/view/panel-protocol";
import { reportErrors } from "./errors";
import { scriptedPage, type PageOptions } from "./webview-page";

export interface PanelSpec {
  /** The webview's view type, e.g. "loupe.probe". */
  readonly viewType: string;
  /** The panel's bundle in dist/webview, e.g. "probe" (webview/probe/main.ts). */
  readonly script: string;
  /**
   * Keep the page while its tab is hidden. For a page that holds what the extension does not (the
   * circuit panel's pins, supernodes and view) and is slow to rebuild; the others are rebuilt from state.
   */
  readonly keepHiddenPage?: boolean;
}

export abstract class ScriptedPanel<State, Request extends { readonly type: string }> implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  protected state: State | undefined;

  constructor(
    protected readonly context: vscode.ExtensionContext,
    private readonly spec: PanelSpec,
  ) {}

  /** A well-formed request about the state on show, or null (malformed or stale: ignored). */
  protected abstract parse(message: unknown, state: State): Request | ReadyRequest | null;

  /** Do what the page asked. Errors are shown like every Loupe error. */
  protected abstract handle(request: Exclude<Request, ReadyRequest>, state: State): Promise<void>;

  /** The page's CSS and start-up data for this state. */
  protected abstract page(state: State): PageOptions;

  /**
   * What an open page is posted to bring it to `state`: the state itself, unless a panel knows the
   * page still holds part of it. A page that loads afresh asks with "ready" and gets the whole state.
   */
  protected update(state: State): unknown {
    return state;
  }

  /** What a page that loaded afresh (and said "ready") is posted: the whole state. */
  protected whole(state: State): unknown {
    return state;
  }

  /** The user closed the panel. */
  protected onClosed(): void {}

  /**
   * Show a state: open the panel (its page asks for the state once loaded) or post it to the open one.
   * `besideColumn`: the column of the editor the state belongs to. A new panel opens just right of it
   * (beside the active group when not given), and an open panel that sits in that very column moves
   * there, so the panel never covers its editor; otherwise an open panel stays where it is.
   */
  protected present(state: State, title: string, besideColumn?: vscode.ViewColumn): void {
    this.state = state;
    const besideIt = besideColumn === undefined ? undefined : besideColumn + 1;
    if (!this.panel) {
      const panel = vscode.window.createWebviewPanel(this.spec.viewType, title, besideIt ?? vscode.ViewColumn.Beside, { enableScripts: true, localResourceRoots: [this.scripts()], retainContextWhenHidden: this.spec.keepHiddenPage ?? false });
      this.setUp(panel, state);
    } else {
      this.panel.title = title;
      void this.panel.webview.postMessage(stateMessage(this.update(state)));
    }
    const current = this.panel?.viewColumn;
    this.panel?.reveal(current !== undefined && current === besideColumn ? besideIt : undefined, true);
  }

  /** Show a state in a webview panel the editor made (a custom editor's), instead of creating one. */
  protected adopt(panel: vscode.WebviewPanel, state: State): void {
    this.state = state;
    panel.webview.options = { enableScripts: true, localResourceRoots: [this.scripts()] };
    this.setUp(panel, state);
  }

  private scripts(): vscode.Uri {
    return vscode.Uri.joinPath(this.context.extensionUri, "dist", "webview");
  }

  private setUp(panel: vscode.WebviewPanel, state: State): void {
    this.panel = panel;
    panel.onDidDispose(() => {
      this.panel = undefined;
      this.onClosed();
    });
    panel.webview.onDidReceiveMessage((message: unknown) => void this.receive(message));
    panel.webview.html = this.html(panel.webview, vscode.Uri.joinPath(this.scripts(), `${this.spec.script}.js`), state);
  }

  private async receive(message: unknown): Promise<void> {
    const state = this.state;
    const panel = this.panel;
    if (state === undefined || !panel) return;
    const request = this.parse(message, state);
    if (!request) return;
    await reportErrors(async () => {
      if (request.type === "ready") await panel.webview.postMessage(stateMessage(this.whole(state)));
      else await this.handle(request as Exclude<Request, ReadyRequest>, state);
    });
  }

  private html(webview: vscode.Webview, script: vscode.Uri, state: State): string {
    return scriptedPage(webview, script, this.page(state));
  }

  dispose(): void {
    this.panel?.dispose();
  }
}

/**
 * The Loupe view in the activity bar: gathers the state (model, dictionaries, workspace files, last
 * results) and shows src/core/view/loupe-tree's nodes as tree items. Every action is also a command.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { buildLoupeTree, RecentRuns, type DictionaryState, type LoupeViewState, type TreeNode, type WorkspaceFile } from "../core/view/loupe-tree";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { chosenSaeFolder } from "./sae-workspace";
import { readSettings, restrictedSetting, transcoderSetting } from "./settings";

export const GRAPHS_GLOB = ".loupe/graphs/*.json";
const PROBES_GLOB = ".loupe/probes/*.json";

export class LoupeView implements vscode.TreeDataProvider<TreeNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly recent = new RecentRuns();
  private readonly disposables: vscode.Disposable[] = [this.changed];

  constructor(private readonly models: ModelHost) {
    const refresh = () => this.refresh();
    const watcher = vscode.workspace.createFileSystemWatcher(".loupe/{graphs,probes}/*.json");
    this.disposables.push(
      watcher,
      watcher.onDidCreate(refresh),
      watcher.onDidDelete(refresh),
      models.onDidChangeModel(refresh),
      models.onDidRun((run) => {
        this.recent.record(run);
        this.refresh();
      }),
      vscode.workspace.onDidChangeConfiguration((e) => e.affectsConfiguration("loupe") && this.refresh()),
      vscode.workspace.onDidGrantWorkspaceTrust(refresh),
    );
  }

  refresh(): void {
    this.changed.fire();
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const state = node.children ? (node.expanded ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.Collapsed) : vscode.TreeItemCollapsibleState.None;
    const item = new vscode.TreeItem(node.label, state);
    item.id = node.id;
    item.description = node.description;
    item.tooltip = node.tooltip;
    item.contextValue = node.contextValue;
    if (node.icon) item.iconPath = new vscode.ThemeIcon(node.icon);
    const action = node.action;
    if (action && "command" in action) item.command = { command: action.command, title: action.title };
    else if (action && "openFile" in action) item.command = { command: "vscode.open", title: action.title, arguments: [vscode.Uri.file(action.openFile)] };
    else if (action) item.command = { command: "vscode.open", title: action.title, arguments: [vscode.Uri.parse(action.openUri)] };
    return item;
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    return node ? [...(node.children ?? [])] : buildLoupeTree(await this.state());
  }

  private async state(): Promise<LoupeViewState> {
    const { folder, source } = this.models.modelChoice(readSettings().modelPath);
    const current = this.models.current;
    const noWorkspace = !vscode.workspace.workspaceFolders?.length;
    const [graphs, probes] = noWorkspace ? [[], []] : await Promise.all([workspaceFiles(GRAPHS_GLOB), workspaceFiles(PROBES_GLOB)]);
    return {
      model: { folder, source, loaded: current?.folder === folder ? current : undefined },
      sae: saeState(folder),
      transcoders: transcoderState(folder),
      graphs,
      probes,
      recent: this.recent.list(),
      noWorkspace,
    };
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

export async function workspaceFiles(glob: string): Promise<WorkspaceFile[]> {
  const uris = await vscode.workspace.findFiles(glob, undefined, 500);
  return uris.map((uri) => ({ relative: vscode.workspace.asRelativePath(uri), absolute: uri.fsPath }));
}

function saeState(modelFolder: string): DictionaryState {
  const fromSetting = vscode.workspace.isTrusted && restrictedSetting("loupe", "saePath", "") !== "";
  try {
    const folder = chosenSaeFolder(modelFolder);
    return folder ? { folder, fromSetting } : { fromSetting, problem: "none: set loupe.saePath" };
  } catch (error) {
    return { fromSetting, problem: describeError(error) ?? String(error) };
  }
}

function transcoderState(modelFolder: string): DictionaryState {
  const setting = transcoderSetting();
  if (setting) return { folder: setting, fromSetting: true, problem: fs.existsSync(setting) ? undefined : "this folder does not exist" };
  const shipped = path.join(modelFolder, "transcoders", "plt");
  return fs.existsSync(shipped) ? { folder: shipped, fromSetting: false } : { fromSetting: false, problem: "none: set loupe.transcoderPath" };
}

/** Loupe: Open Saved Graph…: the palette's way to what the view lists under "Saved graphs". */
export async function openSavedGraph(): Promise<void> {
  const graphs = await workspaceFiles(GRAPHS_GLOB);
  if (graphs.length === 0) {
    void vscode.window.showInformationMessage("Loupe: no saved graphs in this workspace's .loupe/graphs/.");
    return;
  }
  const picked = await vscode.window.showQuickPick(
    graphs.map((g) => ({ label: path.basename(g.relative, ".json"), description: g.relative, file: g.absolute })),
    { title: "Loupe: open which saved graph?" },
  );
  if (picked) await vscode.commands.executeCommand("vscode.open", vscode.Uri.file(picked.file));
}

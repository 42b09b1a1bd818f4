import * as vscode from "vscode";
import { isInside, type SafeFileOptions } from "../core/safe-fs";

/**
 * The workspace folder Loupe may write its files in (.loupe/), or undefined after telling the user
 * why not: no folder is open, or the workspace is in Restricted Mode (an untrusted repository
 * gets nothing written into it). `what` completes "Loupe: … " in the message.
 */
export function writableWorkspaceFolder(what: string): string | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder) {
    void vscode.window.showWarningMessage(`Loupe: open a folder to ${what} in its .loupe folder.`);
    return undefined;
  }
  if (!vscode.workspace.isTrusted) {
    void vscode.window.showWarningMessage(`Loupe: this workspace is in Restricted Mode, so Loupe writes nothing into it. Trust the folder (Manage Workspace Trust) to ${what}.`);
    return undefined;
  }
  return folder.uri.fsPath;
}

/** The first workspace folder's path, for reads confined to it. */
export function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

/** Read options for a file the user picked: confined to the workspace (no links) when it lies in it. */
export function confinedIfInWorkspace(file: string): SafeFileOptions {
  const root = workspaceRoot();
  return root !== undefined && isInside(root, file) ? { root } : {};
}

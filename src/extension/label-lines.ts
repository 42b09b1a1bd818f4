import * as path from "node:path";
import * as vscode from "vscode";
import { appendToDataset, labelLines } from "../core/probes";
import { describeError } from "./errors";
import { writableWorkspaceFolder } from "./workspace-files";

/**
 * Loupe: Label Lines for a Probe…: give the selected lines one label and append them to a JSONL
 * dataset under .loupe/datasets/ ({"text", "label"} per line), ready for Train Probe.
 */
export async function labelSelectedLines(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!editor || !folder) {
    void vscode.window.showInformationMessage("Loupe: open a folder and a document, select the lines to label, then run this again.");
    return;
  }
  const lines = new Set<number>();
  for (const s of editor.selections) for (let l = s.start.line; l <= (s.end.character === 0 && s.end.line > s.start.line ? s.end.line - 1 : s.end.line); l++) lines.add(l);
  const label = await vscode.window.showInputBox({ title: `Loupe: label for ${lines.size} line(s)`, prompt: "e.g. positive, negative, refusal", validateInput: (v) => (v.trim() === "" ? "A label cannot be empty." : undefined) });
  if (!label) return;
  const datasets = vscode.Uri.joinPath(folder.uri, ".loupe", "datasets");
  const existing = await vscode.workspace.fs.readDirectory(datasets).then(
    (entries) => entries.filter(([name]) => name.endsWith(".jsonl")).map(([name]) => name),
    () => [] as string[],
  );
  const picked = await vscode.window.showQuickPick([...existing, "$(add) New dataset…"], { title: "Loupe: add to which dataset?" });
  if (!picked) return;
  let name = picked;
  if (picked.startsWith("$(add)")) {
    const typed = await vscode.window.showInputBox({ title: "Loupe: dataset name", value: "labels", validateInput: (v) => (/^[\w.-]+$/.test(v) ? undefined : "Letters, digits, '.', '-' and '_' only.") });
    if (!typed) return;
    name = typed.endsWith(".jsonl") ? typed : `${typed}.jsonl`;
  }
  const examples = labelLines(editor.document.getText(), new Map([...lines].map((l) => [l, label.trim()])));
  if (examples.length === 0) {
    void vscode.window.showWarningMessage("Loupe: the selected lines are empty; nothing was added.");
    return;
  }
  const root = writableWorkspaceFolder("keep probe datasets");
  if (!root) return;
  try {
    appendToDataset(vscode.Uri.joinPath(datasets, name).fsPath, examples, { root });
  } catch (error) {
    void vscode.window.showErrorMessage(describeError(error) ?? String(error));
    return;
  }
  void vscode.window.showInformationMessage(`Loupe: ${examples.length} line(s) labelled "${label.trim()}" in ${path.posix.join(".loupe", "datasets", name)}.`);
}

/**
 * Distribution and first run: the Loupe output channel, the activity-bar view, and the commands the
 * walkthrough's steps run (package.json contributes.walkthroughs; media/walkthrough/).
 */
import * as fs from "node:fs";
import * as vscode from "vscode";
import type { ModelHost } from "./model-host";
import { LoupeView, openSavedGraph } from "./loupe-view";

/** The walkthrough's sample prompts (media/walkthrough/samples/<name>.txt), each suited to its steps. */
const SAMPLES = {
  story: "a short story: surprisal, features, audit",
  cot: "a chain of thought that ends in an answer",
  ioi: "an indirect-object sentence: the next token is a name",
} as const;
type SampleName = keyof typeof SAMPLES;

export function activateFirstRun(context: vscode.ExtensionContext, models: ModelHost, log: vscode.LogOutputChannel): void {
  const view = new LoupeView(models);
  context.subscriptions.push(
    log,
    view,
    vscode.window.createTreeView("loupe.view", { treeDataProvider: view, showCollapseAll: true }),
    vscode.commands.registerCommand("loupe.showLog", () => log.show()),
    vscode.commands.registerCommand("loupe.refreshView", () => view.refresh()),
    vscode.commands.registerCommand("loupe.openSavedGraph", () => openSavedGraph()),
    vscode.commands.registerCommand("loupe.openSample", (name?: unknown) => openSample(context, name)),
  );
}

/** Loupe: Open Sample Prompt…: a sample in a new untitled editor (nothing is written to disk). */
async function openSample(context: vscode.ExtensionContext, name: unknown): Promise<void> {
  let sample = typeof name === "string" && name in SAMPLES ? (name as SampleName) : undefined;
  if (!sample) {
    const picked = await vscode.window.showQuickPick(
      Object.entries(SAMPLES).map(([label, description]) => ({ label, description })),
      { title: "Loupe: open which sample prompt?" },
    );
    if (!picked) return;
    sample = picked.label as SampleName;
  }
  const text = fs.readFileSync(context.asAbsolutePath(`media/walkthrough/samples/${sample}.txt`), "utf8");
  const document = await vscode.workspace.openTextDocument({ content: text.replace(/\n$/, ""), language: "plaintext" });
  // Beside the walkthrough (or any other non-text editor), so the walkthrough's next button finds the
  // sample as the one text editor in view.
  const besideOther = !vscode.window.activeTextEditor && vscode.window.tabGroups.activeTabGroup.activeTab !== undefined;
  await vscode.window.showTextDocument(document, { viewColumn: besideOther ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active });
}

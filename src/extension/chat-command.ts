/**
 * Loupe: Inspect Chat: the chat in the active editor (a JSON array or JSONL of {role, content}
 * messages) rendered with the current model's chat template into a new editor, then inspected
 * there, so every token the model reads (role markers and separators included) gets its colour.
 */
import * as vscode from "vscode";
import { parseChat } from "../core/chat/messages";
import { readChatTemplate, renderChat } from "../core/chat/template";
import { resolveModelFolder } from "../core/hub/model-reference";
import { describeError } from "./errors";
import type { ModelHost } from "./model-host";
import { readSettings } from "./settings";

export async function inspectChat(models: ModelHost): Promise<void> {
  const document = vscode.window.activeTextEditor?.document;
  if (!document) {
    void vscode.window.showInformationMessage("Loupe: open a chat file (JSON or JSONL of {\"role\", \"content\"} messages) first.");
    return;
  }
  let text: string;
  try {
    const reference = models.chosenFolder(readSettings().modelPath);
    const messages = parseChat(document.getText(), document.fileName || document.uri.toString());
    text = renderChat(readChatTemplate(resolveModelFolder(reference)), messages).text;
  } catch (error) {
    void vscode.window.showErrorMessage(describeError(error) ?? String(error));
    return;
  }
  await vscode.window.showTextDocument(await vscode.workspace.openTextDocument({ content: text, language: "plaintext" }));
  await vscode.commands.executeCommand("loupe.inspectSelection");
}

/**
 * A command's text when it is a chat: the editor's commands (Inspect Chat, and Show SAE Features,
 * Attribute the Answer, Check CoT Faithfulness and Trace Circuit on a chat file) render a JSON or
 * JSONL file of {role, content} messages (or a selection of one) with the model's chat template, run
 * on what the model reads, and draw the results back on the messages' text in the file.
 */
import * as path from "node:path";
import * as vscode from "vscode";
import { ChatLayout, chatTemplateIfAny, type ChatEnding } from "../core/chat/chat-layout";
import { fileView, type ChatView } from "../core/chat/chat-results";
import { templateTokenSummary } from "../core/chat/inspect-chat";
import { parseChat, type ChatMessage } from "../core/chat/messages";
import { readChatTemplate } from "../core/chat/template";
import { LoupeError } from "../core/errors";
import { resolveModelFolder } from "../core/hub/model-reference";
import type { LoadedModel } from "./model-host";
import type { SelectionTarget } from "./selection-command";

/** The name chat parsing goes by (its extension says JSON or JSONL), or undefined for a document that is neither. */
function chatFileName(document: vscode.TextDocument): string | undefined {
  const name = document.fileName || document.uri.toString();
  if (/\.jsonl?$/i.test(name)) return name;
  // An untitled JSON or JSON Lines document.
  if (document.languageId === "json" || document.languageId === "jsonl") return `${name}.${document.languageId}`;
  return undefined;
}

/** The target as a chat, rendered with the model's chat template (which must exist): what Inspect Chat runs on. */
export function chatTarget(target: SelectionTarget, model: LoadedModel, ending: (messages: readonly ChatMessage[]) => ChatEnding): ChatLayout {
  const name = chatFileName(target.document) ?? target.document.fileName;
  const messages = parseChat(target.text, name);
  return ChatLayout.render(readChatTemplate(resolveModelFolder(model.folder)), messages, ending(messages), { text: target.text, name });
}

/**
 * The target as a chat when it is one: a JSON or JSONL document of {role, content} messages, read
 * with the model's chat template. Undefined for any other text; and, after saying why, for JSON
 * with "role" keys that is no chat, or a model without a chat template: the command then reads the
 * text as written.
 */
export function chatTargetIfChat(target: SelectionTarget, model: LoadedModel, ending: (messages: readonly ChatMessage[]) => ChatEnding): ChatLayout | undefined {
  const name = chatFileName(target.document);
  if (!name || !/"role"\s*:/.test(target.text)) return undefined;
  const asText = (why: string) => void vscode.window.showInformationMessage(`Loupe: ${path.basename(name)} is read as plain text, not as a chat: ${why}`);
  let messages: ChatMessage[];
  try {
    messages = parseChat(target.text, name);
  } catch (error) {
    if (!(error instanceof LoupeError)) throw error;
    asText(error.message);
    return undefined;
  }
  const template = chatTemplateIfAny(resolveModelFolder(model.folder));
  if (!template) {
    asText(`${path.basename(model.folder)} has no chat template. Select Model… an instruct model to read it as a chat.`);
    return undefined;
  }
  return ChatLayout.render(template, messages, ending(messages), { text: target.text, name });
}

/** Say what a command read through the template: how many messages, and the template's tokens, which have no place in the file. */
export function announceChat(chat: ChatLayout, tokens: readonly { readonly text: string; readonly start: number; readonly end: number }[], what: string): void {
  const templateTokens = tokens.filter((t) => !chat.inFile(t));
  void vscode.window.showInformationMessage(`Loupe: ${chat.messages.length} messages ${what}, ${tokens.length - templateTokens.length} tokens drawn on their text. ${templateTokenSummary(templateTokens)}`);
}

/** A result of the rendered chat moved onto the chat file by `place`; without a chat, as it is. */
export function onChatFile<R>(chat: ChatLayout | undefined, result: R, place: (result: R, view: ChatView) => R): R {
  return chat ? place(result, fileView(chat)) : result;
}

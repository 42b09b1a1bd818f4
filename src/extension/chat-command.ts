/**
 * Loupe: Inspect Chat: the chat in the active editor (a JSON array or JSONL of {role, content}
 * messages, or a selection of one) rendered with the current model's chat template, inspected,
 * and drawn back onto the chat file: each token on the characters of the message it came from
 * (through JSON escapes), with the usual hovers. The template's own tokens (role markers,
 * separators, special tokens) are not in the file; a message says what they were.
 */
import * as vscode from "vscode";
import type { ChatLayout } from "../core/chat/chat-layout";
import { chatFileInspection } from "../core/chat/inspect-chat";
import { announceChat, chatTarget } from "./chat-target";
import type { InspectController } from "./inspect-controller";
import type { ModelHost } from "./model-host";
import { runOnSelection, type SelectionTarget } from "./selection-command";
import { readSettings } from "./settings";

export function inspectChat(models: ModelHost, inspector: InspectController): Promise<void> {
  return runOnSelection(models, {
    noEditor: 'Loupe: open a chat file (JSON or JSONL of {"role", "content"} messages) first.',
    blank: 'Loupe: this chat file is empty. Give {"role", "content"} messages, one a line (JSONL) or in a JSON array.',
    run: (target, _asked, model) => inspectRenderedChat(models, inspector, target, chatTarget(target, model, () => "as-written")),
  });
}

/** Inspect what the model reads of the chat, and draw it on the chat's file (Inspect Chat, and Inspect Selection on a chat file). */
export async function inspectRenderedChat(models: ModelHost, inspector: InspectController, target: SelectionTarget, chat: ChatLayout): Promise<void> {
  const { document, range, text, startOffset, version } = target;
  const inspected = await models.run(
    "inspect",
    { text: chat.text, topK: 5, maxTokens: readSettings().maxTokens, lensLayers: inspector.lensLayers() },
    { title: "Loupe: inspecting the chat…", location: vscode.ProgressLocation.Window },
  );
  const { result } = chatFileInspection(inspected, chat);
  const stale = document.version !== version && document.getText(range) !== text;
  inspector.present(document, { startOffset, length: text.length, result, stale });
  announceChat(chat, inspected.tokens, "inspected");
}

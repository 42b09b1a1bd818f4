/**
 * Loupe: Inspect Chat: the chat in the active editor (a JSON array or JSONL of {role, content}
 * messages, or a selection of one) rendered with the current model's chat template, inspected,
 * and drawn back onto the chat file: each token on the characters of the message it came from
 * (through JSON escapes), with the usual hovers. The template's own tokens (role markers,
 * separators, special tokens) are not in the file; a message says what they were.
 */
import * as vscode from "vscode";
import { chatFileInspection, templateTokenSummary, traceChatTokens } from "../core/chat/inspect-chat";
import { parseChat } from "../core/chat/messages";
import { locateChatContents } from "../core/chat/source-map";
import { readChatTemplate, renderChat } from "../core/chat/template";
import { resolveModelFolder } from "../core/hub/model-reference";
import type { InspectController } from "./inspect-controller";
import type { ModelHost } from "./model-host";
import { runOnSelection } from "./selection-command";
import { readSettings } from "./settings";

export function inspectChat(models: ModelHost, inspector: InspectController): Promise<void> {
  return runOnSelection(models, {
    noEditor: 'Loupe: open a chat file (JSON or JSONL of {"role", "content"} messages) first.',
    blank: 'Loupe: this chat file is empty. Give {"role", "content"} messages, one a line (JSONL) or in a JSON array.',
    run: async ({ document, range, text, startOffset, version }, _asked, model) => {
      const file = document.fileName || document.uri.toString();
      const messages = parseChat(text, file);
      const sources = locateChatContents(text, file);
      const rendered = renderChat(readChatTemplate(resolveModelFolder(model.folder)), messages);
      const inspected = await models.run(
        "inspect",
        { text: rendered.text, topK: 5, maxTokens: readSettings().maxTokens, lensLayers: inspector.lensLayers() },
        { title: "Loupe: inspecting the chat…", location: vscode.ProgressLocation.Window },
      );
      const { result, templateTokens } = chatFileInspection(traceChatTokens(inspected, { messages, ...rendered }), sources);
      const stale = document.version !== version && document.getText(range) !== text;
      inspector.present(document, { startOffset, length: text.length, result, stale });
      void vscode.window.showInformationMessage(`Loupe: ${messages.length} messages inspected, ${result.tokens.length} tokens drawn on their text. ${templateTokenSummary(templateTokens)}`);
    },
  });
}

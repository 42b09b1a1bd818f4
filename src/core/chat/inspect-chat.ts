/** An inspection of a rendered chat, each token traced to the message it came from. */
import type { InspectResult, TokenReport } from "../inspect";
import type { ChatLayout, MessagePlace } from "./chat-layout";
import type { ChatMessage } from "./messages";

export type ChatTokenReport = TokenReport & MessagePlace;

export interface ChatInspectResult extends Omit<InspectResult, "tokens"> {
  readonly messages: readonly (ChatMessage & { readonly start: number | null; readonly end: number | null })[];
  readonly tokens: ChatTokenReport[];
}

/** The inspection with each token's message and its range there (the CLI's --json). */
export function traceChatTokens(result: InspectResult, chat: ChatLayout): ChatInspectResult {
  return { ...result, messages: chat.messagesInText(), tokens: result.tokens.map(chat.withPlace) };
}

/** A chat's inspection laid onto the chat file: what the editor draws, and the template's tokens it cannot. */
export interface ChatFileInspection {
  /** The inspection with each message token's start/end moved to its characters in the file (relative to the chat's start there); template tokens left out. */
  readonly result: InspectResult;
  /** Tokens of the template's own text (role markers, separators, special tokens): not in the file. */
  readonly templateTokens: readonly TokenReport[];
}

/**
 * Move every message token onto the chat file, through each message's content source (escapes
 * included); a token that runs past its message's text is drawn on the message part only.
 */
export function chatFileInspection(result: InspectResult, chat: ChatLayout): ChatFileInspection {
  const inFile = result.tokens.filter((t) => chat.inFile(t));
  return { result: { ...result, tokens: inFile.map(chat.onFile) }, templateTokens: result.tokens.filter((t) => !chat.inFile(t)) };
}

/** One line on the template's tokens for the editor to show: how many, and the first few as the model read them. */
export function templateTokenSummary(templateTokens: readonly { readonly text: string }[], shown = 12): string {
  if (templateTokens.length === 0) return "The chat template added no tokens of its own.";
  const texts = templateTokens.slice(0, shown).map((t) => JSON.stringify(t.text)).join(" ");
  return `${templateTokens.length} template tokens (role markers, separators, special tokens) are not in the file: ${texts}${templateTokens.length > shown ? " …" : ""}`;
}

/** An inspection of a rendered chat, each token traced to the message it came from. */
import type { InspectResult, TokenReport } from "../inspect";
import type { ChatMessage } from "./messages";
import { sourceRange, type ContentSource } from "./source-map";
import { tokenMessages, type RenderedChat } from "./template";

export interface ChatText extends RenderedChat {
  readonly messages: readonly ChatMessage[];
}

export interface ChatTokenReport extends TokenReport {
  /** Index of the message the token belongs to; null for the template's own text (role markers, separators). */
  readonly message: number | null;
  /** The token's UTF-16 range within that message's content; null for template tokens. */
  readonly messageRange: readonly [number, number] | null;
}

export interface ChatInspectResult extends Omit<InspectResult, "tokens"> {
  readonly messages: readonly (ChatMessage & { readonly start: number | null; readonly end: number | null })[];
  readonly tokens: ChatTokenReport[];
}

export function traceChatTokens(result: InspectResult, chat: ChatText): ChatInspectResult {
  const owners = tokenMessages(result.tokens.map((t) => [t.start, t.end] as const), chat.spans);
  return {
    ...result,
    messages: chat.messages.map((m, i) => ({ ...m, start: chat.spans[i]?.start ?? null, end: chat.spans[i]?.end ?? null })),
    tokens: result.tokens.map((t, i) => {
      const span = owners[i] === null ? undefined : chat.spans[owners[i]!];
      const messageRange = span ? ([Math.max(0, t.start - span.start), Math.min(span.end, t.end) - span.start] as const) : null;
      return { ...t, message: owners[i], messageRange };
    }),
  };
}

/** A chat's inspection laid onto the chat file: what the editor draws, and the template's tokens it cannot. */
export interface ChatFileInspection {
  /** The inspection with each message token's start/end moved to its characters in the file (relative to the chat's start there); template tokens left out. */
  readonly result: InspectResult;
  /** Tokens of the template's own text (role markers, separators, special tokens): not in the file. */
  readonly templateTokens: readonly ChatTokenReport[];
}

/**
 * Move every message token onto the chat file, through each message's content source (escapes
 * included); a token that runs past its message's text is drawn on the message part only.
 */
export function chatFileInspection(result: ChatInspectResult, sources: readonly ContentSource[]): ChatFileInspection {
  const tokens: TokenReport[] = [];
  const templateTokens: ChatTokenReport[] = [];
  for (const token of result.tokens) {
    const source = token.message === null ? undefined : sources[token.message];
    if (!source || !token.messageRange) {
      templateTokens.push(token);
      continue;
    }
    const [start, end] = sourceRange(source, ...token.messageRange);
    const { message: _message, messageRange: _range, ...report } = token;
    tokens.push({ ...report, start, end });
  }
  const { messages: _messages, ...inspection } = result;
  return { result: { ...inspection, tokens }, templateTokens };
}

/** One line on the template's tokens for the editor to show: how many, and the first few as the model read them. */
export function templateTokenSummary(templateTokens: readonly TokenReport[], shown = 12): string {
  if (templateTokens.length === 0) return "The chat template added no tokens of its own.";
  const texts = templateTokens.slice(0, shown).map((t) => JSON.stringify(t.text)).join(" ");
  return `${templateTokens.length} template tokens (role markers, separators, special tokens) are not in the file: ${texts}${templateTokens.length > shown ? " …" : ""}`;
}

/** An inspection of a rendered chat, each token traced to the message it came from. */
import type { InspectResult, TokenReport } from "../inspect";
import type { ChatMessage } from "./messages";
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

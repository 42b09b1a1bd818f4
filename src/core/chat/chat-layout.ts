/**
 * A chat as the model reads it and the way back: the rendered text, the messages it came from and,
 * for a chat file, where each message's content is written in that file. Any result of a command
 * run on the rendered text (tokens, words, lines, CoT steps) is placed through it, either onto the
 * messages (the CLI's --json: message index and range in its content) or onto the chat file (the
 * editor draws there). The template's own text (role markers, separators, special tokens) is in
 * no message: it is marked as the template's, and has no characters in the file.
 */
import { LoupeError } from "../errors";
import type { ChatMessage } from "./messages";
import { locateChatContents, sourceRange, type ContentSource } from "./source-map";
import { readChatTemplate, renderChat, tokenMessages, type ChatTemplate, type RenderedChat } from "./template";

export interface Span {
  readonly start: number;
  readonly end: number;
}

/** Where a span of the rendered text lies in the chat. */
export interface MessagePlace {
  /** Index of the message it falls in (the first, if it spans several); null for the template's own text. */
  readonly message: number | null;
  /** Its UTF-16 range within that message's content; null for the template's own text. */
  readonly messageRange: readonly [number, number] | null;
}

/** How the chat ends for the model: as written, with the assistant's turn opened, or inside the last message. */
export type ChatEnding = "as-written" | "generation-prompt" | "continue";

/**
 * The ending for commands that look at the next token (attribution, tracing, faithfulness): the
 * last message continued when the assistant wrote it, else the assistant's turn opened.
 */
export function continuationEnding(messages: readonly ChatMessage[]): ChatEnding {
  return messages[messages.length - 1]?.role === "assistant" ? "continue" : "generation-prompt";
}

export class ChatLayout {
  private constructor(
    readonly messages: readonly ChatMessage[],
    readonly rendered: RenderedChat,
    /** The chat file's text (or the selected part) and each message's content in it. */
    readonly file: { readonly text: string; readonly sources: readonly ContentSource[] } | undefined,
  ) {}

  /** Render `messages` with `template`; `file`: the text they were parsed from, to place results onto it. */
  static render(template: ChatTemplate, messages: readonly ChatMessage[], ending: ChatEnding, file?: { text: string; name: string }): ChatLayout {
    const rendered = renderChat(template, messages, { addGenerationPrompt: ending === "generation-prompt", continueFinalMessage: ending === "continue" });
    return new ChatLayout(messages, rendered, file && { text: file.text, sources: locateChatContents(file.text, file.name) });
  }

  /** The text the model reads. */
  get text(): string {
    return this.rendered.text;
  }

  place(span: Span): MessagePlace {
    const [message] = tokenMessages([[span.start, span.end]], this.rendered.spans);
    const own = message === null ? undefined : this.rendered.spans[message];
    if (message === null || !own) return { message: null, messageRange: null };
    return { message, messageRange: [Math.max(0, span.start - own.start), Math.min(own.end, span.end) - own.start] };
  }

  /** The messages with where each one's content sits in the rendered text (null where the template rewrote it). */
  messagesInText(): (ChatMessage & { readonly start: number | null; readonly end: number | null })[] {
    return this.messages.map((m, i) => ({ ...m, start: this.rendered.spans[i]?.start ?? null, end: this.rendered.spans[i]?.end ?? null }));
  }

  /** The item with its place in the messages added (its start and end stay in the rendered text). */
  readonly withPlace = <T extends Span>(item: T): T & MessagePlace => ({ ...item, ...this.place(item) });

  /**
   * The item moved onto the chat file (offsets from the start of the file's text): a message's
   * characters as written there, escapes included; the template's own text gets the empty range
   * where it sits, after the message before it.
   */
  readonly onFile = <T extends Span>(item: T): T => {
    const file = this.fileOrThrow();
    const { message, messageRange } = this.place(item);
    if (message !== null && messageRange) {
      const [start, end] = sourceRange(file.sources[message], ...messageRange);
      return { ...item, start, end };
    }
    const at = this.fileOffsetBefore(item.start);
    return { ...item, start: at, end: at };
  };

  /** Whether a span of the rendered text has characters in the chat file (it is not only the template's). */
  inFile(span: Span): boolean {
    return this.place(span).message !== null;
  }

  /** The end of the last message content written before rendered offset `at` (0 when none is). */
  private fileOffsetBefore(at: number): number {
    const file = this.fileOrThrow();
    let offset = 0;
    this.rendered.spans.forEach((span, i) => {
      if (span && span.end <= at) offset = file.sources[i].offsets[file.sources[i].offsets.length - 1];
    });
    return offset;
  }

  private fileOrThrow(): NonNullable<ChatLayout["file"]> {
    if (!this.file) throw new Error("This chat was not read from a file: there is nothing to place results onto.");
    return this.file;
  }
}

/** The chat template of a model folder, or undefined when it has none (the chat is then read as plain text). */
export function chatTemplateIfAny(folder: string): ChatTemplate | undefined {
  try {
    return readChatTemplate(folder);
  } catch (error) {
    if (error instanceof LoupeError && error.code === "missing-file") return undefined;
    throw error;
  }
}

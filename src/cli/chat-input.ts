/**
 * --chat, as every command that reads a prompt takes it: FILE is a chat (JSON array or JSONL of
 * {"role", "content"} messages) rendered with the model's chat template, and --json places each
 * result's ranges in the messages (index and range in the content) beside the rendered text's.
 */
import { ChatLayout, type ChatEnding } from "../core/chat/chat-layout";
import { parseChat, type ChatMessage } from "../core/chat/messages";
import { readChatTemplate } from "../core/chat/template";
import type { OptionSpec, ParsedValues } from "./command";

export const CHAT_OPTION: OptionSpec = { chat: { type: "boolean", default: false } };

export const CHAT_USAGE_CONTINUED = `--chat: FILE is a chat (JSON array or JSONL of {"role", "content"}
    messages) rendered with the model's chat template, ending inside the last message when the
    assistant wrote it (transformers' continue_final_message), else with the assistant's turn
    opened (add_generation_prompt); --json gives each range's message and its range there.`;

/** The chat FILE holds when --chat is given; `ending` for its messages. */
export function chatInput(values: ParsedValues, text: string, file: string, modelFolder: string, ending: (messages: readonly ChatMessage[]) => ChatEnding): ChatLayout | undefined {
  if (values.chat !== true) return undefined;
  const messages = parseChat(text, file);
  return ChatLayout.render(readChatTemplate(modelFolder), messages, ending(messages));
}

/** A result placed in the chat, with the messages and where each sits in the rendered text. */
export function withMessages<T extends object>(chat: ChatLayout, result: T): T & { messages: ReturnType<ChatLayout["messagesInText"]> } {
  return { ...result, messages: chat.messagesInText() };
}

/** The table column that names each token's message ("user #1") or marks it as the template's. */
export function messageColumn(chat: ChatLayout, tokens: readonly { readonly start: number; readonly end: number }[]): { title: string; values: string[] } {
  return {
    title: "message",
    values: tokens.map((t) => {
      const { message } = chat.place(t);
      return message === null ? "template" : `${chat.messages[message].role} #${message + 1}`;
    }),
  };
}

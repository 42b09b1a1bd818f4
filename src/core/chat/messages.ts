/**
 * A chat as people keep one for transformers' apply_chat_template: `{role, content}` messages, in
 * a JSON file (an array, or an object with "messages") or a JSONL file (one message a line). A
 * selection inside a JSON file's array (one message object, or several with their commas) reads
 * as the chat of those messages.
 */
import { LoupeError } from "../errors";
import { jsonlRecords } from "../jsonl";

export interface ChatMessage {
  readonly role: string;
  readonly content: string;
}

const EXAMPLE = `{"role": "user", "content": "Hello"}`;

/** Parse a chat file's text; `file` names it in errors (with the line for JSONL). */
export function parseChat(text: string, file: string): ChatMessage[] {
  const messages = file.toLowerCase().endsWith(".jsonl")
    ? jsonlRecords(text, file, EXAMPLE).map(({ record, fail }) => checkMessage(record, fail))
    : parseJsonChat(text, file);
  if (messages.length === 0) throw new LoupeError("empty-input", `${file} holds no messages. Give {"role", "content"} messages, e.g. ${EXAMPLE}.`, file);
  return messages;
}

function parseJsonChat(text: string, file: string): ChatMessage[] {
  const fail = (why: string): never => {
    throw new LoupeError("bad-file", `${file}: ${why}`, file);
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    value = selectedMessages(text);
    if (value === undefined) return fail(`not valid JSON (${(error as Error).message}). Give an array of messages such as [${EXAMPLE}], or a .jsonl file with one a line.`);
  }
  const single = typeof value === "object" && value !== null && "role" in value && "content" in value;
  const list = Array.isArray(value) ? value : single ? [value] : (value as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(list)) return fail(`expected an array of messages, or an object with "messages", such as [${EXAMPLE}].`);
  return list.map((m, i) => checkMessage(m, (why) => fail(`message ${i + 1}: ${why}`)));
}

/** Message objects selected inside an array ("{…}, {…}", a trailing comma allowed), or undefined. */
function selectedMessages(text: string): unknown[] | undefined {
  const inner = text.trim().replace(/,$/, "");
  if (!inner.startsWith("{")) return undefined;
  try {
    return JSON.parse(`[${inner}]`) as unknown[];
  } catch {
    return undefined;
  }
}

function checkMessage(value: unknown, fail: (why: string) => never): ChatMessage {
  const m = value as { role?: unknown; content?: unknown } | null;
  if (typeof m !== "object" || m === null) return fail(`expected an object such as ${EXAMPLE}.`);
  if (typeof m.role !== "string" || m.role === "") return fail(`"role" must be a non-empty string (system, user, assistant...).`);
  if (typeof m.content !== "string") return fail(`"content" must be a string (Loupe reads text messages only).`);
  return { role: m.role, content: m.content };
}

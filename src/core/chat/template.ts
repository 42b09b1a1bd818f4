/**
 * A chat rendered as the model reads it: the tokenizer's chat template (chat_template.jinja, else
 * tokenizer_config.json's "chat_template", as transformers loads them) through @huggingface/jinja,
 * with the special tokens the template refers to. Each message's content is then located in the
 * rendered text, so every token can be traced back to a message or to the template's own text.
 */
import * as path from "node:path";
import { LoupeError } from "../errors";
import { MAX_MODEL_SIDE_FILE_BYTES, readTextSafely } from "../safe-fs";
import { renderBounded, TemplateBoundError, type RenderBounds } from "./bounded-render";
import type { ChatMessage } from "./messages";

export interface ChatTemplate {
  readonly source: string;
  /** Where it came from: what errors name. */
  readonly file: string;
  /** bos_token, eos_token, unk_token, pad_token as the template sees them. */
  readonly specialTokens: Readonly<Record<string, string>>;
}

/** A message's content in the rendered text; undefined where the template changed it beyond trimming. */
export interface MessageSpan {
  readonly message: number;
  readonly start: number;
  readonly end: number;
}

export interface RenderedChat {
  readonly text: string;
  readonly spans: readonly (MessageSpan | undefined)[];
}

/** The chat template of a model folder; a LoupeError saying where one goes when there is none. */
export function readChatTemplate(folder: string): ChatTemplate {
  const configFile = path.join(folder, "tokenizer_config.json");
  const config = readJsonObject(configFile);
  const specialTokens: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const value = config?.[key];
    // Saved as a string, or as an AddedToken object with its text in "content".
    const text = typeof value === "string" ? value : typeof (value as { content?: unknown } | null)?.content === "string" ? (value as { content: string }).content : undefined;
    if (text !== undefined) specialTokens[key] = text;
  }
  const jinjaFile = path.join(folder, "chat_template.jinja");
  const jinja = readTextSafely(jinjaFile, { maxBytes: MAX_MODEL_SIDE_FILE_BYTES });
  if (jinja !== undefined) return { source: jinja, file: jinjaFile, specialTokens };
  const template = config?.chat_template;
  // A list of named templates: the "default" one is the chat template.
  const named = Array.isArray(template) ? (template as { name?: unknown; template?: unknown }[]).find((t) => t?.name === "default")?.template : template;
  if (typeof named === "string") return { source: named, file: configFile, specialTokens };
  throw new LoupeError(
    "missing-file",
    `${folder} has no chat template (chat_template.jinja, or "chat_template" in tokenizer_config.json). Use an instruct model, or inspect the text itself.`,
    configFile,
  );
}

function readJsonObject(file: string): Record<string, unknown> | undefined {
  const text = readTextSafely(file, { maxBytes: MAX_MODEL_SIDE_FILE_BYTES });
  if (text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch (error) {
    throw new LoupeError("bad-file", `${file} is not valid JSON (${(error as Error).message}). Re-save the tokenizer with save_pretrained.`, file);
  }
}

/**
 * Render `messages` as transformers' apply_chat_template(tokenize=False) does, and find each
 * message's content in the result (in order; trimmed when the template strips it).
 */
export function renderChat(
  template: ChatTemplate,
  messages: readonly ChatMessage[],
  options: { addGenerationPrompt?: boolean; continueFinalMessage?: boolean; bounds?: RenderBounds } = {},
): RenderedChat {
  let text: string;
  try {
    text = renderBounded(template.source, { messages, add_generation_prompt: options.addGenerationPrompt ?? false, ...template.specialTokens }, options.bounds);
  } catch (error) {
    const message = (error as Error).message;
    throw new LoupeError(
      "bad-file",
      error instanceof TemplateBoundError
        ? `The chat template in ${template.file} was stopped: ${message}. A chat template only lays out the messages; replace this one with the model's original template.`
        : `The chat template in ${template.file} failed on this chat: ${message}`,
      template.file,
    );
  }
  const spans: (MessageSpan | undefined)[] = [];
  let cursor = 0;
  messages.forEach((m, message) => {
    for (const content of [m.content, m.content.trim()]) {
      const start = content ? text.indexOf(content, cursor) : -1;
      if (start >= 0) {
        spans.push({ message, start, end: start + content.length });
        cursor = start + content.length;
        return;
      }
    }
    spans.push(undefined);
  });
  if (options.continueFinalMessage) {
    // As transformers' continue_final_message: the text ends where the last message's content does, open for the model to go on.
    const last = spans[messages.length - 1];
    if (!last) throw new LoupeError("bad-file", `The chat template in ${template.file} does not write the last message's content as given, so the model cannot continue it. End the chat with a user message instead.`, template.file);
    text = text.slice(0, last.end);
  }
  return { text, spans };
}

/** Which message each token's [start, end) falls in: its index, or null for the template's own tokens. */
export function tokenMessages(offsets: readonly (readonly [number, number])[], spans: readonly (MessageSpan | undefined)[]): (number | null)[] {
  return offsets.map(([start, end]) => {
    const span = spans.find((s) => s !== undefined && start < s.end && end > s.start && end > start);
    return span ? span.message : null;
  });
}

/**
 * Where each message's content sits in the chat file itself, so a token of the rendered chat can be
 * drawn on the characters the user wrote. A message's content is a JSON string literal: the map
 * goes from each UTF-16 unit of the decoded content to its offset in the file, escapes included
 * (`\n` and `\"` are two characters in the file, `\u00e9` six, a surrogate pair twelve).
 */
import { LoupeError } from "../errors";

/** One message's content string in the file. */
export interface ContentSource {
  readonly message: number;
  /**
   * File offset of each decoded unit of the content, plus one entry past the end (the closing
   * quote): unit k of the content was written at [offsets[k], offsets[k + 1]).
   */
  readonly offsets: Uint32Array;
}

/**
 * Locate the content string of every message in a chat file's text (as parseChat reads it: a
 * JSON array, an object with "messages", or JSONL), with `base` added to every offset (the
 * selection's start, when the chat is a selection of a file).
 */
export function locateChatContents(text: string, file: string, base = 0): ContentSource[] {
  const messages: JsonNode[] = [];
  if (file.toLowerCase().endsWith(".jsonl")) {
    let at = 0;
    for (const line of text.split("\n")) {
      if (line.trim() !== "") messages.push(new JsonScanner(text, at).value());
      at += line.length + 1;
    }
  } else {
    // One value (an array, {"messages": [...]}, or one message), or message objects selected inside an array.
    const values = new JsonScanner(text, 0).values();
    const root = values.length === 1 ? values[0] : { kind: "array" as const, items: values };
    const list = root.kind === "array" ? root : root.kind === "object" ? (root.members.has("content") && root.members.has("role") ? { kind: "array" as const, items: [root] } : root.members.get("messages")) : undefined;
    if (list?.kind !== "array") throw unreadable(file);
    messages.push(...list.items);
  }
  return messages.map((node, message) => {
    const content = node.kind === "object" ? node.members.get("content") : undefined;
    if (content?.kind !== "string") throw unreadable(file);
    return { message, offsets: stringUnitOffsets(text, content.start, base) };
  });
}

/** The file range of content units [start, end) (a token's messageRange). */
export function sourceRange(source: ContentSource, start: number, end: number): [number, number] {
  const last = source.offsets.length - 1;
  return [source.offsets[Math.min(start, last)], source.offsets[Math.min(end, last)]];
}

function unreadable(file: string): LoupeError {
  return new LoupeError("bad-file", `${file}: Loupe could not find each message's "content" string in it. Give messages as {"role": ..., "content": "..."} objects.`, file);
}

/** Offsets of each decoded UTF-16 unit of the string literal whose opening quote is at `quote`. */
function stringUnitOffsets(text: string, quote: number, base: number): Uint32Array {
  const offsets: number[] = [];
  let at = quote + 1;
  while (text[at] !== '"') {
    if (at >= text.length) throw new Error("unterminated string");
    offsets.push(base + at);
    // \uXXXX is one unit (a surrogate pair is two escapes, so two units), any other escape one.
    at += text[at] === "\\" ? (text[at + 1] === "u" ? 6 : 2) : 1;
  }
  offsets.push(base + at);
  return Uint32Array.from(offsets);
}

type JsonNode =
  | { readonly kind: "object"; readonly members: Map<string, JsonNode> }
  | { readonly kind: "array"; readonly items: JsonNode[] }
  | { readonly kind: "string"; readonly start: number; readonly value: string }
  | { readonly kind: "other" };

/** Just enough of a JSON reader to keep where strings start; the text has already passed JSON.parse. */
class JsonScanner {
  constructor(
    private readonly text: string,
    private at: number,
  ) {}

  /** Values separated by commas up to the end of the text (a trailing comma allowed). */
  values(): JsonNode[] {
    const out: JsonNode[] = [];
    for (this.skipSpace(); this.at < this.text.length; this.skipSpace()) {
      out.push(this.value());
      this.skipSpace();
      if (this.text[this.at] === ",") this.at++;
      else if (this.at < this.text.length) throw new Error("unexpected text after a value");
    }
    return out;
  }

  value(): JsonNode {
    this.skipSpace();
    const c = this.text[this.at];
    if (c === "{") return this.object();
    if (c === "[") return this.array();
    if (c === '"') return this.string();
    while (this.at < this.text.length && !/[\s,\]}]/.test(this.text[this.at])) this.at++;
    return { kind: "other" };
  }

  private object(): JsonNode {
    const members = new Map<string, JsonNode>();
    this.at++;
    for (this.skipSpace(); this.text[this.at] !== "}"; this.skipSpace()) {
      this.need();
      const key = this.string();
      this.skipSpace();
      this.at++; // ":"
      // As JSON.parse, the last of repeated keys wins.
      members.set(key.value, this.value());
      this.skipSpace();
      if (this.text[this.at] === ",") this.at++;
    }
    this.at++;
    return { kind: "object", members };
  }

  private array(): JsonNode {
    const items: JsonNode[] = [];
    this.at++;
    for (this.skipSpace(); this.text[this.at] !== "]"; this.skipSpace()) {
      this.need();
      items.push(this.value());
      this.skipSpace();
      if (this.text[this.at] === ",") this.at++;
    }
    this.at++;
    return { kind: "array", items };
  }

  private string(): { kind: "string"; start: number; value: string } {
    const start = this.at;
    this.at++;
    while (this.text[this.at] !== '"') {
      this.need();
      this.at += this.text[this.at] === "\\" ? 2 : 1;
    }
    this.at++;
    return { kind: "string", start, value: JSON.parse(this.text.slice(start, this.at)) as string };
  }

  /** The text passed JSON.parse, so running off its end is a bug, never a loop. */
  private need(): void {
    if (this.at >= this.text.length) throw new Error("JSON ended early");
  }

  private skipSpace(): void {
    while (/\s/.test(this.text[this.at] ?? "")) this.at++;
  }
}

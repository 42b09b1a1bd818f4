/**
 * Tokenizer: Hugging Face tokenizer.json through @huggingface/tokenizers (pure JS), plus what that
 * library lacks: the exact UTF-16 range of every token in the input string.
 *
 * Offsets come from the bytes each token stands for. For byte-level BPE (GPT-2 family) the tokens'
 * bytes concatenate to the input's UTF-8, so a byte cursor walked over the input gives each token
 * its byte range, mapped to UTF-16 by Utf8Index. Any disagreement between the tokens' bytes and the
 * input raises an error rather than returning wrong offsets.
 */
import * as fs from "node:fs";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { LoupeError } from "../errors";
import { byteLevelTokenBytes } from "./byte-level";
import { Utf8Index } from "./offsets";

export interface Encoding {
  readonly ids: number[];
  readonly tokens: string[];
  /** UTF-16 [start, end) of each token in the input. */
  readonly offsets: Array<[number, number]>;
}

interface AddedTokenInfo {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
}

type TokenizerJson = {
  model?: { type?: string; vocab?: Record<string, number> | unknown[] };
  added_tokens?: AddedTokenInfo[];
  pre_tokenizer?: unknown;
  decoder?: unknown;
};

const SUPPORTED_MODELS = new Set(["BPE"]);

export class Tokenizer {
  private readonly hf: HfTokenizer;
  private readonly added = new Map<number, AddedTokenInfo>();
  private readonly idToTokenMap = new Map<number, string>();
  private readonly tokenToIdMap = new Map<string, number>();
  readonly vocabSize: number;
  readonly eosTokenId: number | undefined;
  readonly bosTokenId: number | undefined;
  readonly specialTokenIds: ReadonlySet<number>;

  private constructor(json: TokenizerJson, readonly source: string) {
    const modelType = json.model?.type ?? (json.model && "merges" in json.model ? "BPE" : undefined);
    if (!modelType || !SUPPORTED_MODELS.has(modelType)) {
      throw new LoupeError("bad-file", `${source}: tokenizer model "${String(modelType)}" is not supported yet; Loupe reads byte-level BPE tokenizers (GPT-2 family).`, source);
    }
    if (!isByteLevel(json)) {
      throw new LoupeError("bad-file", `${source}: only byte-level BPE tokenizers (GPT-2 family) are supported so far; SentencePiece-style tokenizers come with Llama support.`, source);
    }
    try {
      this.hf = new HfTokenizer(json, { clean_up_tokenization_spaces: false });
    } catch (error) {
      throw new LoupeError("bad-file", `${source}: the tokenizer could not be built (${(error as Error).message}).`, source);
    }
    const vocab = json.model?.vocab;
    if (vocab && !Array.isArray(vocab)) {
      for (const [token, id] of Object.entries(vocab)) {
        this.idToTokenMap.set(id, token);
        this.tokenToIdMap.set(token, id);
      }
    }
    for (const t of json.added_tokens ?? []) {
      this.added.set(t.id, { id: t.id, content: t.content, special: t.special });
      this.idToTokenMap.set(t.id, t.content);
      this.tokenToIdMap.set(t.content, t.id);
    }
    this.vocabSize = this.idToTokenMap.size === 0 ? 0 : Math.max(...this.idToTokenMap.keys()) + 1;
    const special = [...this.added.values()].filter((t) => t.special);
    this.specialTokenIds = new Set(special.map((t) => t.id));
    const find = (...names: string[]) => special.find((t) => names.includes(t.content))?.id;
    this.eosTokenId = find("<|endoftext|>", "</s>", "<|im_end|>", "<eos>");
    this.bosTokenId = find("<|endoftext|>", "<s>", "<bos>", "<|begin_of_text|>");
  }

  static fromFile(path: string): Tokenizer {
    let text: string;
    try {
      text = fs.readFileSync(path, "utf8");
    } catch {
      throw new LoupeError("missing-file", `Cannot read ${path}: the model folder needs the tokenizer.json saved with the model.`, path);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new LoupeError("bad-file", `${path} is not valid JSON.`, path);
    }
    return Tokenizer.fromJSON(json, path);
  }

  static fromJSON(json: unknown, source = "tokenizer.json"): Tokenizer {
    if (typeof json !== "object" || json === null || typeof (json as TokenizerJson).model !== "object") {
      throw new LoupeError("bad-file", `${source} has no "model" section: is it a Hugging Face tokenizer.json?`, source);
    }
    return new Tokenizer(json as TokenizerJson, source);
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): Encoding {
    if (text.length === 0) return { ids: [], tokens: [], offsets: [] };
    const encoded = this.hf.encode(text, { add_special_tokens: options.addSpecialTokens ?? false });
    const index = new Utf8Index(text);
    const offsets: Array<[number, number]> = [];
    let cursor = 0;
    encoded.ids.forEach((id, i) => {
      const bytes = this.tokenBytes(id, encoded.tokens[i]);
      if (!bytes) throw new LoupeError("tokenizer-mismatch", `${this.source}: token ${id} ("${encoded.tokens[i]}") has no byte form.`, this.source);
      const matches = cursor + bytes.length <= index.bytes.length && bytes.every((b, k) => index.bytes[cursor + k] === b);
      if (!matches) {
        if (this.added.has(id)) {
          // A special token the post-processor inserted: it has no text, so an empty range here.
          offsets.push(index.range(cursor, cursor));
          return;
        }
        throw new LoupeError("tokenizer-mismatch", `${this.source}: token ${i} does not match the text at byte ${cursor}; this tokenizer normalizes text in a way Loupe cannot map back to offsets.`, this.source);
      }
      offsets.push(index.range(cursor, cursor + bytes.length));
      cursor += bytes.length;
    });
    if (cursor !== index.bytes.length) {
      throw new LoupeError("tokenizer-mismatch", `${this.source}: the tokens cover ${cursor} of ${index.bytes.length} bytes of the text.`, this.source);
    }
    return { ids: encoded.ids, tokens: encoded.tokens, offsets };
  }

  /** Text of a sequence of ids: the tokens' bytes, decoded as UTF-8 (invalid sequences become U+FFFD). */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    const parts: Uint8Array[] = [];
    let length = 0;
    for (const id of ids) {
      if (options.skipSpecialTokens && this.specialTokenIds.has(id)) continue;
      const bytes = this.tokenBytes(id, this.idToTokenMap.get(id));
      if (!bytes) continue;
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    return new TextDecoder("utf-8", { fatal: false }).decode(all);
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenMap.get(id);
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }

  /** A token's text for display. A token holding part of a character shows its bytes, e.g. <0xF0><0x9F>. */
  tokenText(id: number): string {
    const bytes = this.tokenBytes(id, this.idToTokenMap.get(id));
    if (!bytes) return `<unk ${id}>`;
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    } catch {
      return showBytes(bytes);
    }
  }

  private tokenBytes(id: number, token: string | undefined): Uint8Array | undefined {
    const added = this.added.get(id);
    if (added) return new TextEncoder().encode(added.content);
    return token === undefined ? undefined : byteLevelTokenBytes(token);
  }
}

/** Show a byte string with complete UTF-8 characters as text and stray bytes as <0xNN>. */
function showBytes(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const width = b < 0x80 ? 1 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    if (width > 0 && i + width <= bytes.length) {
      try {
        out += new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(i, i + width));
        i += width;
        continue;
      } catch {
        // Not a valid character: fall through to the byte form.
      }
    }
    out += `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
    i += 1;
  }
  return out;
}

function isByteLevel(json: TokenizerJson): boolean {
  const mentions = (node: unknown): boolean => {
    if (!node || typeof node !== "object") return false;
    const n = node as { type?: unknown; pretokenizers?: unknown[]; decoders?: unknown[] };
    if (n.type === "ByteLevel") return true;
    return [...(n.pretokenizers ?? []), ...(n.decoders ?? [])].some(mentions);
  };
  return mentions(json.pre_tokenizer) || mentions(json.decoder);
}

/**
 * Tokenizer: a Hugging Face tokenizer.json, encoded by @huggingface/tokenizers (pure JS, same ids
 * as the Rust library), plus what that library lacks: the exact UTF-16 range of every token in the
 * input string, so that editor decorations land on the right characters.
 *
 * Offsets come from the bytes each token spells: they must spell the input (see AlignedBytes and
 * tokenOffsets, which also states the policy for a character split over several tokens). Where
 * they do not, encode throws a LoupeError("tokenizer-mismatch") instead of guessing.
 */
import * as fs from "node:fs";
import { SequenceNormalizer, Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { LoupeError } from "../errors";
import { AlignedBytes, type AlignOptions } from "./aligned-bytes";
import { findBeginningOfText, findEndOfText } from "./special-tokens";
import { type SectionPrefix, tokenOffsets, type TokenVocabulary } from "./token-offsets";
import { spellToken } from "./token-spelling";
import { type AddedTokenSpec, readTokenizerSpec, type TokenizerSpec } from "./tokenizer-spec";
import { concatBytes, describeBytes, utf8 } from "./utf8";

export interface Encoding {
  readonly ids: number[];
  /** The tokens as the vocabulary writes them ("Ġthe" for " the" in GPT-2, "▁the" in Llama). */
  readonly tokens: string[];
  /** UTF-16 [start, end) of each token in the input; see tokenOffsets for split characters. */
  readonly offsets: Array<[number, number]>;
}

export interface EncodeOptions {
  /**
   * Add the tokens the post-processor puts around a text (Llama's <s>); default false. They get
   * empty ranges where they stand: [0, 0] before the text, [length, length] after it.
   */
  readonly addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  readonly skipSpecialTokens?: boolean;
}

type SequenceNormalizerConfig = ConstructorParameters<typeof SequenceNormalizer>[0];

const REPLACEMENT_CHARACTER_BYTES = Uint8Array.of(0xef, 0xbf, 0xbd);

export class Tokenizer {
  /** Number of ids, added tokens included (the largest id plus one). */
  readonly vocabSize: number;
  /**
   * Ids of the tokenizer model's own vocabulary (the largest plus one), without added tokens past
   * it: what a model's embedding must cover. Tokenizers may add tokens beyond the embedding
   * (Hugging Face's tiny test GPT-2 adds whitespace runs at 50257-50294 to a 50257-row model).
   */
  readonly modelVocabSize: number;
  readonly eosTokenId: number | undefined;
  readonly bosTokenId: number | undefined;
  /** Ids of the added tokens marked special (skipped by decode with skipSpecialTokens). */
  readonly specialTokenIds: ReadonlySet<number>;

  private readonly hf: HfTokenizer;
  private readonly tokenById: Array<string | undefined> = [];
  private readonly idByToken = new Map<string, number>();
  private readonly added = new Map<number, AddedTokenSpec>();
  /** Bytes each id spells, filled on first use. */
  private readonly spelled = new Map<number, Uint8Array | undefined>();
  private readonly prefixes: readonly SectionPrefix[];
  private readonly alignOptions: AlignOptions;
  private readonly vocabulary: TokenVocabulary;
  /** The ids the post-processor puts before a text, once known (null: none could be found). */
  private leadingIds: readonly number[] | null | undefined;

  private constructor(
    private readonly spec: TokenizerSpec,
    /** The file it came from, named in errors. */
    readonly source: string,
  ) {
    try {
      this.hf = new HfTokenizer(spec.json, { clean_up_tokenization_spaces: false });
    } catch (error) {
      throw new LoupeError("bad-file", `${source}: @huggingface/tokenizers cannot build this tokenizer (${errorMessage(error)}).`, source);
    }
    for (const [token, id] of spec.vocab) {
      this.tokenById[id] = token;
      this.idByToken.set(token, id);
    }
    this.modelVocabSize = this.tokenById.length;
    for (const t of spec.addedTokens) {
      this.added.set(t.id, t);
      this.tokenById[t.id] = t.content;
      this.idByToken.set(t.content, t.id);
    }
    this.vocabSize = this.tokenById.length;

    this.specialTokenIds = new Set(spec.addedTokens.filter((t) => t.special).map((t) => t.id));
    this.eosTokenId = findEndOfText(spec.addedTokens);
    this.bosTokenId = findBeginningOfText(spec.addedTokens);

    this.prefixes = spec.prefixes.map((p) => ({ bytes: utf8(p.text), scope: p.scope, unlessStartsWith: p.unlessStartsWith === undefined ? undefined : utf8(p.unlessStartsWith) }));
    let normalize: ((text: string) => string) | undefined;
    if (spec.normalizerSteps.length > 0) {
      const normalizer = new SequenceNormalizer({ type: "Sequence", normalizers: spec.normalizerSteps } as unknown as SequenceNormalizerConfig);
      normalize = (text) => normalizer.normalize(text);
    }
    const substitutions = spec.spaceReplacement === undefined ? undefined : new Map([[0x20, spec.spaceReplacement]]);
    this.alignOptions = { normalize, substitutions, source };
    const unkId = spec.unkToken === undefined ? undefined : this.idByToken.get(spec.unkToken);
    // As in @huggingface/tokenizers: without a normalizer every added token is matched in the raw text.
    const rules = new Map([...this.added].map(([id, t]) => [id, { lstrip: t.lstrip, rstrip: t.rstrip, normalized: t.normalized && spec.hasNormalizer }]));
    this.vocabulary = {
      bytesOf: (id) => this.tokenBytes(id),
      addedRule: (id) => rules.get(id),
      addedBytes: (token) => utf8(token),
      unkId,
    };
  }

  /** Load a tokenizer.json; errors name the file. */
  static fromFile(path: string): Tokenizer {
    let text: string;
    try {
      text = fs.readFileSync(path, "utf8");
    } catch (error) {
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT";
      throw new LoupeError(
        "missing-file",
        missing ? `${path} does not exist: a model folder needs the tokenizer.json saved with the model.` : `Cannot read ${path} (${errorMessage(error)}).`,
        path,
      );
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw new LoupeError("bad-file", `${path} is not valid JSON (${errorMessage(error)}).`, path);
    }
    return Tokenizer.fromJSON(json, path);
  }

  /** Build from a parsed tokenizer.json; `source` names it in errors. */
  static fromJSON(json: unknown, source = "tokenizer.json"): Tokenizer {
    return new Tokenizer(readTokenizerSpec(json, source), source);
  }

  encode(text: string, options: EncodeOptions = {}): Encoding {
    if (typeof text !== "string") throw new LoupeError("bad-argument", `Tokenizer.encode needs a string, not ${typeof text}.`);
    const plain = this.hf.encode(text, { add_special_tokens: false });
    const input = AlignedBytes.build(text, this.alignOptions);
    const offsets = tokenOffsets(input, plain.ids, plain.tokens, this.vocabulary, this.prefixes, this.source);
    const encoding: Encoding = { ids: plain.ids, tokens: plain.tokens, offsets };
    return options.addSpecialTokens ? this.withTemplateTokens(text, encoding) : encoding;
  }

  /**
   * Text of a sequence of ids. Byte-level: the tokens' bytes decoded as UTF-8, so
   * decode(encode(s).ids) === s for any well-formed s; bytes that do not form a character (an
   * incomplete emoji) and unknown ids become U+FFFD. Other tokenizers: their own decoder.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    const skip = options.skipSpecialTokens ?? false;
    if (this.spec.spelling !== "byte-level") {
      if (ids.length === 0) return "";
      return this.hf.decode([...ids], { skip_special_tokens: skip, clean_up_tokenization_spaces: false });
    }
    const parts: Uint8Array[] = [];
    for (const id of ids) {
      if (skip && this.specialTokenIds.has(id)) continue;
      parts.push(this.tokenBytes(id) ?? REPLACEMENT_CHARACTER_BYTES);
    }
    return new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(concatBytes(parts));
  }

  /**
   * Text of `ids` written after the text of `context` (a generated continuation after its prompt).
   * SentencePiece-style decoders strip the space of a text's first "▁word", which is right for a
   * whole text but drops the space between a prompt and its continuation; so the continuation is
   * cut from the decoded whole, when the prompt's text is a prefix of it. Byte-level decoding needs
   * no context.
   */
  decodeContinuation(context: readonly number[], ids: readonly number[], options: DecodeOptions = {}): string {
    if (this.spec.spelling === "byte-level" || context.length === 0 || ids.length === 0) return this.decode(ids, options);
    const head = this.decode(context, options);
    const whole = this.decode([...context, ...ids], options);
    return whole.startsWith(head) ? whole.slice(head.length) : this.decode(ids, options);
  }

  /** The vocabulary's string for an id ("Ġthe"), or undefined. */
  idToToken(id: number): string | undefined {
    return this.tokenById[id];
  }

  /** The id of a vocabulary string ("Ġthe", "<|endoftext|>"), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.idByToken.get(token);
  }

  /**
   * Readable text of one token, for display: " the" for "Ġthe" or "▁the"; a token holding only
   * part of a character shows those bytes as <0xNN> (an emoji's first byte: "<0xF0>").
   */
  tokenText(id: number): string {
    const bytes = this.tokenBytes(id);
    if (!bytes) return `<unknown id ${id}>`;
    const text = describeBytes(bytes);
    const standIn = this.spec.spaceStandIn;
    return standIn && !this.added.has(id) ? text.replaceAll(standIn, " ") : text;
  }

  /** Bytes an id spells: an added token's content, or the vocabulary token's bytes. */
  private tokenBytes(id: number): Uint8Array | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) return undefined;
    if (this.spelled.has(id)) return this.spelled.get(id);
    const added = this.added.get(id);
    const token = this.tokenById[id];
    const bytes = added ? utf8(added.content) : token === undefined ? undefined : spellToken(token, this.spec.spelling, this.spec.byteFallback);
    this.spelled.set(id, bytes);
    return bytes;
  }

  /** The encoding with the post-processor's tokens (a template such as "<s> $A </s>") around it. */
  private withTemplateTokens(text: string, plain: Encoding): Encoding {
    const full = this.hf.encode(text, { add_special_tokens: true });
    const n = plain.ids.length;
    if (n === 0) return { ids: full.ids, tokens: full.tokens, offsets: full.ids.map(() => [0, 0]) };
    // Where the text's own tokens start. A probe text tells (the text itself may begin with the
    // very token the template adds); failing that, the first place they match.
    const known = this.leadingTemplateIds();
    const lead = known ? known.length : firstMatch(full.ids, plain.ids);
    if (lead === undefined || !sameIds(full.ids, lead, plain.ids)) throw this.templateMismatch();
    const offsets = full.ids.map((_, i): [number, number] => (i < lead ? [0, 0] : i < lead + n ? plain.offsets[i - lead] : [text.length, text.length]));
    return { ids: full.ids, tokens: full.tokens, offsets };
  }

  /**
   * The ids the post-processor puts before every text: Llama's <s>, Llama 3's <|begin_of_text|>
   * (a TemplateProcessing that starts with special tokens); [] where it adds none before the text
   * (GPT-2's and Qwen2's ByteLevel). Found on probe texts, so any post-processor the library runs
   * is read the same way; null when no probe text shows where the text starts.
   */
  leadingTemplateIds(): readonly number[] | null {
    if (this.leadingIds !== undefined) return this.leadingIds;
    this.leadingIds = null;
    for (const probe of ["a", "the", "0", "."]) {
      const plain = this.hf.encode(probe, { add_special_tokens: false }).ids;
      if (plain.length === 0 || plain.some((id) => this.added.has(id))) continue;
      const full = this.hf.encode(probe, { add_special_tokens: true }).ids;
      const lead = firstMatch(full, plain);
      if (lead !== undefined) {
        this.leadingIds = full.slice(0, lead);
        break;
      }
    }
    return this.leadingIds;
  }

  private templateMismatch(): LoupeError {
    return new LoupeError("tokenizer-mismatch", `${this.source}: the post-processor does more than add tokens around the text; encode without addSpecialTokens.`, this.source);
  }
}

function firstMatch(full: readonly number[], part: readonly number[]): number | undefined {
  for (let at = 0; at + part.length <= full.length; at++) if (sameIds(full, at, part)) return at;
  return undefined;
}

function sameIds(full: readonly number[], at: number, part: readonly number[]): boolean {
  if (at + part.length > full.length) return false;
  for (let i = 0; i < part.length; i++) if (full[at + i] !== part[i]) return false;
  return true;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

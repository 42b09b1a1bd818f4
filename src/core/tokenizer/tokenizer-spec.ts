/**
 * Reads the parts of a Hugging Face tokenizer.json that offset mapping depends on, and refuses,
 * with a message naming the file, the kinds Loupe cannot map to exact character ranges.
 *
 * Two ways a BPE token's string spells bytes are understood:
 * - "byte-level" (GPT-2, Qwen2, Llama 3): a ByteLevel pre-tokenizer; each character of a token
 *   stands for one byte (see byte-level-alphabet.ts).
 * - "text" (SentencePiece-style BPE: Llama 2, Mistral, TinyLlama): a token is literal text, with
 *   "▁" for a space (Metaspace pre-tokenizer, or a Replace normalizer), "▁" prepended to the
 *   text, and byte-fallback tokens <0xNN> for single bytes of characters not in the vocabulary.
 */
import { LoupeError } from "../errors";
import { unsafePatternReason } from "../regex-guard";

export type Spelling = "byte-level" | "text";

export interface AddedTokenSpec {
  readonly id: number;
  readonly content: string;
  readonly special: boolean;
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  readonly normalized: boolean;
}

export interface PrefixSpec {
  readonly text: string;
  readonly scope: "section" | "subsection" | "first";
  readonly unlessStartsWith?: string;
}

export interface TokenizerSpec {
  /** The whole parsed file, for @huggingface/tokenizers. */
  readonly json: Record<string, unknown>;
  readonly vocab: ReadonlyMap<string, number>;
  readonly addedTokens: readonly AddedTokenSpec[];
  readonly spelling: Spelling;
  readonly byteFallback: boolean;
  readonly unkToken: string | undefined;
  /** Metaspace's stand-in for a space ("▁"), if the pre-tokenizer replaces spaces. */
  readonly spaceReplacement: string | undefined;
  /** What tokens show for a space (Metaspace's, or a Replace normalizer's "▁"), for display. */
  readonly spaceStandIn: string | undefined;
  /** What the normalizer and pre-tokenizer insert at the start of stretches of text, in that order. */
  readonly prefixes: readonly PrefixSpec[];
  /** Whether the file has a normalizer at all (added tokens marked normalized match after it). */
  readonly hasNormalizer: boolean;
  /** The normalizer's steps other than Prepend (which `prefixes` describe); empty when none. */
  readonly normalizerSteps: readonly Record<string, unknown>[];
}

/** Pre-tokenizers that drop characters (whitespace, or text matched with behavior "Removed"). */
const DROPPING_PRE_TOKENIZERS = new Set(["Whitespace", "WhitespaceSplit", "BertPreTokenizer", "CharDelimiterSplit"]);

export function readTokenizerSpec(json: unknown, source: string): TokenizerSpec {
  const unsupported = (what: string): never => {
    throw new LoupeError("unsupported-architecture", `${source}: ${what} Loupe reads BPE tokenizers: byte-level (GPT-2 family) or SentencePiece-style with byte fallback (Llama family).`, source);
  };
  const bad = (what: string): never => {
    throw new LoupeError("bad-file", `${source}: ${what} Is it a Hugging Face tokenizer.json (tokenizer.save_pretrained)?`, source);
  };
  const tooBig = (what: string): never => {
    throw new LoupeError("bad-file", `${source}: ${what}; Loupe accepts at most ${MAX_VOCAB_SIZE} (the largest published vocabularies have about 262,000). Use the tokenizer.json published with the model.`, source);
  };

  if (!isRecord(json)) return bad("the file is not a JSON object.");
  const model = json.model;
  if (!isRecord(model)) return bad('it has no "model" section.');
  const modelType = typeof model.type === "string" ? model.type : "merges" in model ? "BPE" : Array.isArray(model.vocab) ? "Unigram" : "unknown";
  if (modelType !== "BPE") unsupported(`the tokenizer model "${modelType}" is not supported.`);
  if (nonEmptyString(model.continuing_subword_prefix) || nonEmptyString(model.end_of_word_suffix)) {
    unsupported("BPE with a continuing_subword_prefix or end_of_word_suffix is not supported.");
  }

  if (!isRecord(model.vocab)) return bad('"model.vocab" is not an object of token -> id.');
  if (Array.isArray(model.merges) && model.merges.length > MAX_VOCAB_SIZE) tooBig(`it has ${model.merges.length} merges`);
  const vocab = new Map<string, number>();
  // One pass that stops at the cap (a JSON-parsed object has no inherited keys).
  for (const token in model.vocab) {
    if (vocab.size >= MAX_VOCAB_SIZE) tooBig("its vocabulary is larger");
    const id = model.vocab[token];
    if (!isTokenId(id)) return bad(`the vocabulary entry ${JSON.stringify(token)} has id ${JSON.stringify(id)}, not a non-negative integer below ${MAX_VOCAB_SIZE}.`);
    vocab.set(token, id);
  }
  if (model.merges !== undefined && !Array.isArray(model.merges)) bad('"model.merges" is not a list.');

  const addedTokens: AddedTokenSpec[] = [];
  const rawAdded = json.added_tokens ?? [];
  if (!Array.isArray(rawAdded)) return bad('"added_tokens" is not a list.');
  for (const t of rawAdded) {
    if (!isRecord(t) || !isTokenId(t.id) || typeof t.content !== "string" || t.content === "") {
      return bad(`an entry of "added_tokens" lacks an integer "id" or a non-empty "content": ${JSON.stringify(t)}.`);
    }
    const special = t.special === true;
    // Defaults as in @huggingface/tokenizers, which does the encoding.
    addedTokens.push({ id: t.id, content: t.content, special, lstrip: t.lstrip === true, rstrip: t.rstrip === true, normalized: typeof t.normalized === "boolean" ? t.normalized : !special });
  }

  const preTokenizers = flatten(json.pre_tokenizer, "pretokenizers");
  const byteLevelAt = preTokenizers.findIndex((p) => p.type === "ByteLevel");
  const metaspace = preTokenizers.find((p) => p.type === "Metaspace");
  for (const p of preTokenizers) {
    const type = typeof p.type === "string" ? p.type : JSON.stringify(p.type);
    if (DROPPING_PRE_TOKENIZERS.has(type) || p.behavior === "Removed") {
      unsupported(`the pre-tokenizer "${type}"${p.behavior === "Removed" ? ' with behavior "Removed"' : ""} drops characters, so tokens cannot be mapped back to the text.`);
    }
  }
  for (const step of [...preTokenizers, ...flatten(json.normalizer, "normalizers")]) {
    const regex = isRecord(step.pattern) ? step.pattern.Regex : undefined;
    const unsafe = typeof regex === "string" ? unsafePatternReason(regex) : undefined;
    if (unsafe) throw new LoupeError("unsafe-pattern", `${source}: the ${String(step.type)} step's pattern /${String(regex).slice(0, 80)}/ is refused: ${unsafe}. Use the tokenizer.json published with the model.`, source);
  }
  if (byteLevelAt >= 0 && metaspace) unsupported("a pre-tokenizer with both ByteLevel and Metaspace is not supported.");

  const prefixes: PrefixSpec[] = [];
  const normalizerSteps: Record<string, unknown>[] = [];
  for (const step of flatten(json.normalizer, "normalizers")) {
    if (step.type === "Prepend") {
      if (typeof step.prepend !== "string") return bad('a Prepend normalizer has no "prepend" string.');
      if (step.prepend !== "") prefixes.push({ text: step.prepend, scope: "section" });
    } else {
      normalizerSteps.push(step);
    }
  }

  let spaceReplacement: string | undefined;
  if (byteLevelAt >= 0) {
    const byteLevel = preTokenizers[byteLevelAt];
    // Inside a Sequence after a splitting step, a prefix space would go before every piece.
    if (byteLevel.add_prefix_space === true) {
      if (byteLevelAt > 0) unsupported("a ByteLevel pre-tokenizer with add_prefix_space after other pre-tokenizers is not supported.");
      prefixes.push({ text: " ", scope: "subsection", unlessStartsWith: " " });
    }
  } else if (metaspace) {
    const replacement = typeof metaspace.replacement === "string" ? metaspace.replacement : "\u2581";
    const written = nonEmptyString(metaspace.str_rep) ? metaspace.str_rep : replacement;
    spaceReplacement = written;
    // @huggingface/tokenizers reads prepend_scheme only (default "always").
    const scheme = typeof metaspace.prepend_scheme === "string" ? metaspace.prepend_scheme : "always";
    if (scheme === "always" || scheme === "first") prefixes.push({ text: written, scope: scheme === "always" ? "subsection" : "first", unlessStartsWith: replacement });
  }

  const replaceSpace = normalizerSteps.find((s) => s.type === "Replace" && isRecord(s.pattern) && s.pattern.String === " " && nonEmptyString(s.content));
  const spaceStandIn = spaceReplacement ?? (replaceSpace && typeof replaceSpace.content === "string" ? replaceSpace.content : undefined);

  return {
    // @huggingface/tokenizers insists on these keys; files written by hand may leave them out.
    json: { ...json, added_tokens: rawAdded, normalizer: json.normalizer ?? null, pre_tokenizer: json.pre_tokenizer ?? null, post_processor: json.post_processor ?? null, decoder: json.decoder ?? null },
    vocab,
    addedTokens,
    spelling: byteLevelAt >= 0 ? "byte-level" : "text",
    byteFallback: model.byte_fallback === true,
    unkToken: typeof model.unk_token === "string" ? model.unk_token : undefined,
    spaceReplacement,
    spaceStandIn,
    prefixes,
    hasNormalizer: isRecord(json.normalizer),
    normalizerSteps,
  };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Vocabulary entries, merges and token ids past this are refused before any table is built. */
export const MAX_VOCAB_SIZE = 1 << 19;

function isTokenId(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value < MAX_VOCAB_SIZE;
}

function nonEmptyString(value: unknown): value is string {
  return typeof value === "string" && value !== "";
}

/** A component and the members of nested Sequences, in order. */
function flatten(node: unknown, membersKey: string): Record<string, unknown>[] {
  if (!isRecord(node)) return [];
  const members = node[membersKey];
  if (node.type === "Sequence" && Array.isArray(members)) return members.flatMap((m) => flatten(m, membersKey));
  return [node];
}

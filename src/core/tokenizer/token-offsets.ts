/**
 * Exact UTF-16 offsets for a token sequence, found by spelling the tokens' bytes over the input.
 *
 * The bytes of the tokens, in order, must spell the input's aligned bytes (see AlignedBytes),
 * apart from what the tokenizer itself inserts at the start of a stretch of text (a prefix space
 * or "▁") and the whitespace that added tokens with lstrip/rstrip swallow. A byte cursor walks
 * the input; every token takes the range of the input characters its bytes come from.
 *
 * Policy for a character whose bytes are split over several tokens (an emoji cut by byte-level
 * BPE, a byte-fallback token like <0xE2>): each token's range is the smallest UTF-16 range
 * covering every character any of its bytes belong to. Both tokens then cover the whole
 * character and their ranges overlap; no range ever cuts a character or a surrogate pair. This
 * is what the Hugging Face Rust tokenizer reports too.
 *
 * Inserted bytes (a prefix the tokenizer adds) take the range of the input character that
 * follows them, as the Rust tokenizer does; at the very end of the input, an empty range there.
 *
 * Anything else that does not match stops with an error: wrong offsets are never returned.
 */
import { LoupeError } from "../errors";
import type { AlignedBytes } from "./aligned-bytes";

/** Something a tokenizer inserts at the start of a stretch of text. */
export interface SectionPrefix {
  /** The inserted bytes, as the tokens spell them (" " for byte-level, "▁" for Metaspace). */
  readonly bytes: Uint8Array;
  /**
   * Where: "section", at the start of the text and after every added token matched in the raw
   * text (a normalizer's Prepend runs on each such section); "subsection", also after added
   * tokens matched in normalized text (a pre-tokenizer runs on each such piece); "first", only
   * in the first section (Metaspace's prepend_scheme "first").
   */
  readonly scope: "section" | "subsection" | "first";
  /** Not inserted where the text (with what was inserted before) already starts with these bytes. */
  readonly unlessStartsWith?: Uint8Array;
}

/** What the walk needs to know about an added token. */
export interface AddedTokenRule {
  readonly lstrip: boolean;
  readonly rstrip: boolean;
  /** Matched in the normalized text: it does not end a normalizer section. */
  readonly normalized: boolean;
}

export interface TokenVocabulary {
  /** Bytes a model token spells in the aligned input, or undefined if it spells none. */
  bytesOf(id: number, token: string): Uint8Array | undefined;
  /** Added-token behaviour, or undefined for an ordinary model token. */
  addedRule(id: number): AddedTokenRule | undefined;
  /** Bytes of an added token as it appears in the text. */
  addedBytes(token: string): Uint8Array;
  readonly unkId: number | undefined;
}

export function tokenOffsets(
  input: AlignedBytes,
  ids: readonly number[],
  tokens: readonly string[],
  vocab: TokenVocabulary,
  prefixes: readonly SectionPrefix[],
  source: string,
): Array<[number, number]> {
  const bytes = input.bytes;
  const n = bytes.length;
  const offsets: Array<[number, number]> = new Array(ids.length);
  let cursor = 0;
  let atSection = true;
  let atSubsection = true;
  let inFirstSection = true;
  // Inserted bytes still to be spelled by the coming tokens, and the range they take.
  let pending: Uint8Array | undefined;
  let pendingAt = 0;
  let pendingRange: [number, number] = [0, 0];

  const fail = (i: number, why: string): never => {
    const at = input.positionOf(Math.min(cursor, n));
    const context = JSON.stringify(input.text.slice(Math.max(0, at - 10), at + 10));
    throw new LoupeError(
      "tokenizer-mismatch",
      `${source}: token ${i} (${JSON.stringify(tokens[i])}, id ${ids[i]}) ${why} at character ${at} (near ${context}). ` +
        "This tokenizer changes the text in a way Loupe cannot map back to exact character ranges.",
      source,
    );
  };
  const skipWhitespace = () => {
    while (cursor < n && isWhitespace(input.text, input.positionOf(cursor))) cursor = input.nextCharacter(cursor);
  };

  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    // <unk> is often an added token too: in the text literally, or standing for an unknown character.
    const added = vocab.addedRule(id);
    const unknown = id === vocab.unkId && !(added && matches(bytes, cursor, vocab.addedBytes(tokens[i])));
    if (added && !unknown) {
      if (pending) fail(i, "comes where the tokenizer's inserted prefix is not finished");
      const from = cursor;
      if (added.lstrip) skipWhitespace();
      const content = vocab.addedBytes(tokens[i]);
      if (!matches(bytes, cursor, content)) fail(i, "is not in the text");
      cursor += content.length;
      if (added.rstrip) skipWhitespace();
      offsets[i] = input.range(from, cursor);
      atSubsection = true;
      if (!added.normalized) {
        atSection = true;
        inFirstSection = false;
      }
      continue;
    }

    if (atSubsection) {
      for (const prefix of prefixes) {
        const applies = prefix.scope === "subsection" || (prefix.scope === "section" && atSection) || (prefix.scope === "first" && inFirstSection);
        if (!applies) continue;
        if (prefix.unlessStartsWith && startsWithAfter(pending, bytes, cursor, prefix.unlessStartsWith)) continue;
        pending = pending ? joinBytes(pending, prefix.bytes) : prefix.bytes;
      }
      if (pending) {
        pendingAt = 0;
        const at = input.positionOf(cursor);
        pendingRange = cursor < n ? [at, at + codePointLength(input.text, at)] : [at, at];
      }
      atSection = atSubsection = false;
    }

    if (unknown) {
      // An unknown character: one character of the input, whatever its bytes.
      if (cursor >= n) fail(i, "stands for a character past the end of the text");
      const from = cursor;
      cursor = input.nextCharacter(cursor);
      offsets[i] = input.range(from, cursor);
      continue;
    }

    const spelled = vocab.bytesOf(id, tokens[i]);
    if (!spelled) return fail(i, "spells no bytes");
    let k = 0;
    let start = Number.POSITIVE_INFINITY;
    let end = Number.NEGATIVE_INFINITY;
    if (pending) {
      while (k < spelled.length && pendingAt < pending.length) {
        if (spelled[k] !== pending[pendingAt]) fail(i, "does not start with the prefix the tokenizer inserts");
        k++;
        pendingAt++;
      }
      start = pendingRange[0];
      end = pendingRange[1];
      if (pendingAt === pending.length) pending = undefined;
    }
    const rest = spelled.length - k;
    if (rest > 0) {
      if (!matchesAt(bytes, cursor, spelled, k, rest)) fail(i, "does not match the text");
      const [s, e] = input.range(cursor, cursor + rest);
      start = Math.min(start, s);
      end = Math.max(end, e);
      cursor += rest;
    }
    offsets[i] = start <= end ? [start, end] : input.range(cursor, cursor);
  }

  if (pending) fail(ids.length - 1, "leaves the tokenizer's inserted prefix unfinished");
  if (cursor !== n) {
    const at = input.positionOf(cursor);
    throw new LoupeError(
      "tokenizer-mismatch",
      `${source}: the tokens cover the text only up to character ${at} of ${input.text.length} (the tokenizer dropped or changed the rest), so exact character ranges cannot be given.`,
      source,
    );
  }
  return offsets;
}

function matches(bytes: Uint8Array, at: number, expected: Uint8Array): boolean {
  return matchesAt(bytes, at, expected, 0, expected.length);
}

function matchesAt(bytes: Uint8Array, at: number, expected: Uint8Array, from: number, length: number): boolean {
  if (at + length > bytes.length) return false;
  for (let k = 0; k < length; k++) if (bytes[at + k] !== expected[from + k]) return false;
  return true;
}

/** Whether `pending` followed by bytes[at...] starts with `prefix`. */
function startsWithAfter(pending: Uint8Array | undefined, bytes: Uint8Array, at: number, prefix: Uint8Array): boolean {
  const head = pending ?? new Uint8Array(0);
  for (let k = 0; k < prefix.length; k++) {
    const b = k < head.length ? head[k] : bytes[at + k - head.length];
    if (b !== prefix[k]) return false;
  }
  return true;
}

function joinBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function codePointLength(text: string, at: number): number {
  return (text.codePointAt(at) ?? 0) > 0xffff ? 2 : 1;
}

const WHITESPACE = /\s/u;

/** JavaScript's notion of whitespace, which the JS tokenizer's lstrip/rstrip (trimEnd/trimStart) use. */
function isWhitespace(text: string, at: number): boolean {
  const cp = text.codePointAt(at);
  return cp !== undefined && WHITESPACE.test(String.fromCodePoint(cp));
}

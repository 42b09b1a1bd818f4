/**
 * The input text as the byte string its tokens are expected to spell, with the UTF-16 range of
 * the input that every byte comes from.
 *
 * For a byte-level tokenizer without a normalizer this is just the text's UTF-8, each byte
 * pointing at the character it encodes. A tokenizer that rewrites characters (Metaspace turns
 * " " into "▁", an NFC normalizer composes "e" + U+0301 into "é") is followed character by
 * character: the rewritten bytes point at the whole input character (or grapheme cluster, when a
 * normalizer runs) they were made from. The caller then walks the tokens' bytes over this string.
 */
import { LoupeError } from "../errors";
import { utf8 } from "./utf8";

export interface AlignOptions {
  /** Code points the pre-tokenizer replaces by a string, after normalization (Metaspace: " " -> "▁"). */
  readonly substitutions?: ReadonlyMap<number, string>;
  /**
   * The tokenizer's normalizer without its Prepend steps. It must act on each grapheme cluster on
   * its own (NFC, NFKC, lowercasing, replacing one character by another do); that is checked.
   */
  readonly normalize?: (text: string) => string;
  /** File named in errors. */
  readonly source?: string;
}

export class AlignedBytes {
  private constructor(
    readonly text: string,
    readonly bytes: Uint8Array,
    /** UTF-16 start of the input character (or cluster) each byte comes from. */
    private readonly starts: Uint32Array,
    /** UTF-16 end of that character (or cluster). */
    private readonly ends: Uint32Array,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  /** Input position of byte `at` (the text's length past the last byte). */
  positionOf(at: number): number {
    return at < this.bytes.length ? this.starts[at] : this.text.length;
  }

  /**
   * Smallest UTF-16 range covering every input character that bytes [from, to) come from. A byte
   * in the middle of a character still covers the whole character, so two tokens that share a
   * character's bytes both cover that character.
   */
  range(from: number, to: number): [number, number] {
    if (to <= from) {
      const at = this.positionOf(from);
      return [at, at];
    }
    return [this.starts[from], this.ends[to - 1]];
  }

  /** Index just past the bytes of the input character that byte `at` belongs to. */
  nextCharacter(at: number): number {
    const start = this.starts[at];
    let next = at + 1;
    while (next < this.bytes.length && this.starts[next] === start) next++;
    return next;
  }

  static build(text: string, options: AlignOptions = {}): AlignedBytes {
    const normalize = options.normalize;
    if (normalize) {
      const whole = normalize(text);
      if (whole !== text) return AlignedBytes.normalized(text, whole, normalize, options);
    }
    return AlignedBytes.byCodePoint(text, substitutionBytes(options.substitutions));
  }

  /** One code point at a time, with no normalization: the fast path. */
  private static byCodePoint(text: string, substitutions: ReadonlyMap<number, Uint8Array> | undefined): AlignedBytes {
    let length = 0;
    for (let i = 0; i < text.length; i++) {
      const cp = text.codePointAt(i) ?? 0;
      const sub = substitutions?.get(cp);
      length += sub ? sub.length : cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      if (cp > 0xffff) i++;
    }
    const bytes = new Uint8Array(length);
    const starts = new Uint32Array(length);
    const ends = new Uint32Array(length);
    let o = 0;
    for (let i = 0; i < text.length; ) {
      let cp = text.codePointAt(i) ?? 0;
      const units = cp > 0xffff ? 2 : 1;
      const from = o;
      const sub = substitutions?.get(cp);
      if (sub) {
        bytes.set(sub, o);
        o += sub.length;
      } else if (cp < 0x80) {
        bytes[o++] = cp;
      } else if (cp < 0x800) {
        bytes[o++] = 0xc0 | (cp >> 6);
        bytes[o++] = 0x80 | (cp & 0x3f);
      } else if (cp < 0x10000) {
        // A lone surrogate is written as U+FFFD, as TextEncoder (and so the tokenizers) do.
        if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
        bytes[o++] = 0xe0 | (cp >> 12);
        bytes[o++] = 0x80 | ((cp >> 6) & 0x3f);
        bytes[o++] = 0x80 | (cp & 0x3f);
      } else {
        bytes[o++] = 0xf0 | (cp >> 18);
        bytes[o++] = 0x80 | ((cp >> 12) & 0x3f);
        bytes[o++] = 0x80 | ((cp >> 6) & 0x3f);
        bytes[o++] = 0x80 | (cp & 0x3f);
      }
      starts.fill(i, from, o);
      ends.fill(i + units, from, o);
      i += units;
    }
    return new AlignedBytes(text, bytes, starts, ends);
  }

  /**
   * Through a normalizer. Each code point is normalized on its own where that gives the same
   * text (replacing or lowercasing characters); a base character and the marks that follow it,
   * when they change together (NFC composing e + U+0301 into é), are normalized as one piece
   * whose output points at all of them. The pieces must join to the normalization of the whole
   * text, otherwise the normalizer moves text across characters and no honest range exists.
   */
  private static normalized(text: string, whole: string, normalize: (text: string) => string, options: AlignOptions): AlignedBytes {
    const cache = new Map<string, string>();
    const normalizeCached = (s: string) => {
      let out = cache.get(s);
      if (out === undefined) cache.set(s, (out = normalize(s)));
      return out;
    };
    const pieces: Piece[] = [];
    for (const match of text.matchAll(BASE_AND_MARKS)) {
      const chunk = match[0];
      const start = match.index ?? 0;
      const together = normalizeCached(chunk);
      const first = (text.codePointAt(start) ?? 0) > 0xffff ? 2 : 1;
      if (first === chunk.length) {
        pieces.push({ text: together, start, end: start + first });
        continue;
      }
      const apart = codePointPieces(text, start, start + chunk.length, normalizeCached);
      if (joinPieces(apart) === together) pieces.push(...apart);
      else pieces.push({ text: together, start, end: start + chunk.length });
    }
    if (joinPieces(pieces) !== whole) {
      const file = options.source ?? "tokenizer.json";
      throw new LoupeError(
        "tokenizer-mismatch",
        `${file}: the tokenizer's normalizer changes this text across character boundaries, so its tokens cannot be mapped back to exact character ranges.`,
        file,
      );
    }
    const encoded = pieces.map((p) => utf8(substitute(p.text, options.substitutions)));
    const length = encoded.reduce((n, b) => n + b.length, 0);
    const bytes = new Uint8Array(length);
    const starts = new Uint32Array(length);
    const ends = new Uint32Array(length);
    let o = 0;
    pieces.forEach((piece, k) => {
      const b = encoded[k];
      bytes.set(b, o);
      starts.fill(piece.start, o, o + b.length);
      ends.fill(piece.end, o, o + b.length);
      o += b.length;
    });
    return new AlignedBytes(text, bytes, starts, ends);
  }
}

/**
 * Code points a normalizer may merge into the one before them: combining marks, and Hangul vowel
 * and final jamo (which NFC composes with a leading consonant into a syllable).
 */
const JOINING = "\\p{M}\\u{1160}-\\u{11FF}\\u{D7B0}-\\u{D7FF}";
/** A base character with the joining code points after it (or a run of them at the start). */
const BASE_AND_MARKS = new RegExp(`[^${JOINING}][${JOINING}]*|[${JOINING}]+`, "gsu");

interface Piece {
  /** Normalized text of input [start, end). */
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

function codePointPieces(text: string, from: number, to: number, normalize: (s: string) => string): Piece[] {
  const pieces: Piece[] = [];
  for (let i = from; i < to; ) {
    const units = (text.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
    pieces.push({ text: normalize(text.slice(i, i + units)), start: i, end: i + units });
    i += units;
  }
  return pieces;
}

function joinPieces(pieces: readonly Piece[]): string {
  let s = "";
  for (const p of pieces) s += p.text;
  return s;
}

function substitutionBytes(substitutions: ReadonlyMap<number, string> | undefined): ReadonlyMap<number, Uint8Array> | undefined {
  if (!substitutions || substitutions.size === 0) return undefined;
  return new Map([...substitutions].map(([cp, s]) => [cp, utf8(s)]));
}

function substitute(text: string, substitutions: ReadonlyMap<number, string> | undefined): string {
  if (!substitutions || substitutions.size === 0) return text;
  let out = "";
  for (const ch of text) out += substitutions.get(ch.codePointAt(0) ?? 0) ?? ch;
  return out;
}

/**
 * Random text that stresses UTF-16 offset bookkeeping: astral characters, lone surrogate halves,
 * emoji ZWJ sequences, combining marks, CRLF, NUL and other controls, RTL, BOM, CJK.
 */
import type { Prng } from "./prng";

const PIECES: readonly string[] = [
  "\u0000", "\r\n", "\n", "\r", "\t", "\u000b", "\u001f", "\u007f", "\u0085", "\u2028", "\u2029", "\ufeff",
  "\u200b", "\u200d", "\u00a0", "\u3000",
  "e\u0301", "a\u0308\u0323", "\u0301", "\u0345\u0345\u0345",
  "👩‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇫🇷", "🧑🏿‍🚀", "😀", "\ud83d\ude00\ud83d",
  "\ud800", "\udfff", "\udc00\ud800", "\ud83d",
  "日本語", "한국어", "中文字", "שלום", "مرحبا", "\u202e", "\u202d",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "𐍈", "\u{10ffff}", "\ufffd", "\ufffe", "\uffff",
  " ", "  ", "    ", "'s", "'ll", "!!", "...", "1234567890", "The answer is", "<|endoftext|>", "<|endoftext", "|>",
  "Mia", " Leo", "park", "Q:", "A:",
];

/** One random code unit, code point or piece. */
function piece(rng: Prng): string {
  switch (rng.int(0, 5)) {
    case 0:
      return rng.pick(PIECES);
    case 1:
      return String.fromCharCode(rng.int(0x20, 0x7e));
    case 2:
      // Any code unit at all, surrogate halves included.
      return String.fromCharCode(rng.int(0, 0xffff));
    case 3:
      return String.fromCodePoint(rng.int(0x10000, 0x10ffff));
    case 4:
      return String.fromCodePoint(rng.int(0x80, 0x2fff));
    default:
      return rng.pick(["a", "e", " ", "t", "o", "n"]).repeat(rng.int(1, 4));
  }
}

export function randomText(rng: Prng, maxPieces = 40): string {
  const n = rng.small(maxPieces) + (rng.chance(0.95) ? 1 : 0);
  let text = "";
  for (let i = 0; i < n; i++) text += piece(rng);
  return text;
}

/** True when every surrogate in the string is part of a pair. */
export function isWellFormed(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = text.charCodeAt(i + 1);
      if (!(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    } else if (c >= 0xdc00 && c <= 0xdfff) return false;
  }
  return true;
}

/**
 * GPT-2's byte-level alphabet. Byte-level BPE vocabularies are strings, yet they must describe
 * arbitrary bytes, so each byte 0..255 is drawn as one printable character: printable Latin-1
 * bytes stand for themselves, the others move to U+0100 upwards in byte order (space -> "Ġ",
 * newline -> "Ċ"). A token like "Ġthe" therefore spells the bytes of " the".
 */
const isPrintable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);

/** The alphabet character for each byte. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const chars: string[] = [];
  let moved = 0;
  for (let b = 0; b < 256; b++) chars.push(String.fromCharCode(isPrintable(b) ? b : 256 + moved++));
  return chars;
})();

/** Byte for each alphabet character code (all codes are below U+0144), -1 for others. */
const CODE_TO_BYTE: Int16Array = (() => {
  const table = new Int16Array(0x144).fill(-1);
  BYTE_TO_CHAR.forEach((ch, b) => (table[ch.charCodeAt(0)] = b));
  return table;
})();

/** The bytes a byte-level token spells, or undefined if it has a character outside the alphabet. */
export function byteLevelToBytes(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const code = token.charCodeAt(i);
    const b = code < CODE_TO_BYTE.length ? CODE_TO_BYTE[code] : -1;
    if (b < 0) return undefined;
    out[i] = b;
  }
  return out;
}


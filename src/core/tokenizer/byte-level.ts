/**
 * GPT-2's byte-level alphabet: each byte 0..255 is shown as a printable character, so a BPE
 * vocabulary of strings can describe arbitrary bytes. Printable Latin-1 bytes stand for
 * themselves; the others are moved to code points from U+0100 upwards, in byte order.
 */
function buildAlphabet(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const byteToChar: string[] = new Array(256);
  let next = 0;
  for (let b = 0; b < 256; b++) byteToChar[b] = String.fromCodePoint(printable(b) ? b : 256 + next++);
  const charToByte = new Map(byteToChar.map((c, b) => [c, b]));
  return { byteToChar, charToByte };
}

const { byteToChar, charToByte } = buildAlphabet();

export const BYTE_TO_CHAR: readonly string[] = byteToChar;

/** The bytes a byte-level token stands for, or undefined if it has a character outside the alphabet. */
export function byteLevelTokenBytes(token: string): Uint8Array | undefined {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = charToByte.get(ch);
    if (b === undefined) return undefined;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

export function bytesToByteLevel(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += byteToChar[b];
  return s;
}

/** The bytes a vocabulary token spells in the (aligned) input, for each kind of tokenizer. */
import { byteLevelToBytes } from "./byte-level-alphabet";
import type { Spelling } from "./tokenizer-spec";
import { utf8 } from "./utf8";

const BYTE_FALLBACK = /^<0x([0-9A-Fa-f]{2})>$/;

/**
 * Byte-level tokens spell one byte per character of GPT-2's alphabet. Text tokens spell their own
 * UTF-8 ("▁" included: the aligned input carries "▁" where the text has a space), except
 * byte-fallback tokens like <0xE2>, which spell that single byte.
 */
export function spellToken(token: string, spelling: Spelling, byteFallback: boolean): Uint8Array | undefined {
  if (spelling === "byte-level") return byteLevelToBytes(token);
  if (byteFallback) {
    const hex = BYTE_FALLBACK.exec(token);
    if (hex) return Uint8Array.of(Number.parseInt(hex[1], 16));
  }
  return utf8(token);
}

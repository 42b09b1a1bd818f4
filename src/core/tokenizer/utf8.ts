/** Small UTF-8 helpers shared by the tokenizer modules. */

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF-8 bytes of a string; a lone surrogate becomes U+FFFD (EF BF BD), as everywhere in JS. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Length of the UTF-8 sequence a lead byte announces (1 for stray continuation bytes). */
function utf8SequenceLength(leadByte: number): number {
  if (leadByte >= 0xf0 && leadByte <= 0xf4) return 4;
  if (leadByte >= 0xe0) return leadByte <= 0xef ? 3 : 1;
  if (leadByte >= 0xc2) return 2;
  return 1;
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * Readable form of a byte string that may cut characters: complete UTF-8 characters as text,
 * stray bytes as <0xNN> (the notation SentencePiece byte-fallback tokens use).
 */
export function describeBytes(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    // Some bytes do not form whole characters: show those one by one.
  }
  let out = "";
  let i = 0;
  while (i < bytes.length) {
    const width = utf8SequenceLength(bytes[i]);
    if (bytes[i] >= 0x80 && width === 1) {
      out += hexByte(bytes[i]);
      i += 1;
      continue;
    }
    try {
      out += strictDecoder.decode(bytes.subarray(i, i + width));
      i += width;
    } catch {
      out += hexByte(bytes[i]);
      i += 1;
    }
  }
  return out;
}

function hexByte(b: number): string {
  return `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`;
}

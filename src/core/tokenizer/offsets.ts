/**
 * Map byte positions of a string's UTF-8 encoding to UTF-16 indices.
 *
 * A token's range is the smallest UTF-16 range covering every character any of its bytes belong
 * to. When one character's bytes are split over two tokens (an emoji cut by BPE), both tokens
 * cover the whole character, so their ranges overlap; this is what the Hugging Face Rust
 * tokenizer reports too, and it keeps every range on character boundaries.
 */
export class Utf8Index {
  /** For each byte offset (0..byteLength), the UTF-16 index of the character containing it. */
  private readonly charStart: Uint32Array;
  /** For each byte offset, the UTF-16 index just after the character containing it. */
  private readonly charEnd: Uint32Array;
  readonly bytes: Uint8Array;

  constructor(readonly text: string) {
    this.bytes = new TextEncoder().encode(text);
    this.charStart = new Uint32Array(this.bytes.length + 1);
    this.charEnd = new Uint32Array(this.bytes.length + 1);
    let byte = 0;
    for (let i = 0; i < text.length; ) {
      const cp = text.codePointAt(i) ?? 0;
      const units = cp > 0xffff ? 2 : 1;
      // A lone surrogate is encoded by TextEncoder as U+FFFD (3 bytes).
      const isLoneSurrogate = cp >= 0xd800 && cp <= 0xdfff;
      const width = isLoneSurrogate ? 3 : cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
      for (let k = 0; k < width; k++) {
        this.charStart[byte + k] = i;
        this.charEnd[byte + k] = i + units;
      }
      byte += width;
      i += units;
    }
    this.charStart[byte] = text.length;
    this.charEnd[byte] = text.length;
  }

  /** UTF-16 range of the bytes [byteStart, byteEnd). */
  range(byteStart: number, byteEnd: number): [number, number] {
    if (byteEnd <= byteStart) {
      const at = this.charStart[byteStart];
      return [at, at];
    }
    return [this.charStart[byteStart], this.charEnd[byteEnd - 1]];
  }
}

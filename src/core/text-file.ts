/**
 * Text files as the user wrote them. A prompt saved in another encoding (Latin-1 "Renée") is not
 * UTF-8; decoding it leniently turns each such byte into U+FFFD, and the model would then be
 * analysed on replacement characters. Decoding is strict: bytes that are not valid in the chosen
 * encoding stop the run with the place and the fix.
 */
import * as fs from "node:fs";
import { LoupeError } from "./errors";

export const DEFAULT_ENCODING = "utf-8";

export interface TextOptions {
  /** A WHATWG encoding label (utf-8, latin1, utf-16le, ...); default UTF-8. */
  readonly encoding?: string;
  /** What else the user can do besides saving as UTF-8, said after it (the CLI: pass --encoding). */
  readonly advice?: string;
}

/**
 * Decode `bytes` read from `source` (a file name, or "standard input"); on bytes the encoding lacks,
 * throws a LoupeError naming the source, the first bad byte and the fix.
 */
export function decodeText(bytes: Uint8Array, source: string, options: TextOptions = {}): string {
  const encoding = options.encoding ?? DEFAULT_ENCODING;
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(encoding, { fatal: true });
  } catch {
    throw new LoupeError("bad-argument", `Unknown text encoding "${encoding}" for ${source}. Use a WHATWG encoding label such as utf-8, latin1 (windows-1252), utf-16le or shift_jis.`);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    const utf8 = decoder.encoding === "utf-8";
    const at = utf8 ? firstInvalidUtf8(bytes) : undefined;
    const where = at === undefined ? "" : ` (byte 0x${bytes[at].toString(16).toUpperCase().padStart(2, "0")} at ${lineAndColumn(bytes, at)})`;
    throw new LoupeError(
      "bad-file",
      `${source} is not valid ${utf8 ? "UTF-8" : decoder.encoding} text${where}; Loupe does not analyse replacement characters in place of what was written. Save it as UTF-8${options.advice ? `, ${options.advice}` : ""}.`,
      source,
    );
  }
}

/** Read a whole text file strictly (see decodeText); a file that cannot be read is a missing-file error naming it. */
export function readTextFile(file: string, options: TextOptions = {}): string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (error) {
    throw new LoupeError("missing-file", `Cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}).`, file);
  }
  return decodeText(bytes, file, options);
}

/** Offset of the first byte that starts no valid UTF-8 sequence (the lead byte of a broken one). */
function firstInvalidUtf8(bytes: Uint8Array): number | undefined {
  for (let i = 0; i < bytes.length; ) {
    const lead = bytes[i];
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead < 0xe0 ? 2 : lead >= 0xe0 && lead < 0xf0 ? 3 : lead >= 0xf0 && lead < 0xf5 ? 4 : 0;
    if (length === 0 || i + length > bytes.length) return i;
    // One decode per sequence settles overlong forms and surrogates too.
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(i, i + length));
    } catch {
      return i;
    }
    i += length;
  }
  return undefined;
}

/** "line L, column C" of a byte offset (columns in characters of the valid text before it). */
function lineAndColumn(bytes: Uint8Array, offset: number): string {
  const before = new TextDecoder("utf-8").decode(bytes.subarray(0, offset));
  const lines = before.split("\n");
  return `line ${lines.length}, column ${lines[lines.length - 1].length + 1}`;
}

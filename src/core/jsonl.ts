/**
 * JSONL as Loupe reads it from the workspace (probe datasets, patching pairs, SAE corpora): one
 * JSON object a line, blank lines skipped. Every error names the file and the 1-based line.
 * jsonlRecords parses text the caller read; readJsonlRecords streams a file (the extension host
 * stays responsive, and a 1 GB line is refused when it passes the cap, not after it is read).
 */
import * as fs from "node:fs";
import { LoupeError } from "./errors";
import { checkFilePath, type SafeFileOptions } from "./safe-fs";

const NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;

/** Longest line read (UTF-16 code units): a prompt, not a corpus, fits on one line. */
export const MAX_JSONL_LINE_CHARS = 1 << 20;
/** Largest JSONL file read. */
export const MAX_JSONL_FILE_BYTES = 256 * 1024 * 1024;

export interface JsonlRecord {
  readonly record: Record<string, unknown>;
  /** 1-based line in the file. */
  readonly line: number;
  /** Throw a bad-file error for this line. */
  readonly fail: (why: string) => never;
}

function lineFailure(file: string, line: number): (why: string) => never {
  return (why: string): never => {
    throw new LoupeError("bad-file", `${file}:${line}: ${why}`, file);
  };
}

function longLine(file: string, line: number): LoupeError {
  return new LoupeError("file-too-large", `${file}:${line}: the line is longer than ${MAX_JSONL_LINE_CHARS} characters, Loupe's limit for one JSONL record. Split it into shorter examples.`, file);
}

/** One line's record, or undefined for a blank line. */
function parseLine(raw: string, line: number, file: string, example: string): JsonlRecord | undefined {
  if (raw.trim() === "") return undefined;
  if (raw.length > MAX_JSONL_LINE_CHARS) throw longLine(file, line);
  const fail = lineFailure(file, line);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    fail(`not valid JSON (${(error as Error).message}). Each line must be one JSON object such as ${example}.`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) fail(`expected a JSON object such as ${example}.`);
  return { record: value as Record<string, unknown>, line, fail };
}

/** `example` is one well-formed line, quoted in the errors for lines that are not an object. */
export function jsonlRecords(content: string, file: string, example: string): JsonlRecord[] {
  const out: JsonlRecord[] = [];
  content.split(/\r?\n/).forEach((raw, index) => {
    const record = parseLine(raw, index + 1, file, example);
    if (record) out.push(record);
  });
  return out;
}

/**
 * Stream `file`'s records without blocking: chunks are read asynchronously and each line parsed
 * as it completes. Refuses links (and, under a root, paths leaving it), files over
 * MAX_JSONL_FILE_BYTES and lines over MAX_JSONL_LINE_CHARS as soon as they are seen.
 */
export async function readJsonlRecords(file: string, example: string, options: SafeFileOptions = {}): Promise<JsonlRecord[]> {
  // Under a root (the workspace) the file may not be a link; a file the user picked may be.
  const absolute = options.root === undefined ? file : checkFilePath(file, options).path;
  if (!fs.existsSync(absolute)) throw new LoupeError("missing-file", `Cannot read ${file}: it does not exist.`, file);
  const handle = await fs.promises.open(absolute, fs.constants.O_RDONLY | (options.root === undefined ? 0 : NOFOLLOW));
  const size = (await handle.stat()).size;
  if (size > MAX_JSONL_FILE_BYTES) {
    await handle.close();
    throw new LoupeError("file-too-large", `${file} is ${(size / 1048576).toFixed(0)} MB, over Loupe's ${MAX_JSONL_FILE_BYTES / 1048576} MB limit for a JSONL file. Use a sample of it.`, file);
  }
  const out: JsonlRecord[] = [];
  let pending = "";
  let line = 0;
  const stream = handle.createReadStream({ highWaterMark: 1 << 16 });
  // Strict, as readTextFile: a byte that is not UTF-8 stops the read rather than becoming U+FFFD.
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const decode = (bytes?: Buffer): string => {
    try {
      return bytes ? decoder.decode(bytes, { stream: true }) : decoder.decode();
    } catch {
      throw new LoupeError("bad-file", `${file} is not valid UTF-8 text (a bad byte on or after line ${line + 1}). Save the file as UTF-8.`, file);
    }
  };
  try {
    for await (const bytes of stream as AsyncIterable<Buffer>) {
      const parts = (pending + decode(bytes)).split("\n");
      pending = parts.pop() ?? "";
      if (pending.length > MAX_JSONL_LINE_CHARS) throw longLine(file, line + parts.length + 1);
      for (const raw of parts) {
        const record = parseLine(raw.endsWith("\r") ? raw.slice(0, -1) : raw, ++line, file, example);
        if (record) out.push(record);
      }
    }
  } finally {
    stream.destroy();
  }
  const last = parseLine(pending + decode(), ++line, file, example);
  if (last) out.push(last);
  return out;
}

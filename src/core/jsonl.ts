/**
 * JSONL as Loupe reads it from the workspace (probe datasets, patching pairs, SAE corpora): one
 * JSON object a line, blank lines skipped. Every error names the file and the 1-based line. Pure:
 * the caller reads the file and checks each record's fields with the line's `fail`.
 */
import { LoupeError } from "./errors";

export interface JsonlRecord {
  readonly record: Record<string, unknown>;
  /** 1-based line in the file. */
  readonly line: number;
  /** Throw a bad-file error for this line. */
  readonly fail: (why: string) => never;
}

/** `example` is one well-formed line, quoted in the errors for lines that are not an object. */
export function jsonlRecords(content: string, file: string, example: string): JsonlRecord[] {
  const out: JsonlRecord[] = [];
  content.split(/\r?\n/).forEach((raw, index) => {
    if (raw.trim() === "") return;
    const line = index + 1;
    const fail = (why: string): never => {
      throw new LoupeError("bad-file", `${file}:${line}: ${why}`, file);
    };
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      fail(`not valid JSON (${(error as Error).message}). Each line must be one JSON object such as ${example}.`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) fail(`expected a JSON object such as ${example}.`);
    out.push({ record: value as Record<string, unknown>, line, fail });
  });
  return out;
}

/**
 * Probe datasets: JSONL, one example a line, in one of two shapes for the whole file:
 *
 *   {"text": "Mia was happy.", "label": "positive"}                          sequence level
 *   {"text": "Mia saw a red fox.", "spans": [{"start": 10, "end": 13, "label": "colour"}]}   token level
 *
 * Span offsets are UTF-16 code units (JavaScript string indices), end exclusive. Other fields are
 * ignored, so the bench's records (bench/data/heldout-*.jsonl) are token-level datasets as they
 * stand. Every error names the file and the line.
 */
import { LoupeError } from "../errors";
import { jsonlRecords } from "../jsonl";
import { readTextFile } from "../text-file";

export interface LabelledSpan {
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

export interface SequenceExample {
  readonly text: string;
  readonly label: string;
  /** 1-based line in the source file. */
  readonly line: number;
}

export interface TokenExample {
  readonly text: string;
  readonly spans: readonly LabelledSpan[];
  readonly line: number;
}

export type ProbeDataset =
  | { readonly level: "sequence"; readonly file: string; readonly examples: readonly SequenceExample[] }
  | { readonly level: "token"; readonly file: string; readonly examples: readonly TokenExample[] };

/** The label of tokens outside every span. */
export const OUTSIDE_LABEL = "none";

export function readProbeDataset(file: string): ProbeDataset {
  return parseProbeDataset(readTextFile(file), file);
}

export function parseProbeDataset(content: string, file = "<input>"): ProbeDataset {
  const sequence: SequenceExample[] = [];
  const token: TokenExample[] = [];
  let level: "sequence" | "token" | undefined;
  let firstLine = 0;
  for (const { record, line, fail } of jsonlRecords(content, file, '{"text": "...", "label": "..."}')) {
    if (typeof record.text !== "string") fail(`"text" must be a string.`);
    const text = record.text as string;
    if (text.length === 0) fail(`"text" is empty.`);
    const hasLabel = record.label !== undefined;
    const hasSpans = record.spans !== undefined;
    if (hasLabel === hasSpans) fail(hasLabel ? `give "label" (sequence level) or "spans" (token level), not both.` : `missing "label" (sequence level) or "spans" (token level).`);
    const kind = hasLabel ? "sequence" : "token";
    if (level === undefined) {
      level = kind;
      firstLine = line;
    } else if (level !== kind) {
      fail(`this line is ${kind} level (${hasLabel ? '"label"' : '"spans"'}) but line ${firstLine} is ${level} level; keep one kind per file.`);
    }
    if (hasLabel) {
      const label = record.label;
      if (typeof label === "number" || typeof label === "boolean") sequence.push({ text, label: String(label), line });
      else if (typeof label === "string" && label !== "") sequence.push({ text, label, line });
      else fail(`"label" must be a non-empty string, a number or a boolean.`);
      continue;
    }
    if (!Array.isArray(record.spans)) fail(`"spans" must be an array of {"start", "end", "label"}.`);
    const spans = (record.spans as unknown[]).map((s, i): LabelledSpan => {
      const span = s as Record<string, unknown> | null;
      if (typeof span !== "object" || span === null) return fail(`span ${i} is not an object.`);
      const { start, end, label } = span;
      if (typeof label !== "string" || label === "") return fail(`span ${i} needs a non-empty string "label".`);
      if (!Number.isInteger(start) || !Number.isInteger(end)) return fail(`span ${i} ("${label}") needs integer "start" and "end" (UTF-16 offsets).`);
      const [a, b] = [start as number, end as number];
      if (a < 0 || b > text.length || a >= b) return fail(`span ${i} ("${label}") [${a}, ${b}) is not a non-empty range inside the text (length ${text.length}).`);
      return { start: a, end: b, label };
    });
    token.push({ text, spans, line });
  }
  if (level === undefined) throw new LoupeError("empty-input", `${file} has no examples: write one JSON object a line.`, file);
  return level === "sequence" ? { level, file, examples: sequence } : { level, file, examples: token };
}

export interface TokenLabelOptions {
  /** One-vs-rest: tokens in a span with this label get it, every other token gets `outside`. */
  readonly concept?: string;
  /** Label of tokens outside the spans (default "none"). */
  readonly outside?: string;
}

/**
 * The label of each token: a token takes a span's label when its UTF-16 range overlaps the span
 * (GPT-2's " red" covers the space before "red" too). Where spans nest (a colour inside a quote),
 * the innermost, shortest span wins, so the more specific concept is kept.
 */
export function tokenLabels(offsets: readonly (readonly [number, number])[], spans: readonly LabelledSpan[], options: TokenLabelOptions = {}): string[] {
  const outside = options.outside ?? OUTSIDE_LABEL;
  const relevant = options.concept === undefined ? spans : spans.filter((s) => s.label === options.concept);
  return offsets.map(([start, end]) => {
    let best: LabelledSpan | undefined;
    for (const s of relevant) {
      if (start < s.end && s.start < end && (!best || s.end - s.start < best.end - best.start)) best = s;
    }
    return best ? best.label : outside;
  });
}

/** Every span label in a token-level dataset, sorted. */
export function spanLabels(dataset: ProbeDataset): string[] {
  if (dataset.level !== "token") return [];
  return [...new Set(dataset.examples.flatMap((e) => e.spans.map((s) => s.label)))].sort();
}

/** One JSON object a line: the inverse of parseProbeDataset. */
export function toJsonl(examples: readonly ({ text: string; label: string } | { text: string; spans: readonly LabelledSpan[] })[]): string {
  return examples.map((e) => JSON.stringify("label" in e ? { text: e.text, label: e.label } : { text: e.text, spans: e.spans })).join("\n") + "\n";
}

/**
 * Quick labelling of a document: each line given a label (by 0-based line index) becomes a
 * sequence-level example; blank lines are skipped. The editor's "label lines" command builds on this.
 */
export function labelLines(documentText: string, labels: ReadonlyMap<number, string>): { text: string; label: string }[] {
  const lines = documentText.split(/\r?\n/);
  const out: { text: string; label: string }[] = [];
  for (const [index, label] of [...labels].sort((a, b) => a[0] - b[0])) {
    const text = lines[index];
    if (text === undefined) throw new LoupeError("bad-argument", `Line ${index + 1} is past the end of the document (${lines.length} lines).`);
    if (text.trim() !== "" && label !== "") out.push({ text, label });
  }
  return out;
}

/**
 * Patching pair files: JSONL, one clean / corrupted pair a line, the way IOI-style datasets are
 * kept beside a TransformerLens notebook:
 *
 *   {"clean": "When Mia and Leo went to the park, Leo gave a ball to", "corrupted": "When Mia and Leo went to the park, Mia gave a ball to", "answer": " Mia", "wrong": " Leo"}
 *
 * "answer" and "wrong" are optional, as with `loupe patch` (both: logit difference; answer alone:
 * its log-prob; neither: KL to the clean run). Other fields are ignored. Every error names the file
 * and the line. Pure: the caller reads the file.
 */
import { LoupeError } from "../errors";
import { jsonlRecords } from "../jsonl";

export interface PatchingPair {
  readonly clean: string;
  readonly corrupted: string;
  readonly answer?: string;
  readonly wrong?: string;
  /** 1-based line in the file. */
  readonly line: number;
}

export function parsePairFile(content: string, file = "<input>"): PatchingPair[] {
  const pairs = jsonlRecords(content, file, '{"clean": "...", "corrupted": "...", "answer": " Mia", "wrong": " Leo"}').map(({ record, line, fail }): PatchingPair => {
    const text = (key: string, required: boolean): string | undefined => {
      const v = record[key];
      if (v === undefined && !required) return undefined;
      if (typeof v !== "string") return fail(v === undefined ? `missing "${key}".` : `"${key}" must be a string.`);
      if (v.trim() === "") fail(`"${key}" is empty.`);
      return v;
    };
    const clean = text("clean", true) as string;
    const corrupted = text("corrupted", true) as string;
    const answer = text("answer", false);
    const wrong = text("wrong", false);
    if (wrong !== undefined && answer === undefined) fail(`"wrong" needs an "answer": the metric is the logit difference answer - wrong.`);
    return { clean, corrupted, ...(answer === undefined ? {} : { answer }), ...(wrong === undefined ? {} : { wrong }), line };
  });
  if (pairs.length === 0) throw new LoupeError("empty-input", `${file} holds no pairs: each line should be {"clean": "...", "corrupted": "..."}.`, file);
  return pairs;
}

const ESCAPED: Record<string, true> = { '"': true, "\\": true, "/": true, b: true, f: true, n: true, r: true, t: true };

/**
 * Where each character of a top-level string value sits in its JSON line: map[i] is the line
 * offset of the value's character i, map[value.length] the offset of the closing quote. Lets an
 * editor select a token of the decoded text in the raw line, escapes and all. Undefined when the
 * key's literal cannot be found or does not decode to `expected`.
 */
export function stringValueOffsets(line: string, key: string, expected: string): number[] | undefined {
  const keyLiteral = JSON.stringify(key);
  for (let at = line.indexOf(keyLiteral); at >= 0; at = line.indexOf(keyLiteral, at + 1)) {
    if (at > 0 && line[at - 1] === "\\") continue; // inside another string
    const colon = /^\s*:\s*"/.exec(line.slice(at + keyLiteral.length));
    if (!colon) continue;
    const map: number[] = [];
    let decoded = "";
    let i = at + keyLiteral.length + colon[0].length;
    while (i < line.length && line[i] !== '"') {
      map.push(i);
      if (line[i] !== "\\") {
        decoded += line[i++];
      } else if (line[i + 1] === "u" && /^[0-9a-fA-F]{4}$/.test(line.slice(i + 2, i + 6))) {
        decoded += String.fromCharCode(parseInt(line.slice(i + 2, i + 6), 16));
        i += 6;
      } else if (ESCAPED[line[i + 1]]) {
        decoded += JSON.parse(`"${line.slice(i, i + 2)}"`) as string;
        i += 2;
      } else {
        break;
      }
    }
    if (line[i] !== '"' || decoded !== expected) continue;
    map.push(i);
    return map;
  }
  return undefined;
}

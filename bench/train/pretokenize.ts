/**
 * Tokenizes the training corpus for the PyTorch trainer: uint16 token ids and a uint8 loss mask
 * (0 on tokens that overlap a "wrong-step" span, whose arithmetic the model must not learn),
 * records joined by <|endoftext|>.
 *
 *   npx tsx bench/train/pretokenize.ts bench/data/train.jsonl models/reference/tokenizer.json bench/data/train
 */
import * as fs from "node:fs";
import { Tokenizer } from "../../src/core/tokenizer";
import type { TaskRecord } from "../tasks/record";

const [input, tokenizerFile, outPrefix] = process.argv.slice(2);
const tokenizer = Tokenizer.fromFile(tokenizerFile);
const eos = tokenizer.eosTokenId;
if (eos === undefined) throw new Error("the tokenizer has no <|endoftext|>");
const ids: number[] = [];
const mask: number[] = [];
for (const line of fs.readFileSync(input, "utf8").split("\n")) {
  if (!line) continue;
  const record = JSON.parse(line) as TaskRecord;
  const masked = record.spans.filter((s) => s.label === "wrong-step");
  const encoding = tokenizer.encode(record.text);
  encoding.ids.forEach((id, i) => {
    const [start, end] = encoding.offsets[i];
    ids.push(id);
    mask.push(masked.some((s) => start < s.end && end > s.start) ? 0 : 1);
  });
  ids.push(eos);
  mask.push(1);
}
fs.writeFileSync(`${outPrefix}.ids.u16`, Buffer.from(Uint16Array.from(ids).buffer));
fs.writeFileSync(`${outPrefix}.mask.u8`, Buffer.from(Uint8Array.from(mask).buffer));
console.log(`${ids.length} tokens, ${mask.filter((m) => m === 0).length} masked`);

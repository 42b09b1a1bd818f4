/**
 * A deterministic byte-level BPE trainer that writes a Hugging Face tokenizer.json (GPT-2 style:
 * ByteLevel pre-tokenizer and decoder, `<|endoftext|>` as the special token). Dev-time tool for the
 * reference model's tokenizer and the test fixtures.
 *
 *   npx tsx bench/tokenizer/train-bpe.ts --vocab 1500 --out models/reference/tokenizer.json FILE...
 *
 * Pair counts are kept over unique pre-tokenized words with their counts and updated only for the
 * words a merge touches, so a few megabytes of text train in seconds.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { BYTE_TO_CHAR } from "../../src/core/tokenizer/byte-level";

/** GPT-2's pre-tokenizer split: contractions, letters, numbers, other symbols, whitespace. */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
export const END_OF_TEXT = "<|endoftext|>";

export interface TrainOptions {
  /** Total vocabulary size including the 256 byte tokens and the special token. */
  readonly vocabSize: number;
  readonly specialTokens?: readonly string[];
}

interface Word {
  symbols: string[];
  readonly count: number;
}

const pairKey = (a: string, b: string) => `${a}\u0000${b}`;

export function trainByteLevelBpe(texts: readonly string[], options: TrainOptions): object {
  const specials = options.specialTokens ?? [END_OF_TEXT];
  const merges: [string, string][] = [];
  const targetMerges = options.vocabSize - 256 - specials.length;
  if (targetMerges < 0) throw new Error(`vocab ${options.vocabSize} is smaller than the 256 byte tokens plus specials`);

  // Unique words with counts; special tokens are never merged with text around them.
  const counts = new Map<string, number>();
  const encoder = new TextEncoder();
  for (const text of texts) {
    for (const piece of text.split(END_OF_TEXT)) {
      for (const match of piece.matchAll(GPT2_SPLIT)) counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
    }
  }
  const words: Word[] = [...counts.entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([w, count]) => ({ symbols: Array.from(encoder.encode(w), (b) => BYTE_TO_CHAR[b]), count }));

  const pairCounts = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (wi: number, sign: 1 | -1) => {
    const { symbols, count } = words[wi];
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      pairCounts.set(key, (pairCounts.get(key) ?? 0) + sign * count);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  words.forEach((_, wi) => addPairs(wi, 1));

  for (let m = 0; m < targetMerges; m++) {
    // Most frequent pair; ties go to the lexicographically smallest, so training is deterministic.
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && count > 0 && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (!best || bestCount < 2) break;
    const [a, b] = best.split("\u0000");
    merges.push([a, b]);
    const merged = a + b;
    for (const wi of pairWords.get(best) ?? []) {
      const word = words[wi];
      addPairs(wi, -1);
      const next: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === a && word.symbols[i + 1] === b) {
          next.push(merged);
          i++;
        } else next.push(word.symbols[i]);
      }
      word.symbols = next;
      addPairs(wi, 1);
    }
    pairCounts.delete(best);
    pairWords.delete(best);
  }

  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((ch, b) => (vocab[ch] = b));
  merges.forEach(([a, b], i) => (vocab[a + b] = 256 + i));
  const firstSpecial = 256 + merges.length;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({ id: firstSpecial + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => `${a} ${b}`),
    },
  };
}

export function writeTokenizer(file: string, tokenizer: object): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(tokenizer)}\n`);
}

if (require.main === module) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { vocab: { type: "string" }, out: { type: "string" } } });
  if (!values.out || positionals.length === 0) {
    console.error("usage: train-bpe.ts --vocab N --out tokenizer.json FILE...");
    process.exit(2);
  }
  const texts = positionals.map((f) => fs.readFileSync(f, "utf8"));
  const started = performance.now();
  const tokenizer = trainByteLevelBpe(texts, { vocabSize: Number(values.vocab ?? 1500) });
  writeTokenizer(values.out, tokenizer);
  console.log(`wrote ${values.out} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

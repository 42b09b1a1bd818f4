/**
 * A deterministic byte-level BPE trainer that writes a Hugging Face tokenizer.json in GPT-2's
 * shape: BPE model (vocab + merges), ByteLevel pre-tokenizer (add_prefix_space false, GPT-2's
 * split regex), ByteLevel decoder and post-processor, `<|endoftext|>` as the special token.
 * Both @huggingface/tokenizers and the native `tokenizers` package load it and agree on it.
 * Dev-time tool for the reference model's tokenizer and the test fixtures.
 *
 *   npx tsx bench/tokenizer/train-bpe.ts --vocab 1500 --out DIR/tokenizer.json FILE...
 *
 * Speed: pairs are counted over the unique pre-tokenized words, each with its count, and after a
 * merge only the words holding the merged pair are recounted, so a few megabytes train in seconds.
 * Determinism: words are visited in sorted order and a tie between equally frequent pairs goes
 * to the smaller pair ("a\0b" as a string), so the same text always gives the same file.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { BYTE_TO_CHAR } from "../../src/core/tokenizer/byte-level-alphabet";

/** GPT-2's pre-tokenizer split: contractions, letters, numbers, other symbols, whitespace. */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
export const END_OF_TEXT = "<|endoftext|>";

export interface TrainOptions {
  /** Total vocabulary size: the 256 byte tokens, the merges' tokens and the special tokens. */
  readonly vocabSize: number;
  /** Added as special tokens after the learned vocabulary; default [<|endoftext|>]. */
  readonly specialTokens?: readonly string[];
}

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

/** The tokenizer.json written (field order as Hugging Face writes it). */
export interface ByteLevelBpeJson {
  version: "1.0";
  truncation: null;
  padding: null;
  added_tokens: AddedTokenJson[];
  normalizer: null;
  pre_tokenizer: { type: "ByteLevel"; add_prefix_space: false; trim_offsets: true; use_regex: true };
  post_processor: { type: "ByteLevel"; add_prefix_space: true; trim_offsets: false; use_regex: true };
  decoder: { type: "ByteLevel"; add_prefix_space: true; trim_offsets: true; use_regex: true };
  model: {
    type: "BPE";
    dropout: null;
    unk_token: null;
    continuing_subword_prefix: "";
    end_of_word_suffix: "";
    fuse_unk: false;
    byte_fallback: false;
    ignore_merges: false;
    vocab: Record<string, number>;
    merges: string[];
  };
}

interface Word {
  symbols: string[];
  readonly count: number;
}

const SEP = "\u0000"; // never in a byte-level symbol (byte 0 is drawn as U+0100)
const pairKey = (a: string, b: string) => `${a}${SEP}${b}`;

/** Unique pre-tokenized words with their counts; text is never merged across a special token. */
export function countWords(texts: readonly string[], specialTokens: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const specials = specialTokens.length ? new RegExp(specialTokens.map(escapeRegExp).join("|"), "g") : undefined;
  for (const text of texts) {
    for (const piece of specials ? text.split(specials) : [text]) {
      for (const match of piece.matchAll(GPT2_SPLIT)) counts.set(match[0], (counts.get(match[0]) ?? 0) + 1);
    }
  }
  return counts;
}

export function trainByteLevelBpe(texts: readonly string[], options: TrainOptions): ByteLevelBpeJson {
  const specials = options.specialTokens ?? [END_OF_TEXT];
  const learnedTarget = options.vocabSize - specials.length;
  if (!Number.isInteger(options.vocabSize) || learnedTarget < 256) {
    throw new Error(`vocab size ${options.vocabSize} is smaller than the 256 byte tokens plus ${specials.length} special token(s)`);
  }

  const encoder = new TextEncoder();
  const words: Word[] = [...countWords(texts, specials).entries()]
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .map(([w, count]) => ({ symbols: Array.from(encoder.encode(w), (b) => BYTE_TO_CHAR[b]), count }));

  const pairCounts = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>(); // may hold words that lost the pair since
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

  const vocab: Record<string, number> = {};
  BYTE_TO_CHAR.forEach((ch, b) => (vocab[ch] = b));
  let nextId = 256;
  const merges: string[] = [];
  while (nextId < learnedTarget) {
    // The most frequent pair; ties go to the smallest key, so training is deterministic.
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && count > 0 && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined || bestCount < 2) break; // nothing repeats any more: a smaller vocabulary
    const [a, b] = best.split(SEP);
    const merged = a + b;
    merges.push(`${a} ${b}`);
    // Two different pairs can spell the same string ("ab"+"c", "a"+"bc"): one id for both.
    if (!Object.hasOwn(vocab, merged)) vocab[merged] = nextId++;
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

  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, i) => ({ id: nextId + i, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
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
      merges,
    },
  };
}

/** Write a tokenizer.json (one line, trailing newline), creating the folder. */
export function writeTokenizer(file: string, tokenizer: ByteLevelBpeJson): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, `${JSON.stringify(tokenizer)}\n`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

function main(): void {
  const usage = "usage: npx tsx bench/tokenizer/train-bpe.ts --vocab N --out DIR/tokenizer.json FILE...";
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { vocab: { type: "string" }, out: { type: "string" } } });
  const vocabSize = Number(values.vocab ?? 1500);
  if (!values.out || positionals.length === 0 || !Number.isInteger(vocabSize)) {
    console.error(usage);
    process.exit(2);
  }
  const missing = positionals.filter((f) => !fs.existsSync(f));
  if (missing.length) {
    console.error(`no such file: ${missing.join(", ")}\n${usage}`);
    process.exit(2);
  }
  const texts = positionals.map((f) => fs.readFileSync(f, "utf8"));
  const started = performance.now();
  const tokenizer = trainByteLevelBpe(texts, { vocabSize });
  writeTokenizer(values.out, tokenizer);
  const size = Object.keys(tokenizer.model.vocab).length + tokenizer.added_tokens.length;
  const mb = texts.reduce((n, t) => n + t.length, 0) / 1e6;
  console.log(`wrote ${values.out}: ${size} tokens (${tokenizer.model.merges.length} merges) from ${mb.toFixed(1)} M characters in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (require.main === module) main();

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { trainByteLevelBpe } from "../../bench/tokenizer/train-bpe";
import { LoupeError } from "../../src/core/errors";
import { Tokenizer } from "../../src/core/tokenizer";
import { scratchDir, TINY_GPT2 } from "../helpers/fixtures";

const TRICKY = [
  "",
  " ",
  "Hello, world!",
  "  leading and trailing  ",
  "tabs\tand\t\ttabs",
  "windows\r\nline\r\nendings\r\n",
  "emoji 😀 and family 👩‍👩‍👧 and flag 🇫🇷",
  "CJK 漢字かなカナ 한국어",
  "Arabic مرحبا بالعالم",
  "combining e\u0301 and a\u0308\u0304",
  "inline <|endoftext|> special",
  "<|endoftext|><|endoftext|>",
  "many      spaces\n\n\n\nand newlines",
  "numbers 12345 3.14 -7",
  "quotes 'single' \"double\" it's we'll",
  "math ∑∫√ and ½ and ™",
  "a".repeat(300),
];

/** UTF-16 index of each code point boundary, so the oracle's code-point offsets can be compared. */
function codePointToUtf16(text: string): number[] {
  const map = [0];
  let i = 0;
  for (const ch of text) {
    i += ch.length;
    map.push(i);
  }
  return map;
}

describe("Tokenizer (byte-level BPE)", () => {
  const tokenizer = Tokenizer.fromFile(path.join(TINY_GPT2, "tokenizer.json"));
  const oracle = NativeTokenizer.fromFile(path.join(TINY_GPT2, "tokenizer.json"));

  for (const text of TRICKY) {
    it(`matches the Rust tokenizer's ids and offsets on ${JSON.stringify(text.slice(0, 40))}`, async () => {
      const ours = tokenizer.encode(text);
      const theirs = await oracle.encode(text, null, { addSpecialTokens: false });
      assert.deepEqual(ours.ids, theirs.getIds());
      const toUtf16 = codePointToUtf16(text);
      const expected = theirs.getOffsets().map(([s, e]: number[]) => [toUtf16[s], toUtf16[e]]);
      assert.deepEqual(ours.offsets, expected);
      assert.equal(tokenizer.decode(ours.ids), text, "decode(encode(s)) === s");
    });
  }

  it("gives each whole-character token exactly its text", () => {
    const text = "When Mia said \"no\" 😀!";
    const { ids, offsets } = tokenizer.encode(text);
    offsets.forEach(([start, end], i) => {
      const shown = tokenizer.tokenText(ids[i]);
      if (!shown.includes("<0x")) assert.equal(text.slice(start, end), shown);
    });
  });

  it("maps a token that splits a multi-byte character to the whole character, on both sides", () => {
    // The fixture has no merges for emoji bytes, so 😀 (4 bytes) becomes 4 tokens.
    const text = "x😀y";
    const { ids, offsets } = tokenizer.encode(text);
    assert.equal(ids.length, 6);
    for (let i = 1; i <= 4; i++) assert.deepEqual(offsets[i], [1, 3], "every byte token covers the surrogate pair");
    assert.deepEqual(offsets[0], [0, 1]);
    assert.deepEqual(offsets[5], [3, 4]);
    assert.match(tokenizer.tokenText(ids[1]), /^<0xF0>$/);
  });

  it("encodes a lone surrogate as U+FFFD, with offsets still inside the string", () => {
    const text = "a\ud800b";
    const { ids, offsets } = tokenizer.encode(text);
    assert.equal(tokenizer.decode(ids), "a\ufffdb");
    for (const [s, e] of offsets) assert.ok(s >= 0 && e <= text.length && s <= e);
    assert.deepEqual(offsets[offsets.length - 1], [2, 3]);
  });

  it("knows its special tokens and vocabulary size", () => {
    assert.equal(tokenizer.vocabSize, 320);
    assert.equal(tokenizer.eosTokenId, 319);
    assert.deepEqual([...tokenizer.specialTokenIds], [319]);
    assert.equal(tokenizer.decode([72, 319, 105], { skipSpecialTokens: true }), "Hi");
    assert.equal(tokenizer.tokenToId(tokenizer.idToToken(300) ?? ""), 300);
  });

  it("encodes a 100k-character document with consistent offsets", () => {
    const text = "The quick brown fox, 漢字 and 😀.\r\n".repeat(3500);
    const { offsets } = tokenizer.encode(text);
    let previousEnd = 0;
    for (const [s, e] of offsets) {
      assert.ok(s >= previousEnd - 2 && e >= s, "offsets advance");
      previousEnd = e;
    }
    assert.equal(previousEnd, text.length);
  });

  it("names the file when it is missing, not JSON, or not a supported tokenizer", () => {
    const dir = scratchDir("tok");
    const check = (file: string, code: string, pattern: RegExp) =>
      assert.throws(() => Tokenizer.fromFile(file), (e: unknown) => e instanceof LoupeError && e.code === code && e.message.includes(file) && pattern.test(e.message));
    check(path.join(dir, "missing.json"), "missing-file", /Cannot read/);
    fs.writeFileSync(path.join(dir, "bad.json"), "{ not json");
    check(path.join(dir, "bad.json"), "bad-file", /not valid JSON/);
    fs.writeFileSync(path.join(dir, "wordpiece.json"), JSON.stringify({ model: { type: "WordPiece", vocab: {} } }));
    check(path.join(dir, "wordpiece.json"), "bad-file", /"WordPiece" is not supported/);
  });
});

describe("byte-level BPE trainer", () => {
  it("is deterministic and learns the most frequent pairs first", () => {
    const text = "the cat the hat the bat ".repeat(20);
    const a = JSON.stringify(trainByteLevelBpe([text], { vocabSize: 262 }));
    const b = JSON.stringify(trainByteLevelBpe([text], { vocabSize: 262 }));
    assert.equal(a, b);
    const json = JSON.parse(a) as { model: { merges: string[] }; added_tokens: { id: number }[] };
    assert.equal(json.model.merges.length, 5);
    assert.equal(json.added_tokens[0].id, 261);
    // " t" + "he" style merges come first: "Ġ t" or "t h" is among the first two.
    assert.ok(json.model.merges.slice(0, 2).some((m) => m === "Ġ t" || m === "t h" || m === "h e"), json.model.merges.slice(0, 3).join(", "));
  });

  it("writes a tokenizer both libraries agree on", async () => {
    const dir = scratchDir("bpe");
    const file = path.join(dir, "tokenizer.json");
    fs.writeFileSync(file, JSON.stringify(trainByteLevelBpe(["Mia gave Leo a ball. Leo gave Mia a cat. ".repeat(10)], { vocabSize: 290 })));
    const ours = Tokenizer.fromFile(file);
    const theirs = NativeTokenizer.fromFile(file);
    const text = "Leo gave Mia a ball 😀";
    assert.deepEqual(ours.encode(text).ids, (await theirs.encode(text, null, { addSpecialTokens: false })).getIds());
  });
});

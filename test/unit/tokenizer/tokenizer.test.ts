/**
 * Tokenizer tests. The oracle is the native `tokenizers` package (Hugging Face's Rust library):
 * our ids must equal its ids, and our offsets its offsets converted from code points to UTF-16.
 *
 * Policy for a character split over several tokens (an emoji cut by byte-level BPE, byte-fallback
 * tokens): each token's range is the smallest UTF-16 range covering every character any of its
 * bytes belong to, so two tokens sharing a character both cover all of it (the Rust library
 * does the same). The policy is also checked on its own, recomputed from the bytes.
 *
 * Lone surrogates: JavaScript encodes them as U+FFFD (EF BF BD), and so do both libraries; the
 * three byte tokens each cover the lone surrogate's one code unit, and decode gives U+FFFD back.
 */
import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { Tokenizer as NativeTokenizer } from "tokenizers";
import { buildFixtureTokenizer } from "../../../bench/tokenizer/make-fixture";
import { type ByteLevelBpeJson, trainByteLevelBpe, writeTokenizer } from "../../../bench/tokenizer/train-bpe";
import { LoupeError } from "../../../src/core/errors";
import { type Encoding, Tokenizer } from "../../../src/core/tokenizer";
import { byteLevelToBytes } from "../../../src/core/tokenizer/byte-level-alphabet";
import { scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const FIXTURE_FILE = path.join(TINY_GPT2, "tokenizer.json");

/** Strings that have broken offset mappings before; each says why it is here. */
const TRICKY: ReadonlyArray<[string, string]> = [
  ["empty string", ""],
  ["single space", " "],
  ["plain sentence", "Hello, world!"],
  ["leading and trailing spaces", "  leading and trailing  "],
  ["tabs", "tabs\tand\t\ttabs\t"],
  ["CRLF line endings", "windows\r\nline\r\nendings\r\n"],
  ["long whitespace runs", "many      spaces\n\n\n\nand \t \r\n newlines         "],
  ["emoji (surrogate pairs)", "emoji 😀😀 end"],
  ["ZWJ family", "family 👩‍👩‍👧 here"],
  ["flags (regional indicators)", "flags 🇫🇷🇯🇵!"],
  ["skin tone, keycap, variation selector", "👍🏽 1️⃣ ❤️"],
  ["CJK", "CJK 漢字かなカナ 한국어"],
  ["Arabic (right to left)", "Arabic مرحبا بالعالم"],
  ["Devanagari", "नमस्ते दुनिया"],
  ["combining marks", "combining e\u0301 and a\u0308\u0304"],
  ["astral letters", "math 𝔸𝔹ℂ and 𝟘𝟙"],
  ["symbols", "math ∑∫√ and ½ and ™ and €"],
  ["special token inline", "inline <|endoftext|> special"],
  ["special tokens back to back", "<|endoftext|><|endoftext|>x<|endoftext|>"],
  ["not quite a special token", "<|endoftext| and <|endoftext"],
  ["numbers and contractions", "numbers 12345 3.14 -7; it's we'll they're"],
  ["byte order mark and NUL", "\uFEFFbom\u0000nul"],
  ["line and paragraph separators", "a\u2028b\u2029c\u0085d"],
  ["lone surrogates", "lone \ud800 high and \udc00 low \ud83d"],
  ["long word", "a".repeat(300)],
];

function codePointToUtf16(text: string): number[] {
  const map = [0];
  let i = 0;
  for (const ch of text) {
    i += ch.length;
    map.push(i);
  }
  return map;
}

interface OracleEncoding {
  ids: number[];
  tokens: string[];
  offsets: Array<[number, number]>;
}

async function oracleEncode(oracle: NativeTokenizer, text: string, addSpecialTokens = false): Promise<OracleEncoding> {
  const e = await oracle.encode(text, null, { addSpecialTokens });
  const toUtf16 = codePointToUtf16(text);
  return { ids: e.getIds(), tokens: e.getTokens(), offsets: e.getOffsets().map(([s, t]) => [toUtf16[s], toUtf16[t]]) };
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const isWholeUtf8 = (bytes: Uint8Array) => {
  try {
    strictUtf8.decode(bytes);
    return true;
  } catch {
    return false;
  }
};

function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let k = 0; k < needle.length; k++) if (haystack[i + k] !== needle[k]) continue outer;
    return true;
  }
  return false;
}

/** What a JS string becomes in UTF-8 and back: lone surrogates turn into U+FFFD. */
const wellFormed = (text: string) => new TextDecoder("utf-8", { ignoreBOM: true }).decode(new TextEncoder().encode(text));

/** Bytes of a byte-level token (added tokens: their content). */
function byteLevelTokenBytes(tokenizer: Tokenizer, id: number): Uint8Array {
  const token = tokenizer.idToToken(id);
  assert.ok(token !== undefined, `id ${id} has a token`);
  if (tokenizer.specialTokenIds.has(id)) return new TextEncoder().encode(token);
  const bytes = byteLevelToBytes(token);
  assert.ok(bytes, `${token} is in the byte-level alphabet`);
  return bytes;
}

/**
 * The offset policy recomputed from scratch for a byte-level tokenizer without a normalizer: the
 * tokens' bytes laid end to end over the text's UTF-8, each token taking the characters its bytes
 * touch. Also (c): each token's slice of the text is the token's text when the token holds whole
 * characters, and otherwise whole characters whose UTF-8 contains the token's bytes.
 */
function assertByteLevelPolicy(tokenizer: Tokenizer, text: string, encoding: Encoding): void {
  const charOfByte: Array<[number, number]> = [];
  let i = 0;
  for (const ch of text) {
    for (let k = 0; k < new TextEncoder().encode(ch).length; k++) charOfByte.push([i, i + ch.length]);
    i += ch.length;
  }
  let cursor = 0;
  encoding.ids.forEach((id, t) => {
    const bytes = byteLevelTokenBytes(tokenizer, id);
    const expected: [number, number] = [charOfByte[cursor][0], charOfByte[cursor + bytes.length - 1][1]];
    cursor += bytes.length;
    assert.deepEqual(encoding.offsets[t], expected, `policy range of token ${t}`);
    const [start, end] = encoding.offsets[t];
    const slice = text.slice(start, end);
    if (isWholeUtf8(bytes)) {
      assert.equal(wellFormed(slice), tokenizer.tokenText(id), `token ${t} is exactly its slice of the text`);
    } else {
      assert.ok(slice.length > 0, `partial token ${t} covers a character`);
      assert.ok(containsBytes(new TextEncoder().encode(slice), bytes), `partial token ${t}'s bytes lie in its slice`);
      assert.match(tokenizer.tokenText(id), /<0x[0-9A-F]{2}>/, "a partial token shows its stray bytes");
    }
  });
  assert.equal(cursor, charOfByte.length, "the tokens spell the whole text");
}

/** No range cuts a surrogate pair, and the ranges start in order and cover the text. */
function assertRangesWellFormed(text: string, offsets: ReadonlyArray<readonly [number, number]>): void {
  const high = (i: number) => i > 0 && i < text.length && /[\ud800-\udbff]/.test(text[i - 1]) && /[\udc00-\udfff]/.test(text[i]);
  let previousStart = 0;
  let covered = 0;
  for (const [start, end] of offsets) {
    assert.ok(0 <= start && start <= end && end <= text.length, `range [${start}, ${end}) inside the text`);
    assert.ok(!high(start) && !high(end), `range [${start}, ${end}) does not cut a surrogate pair`);
    assert.ok(start >= previousStart, "ranges start in order");
    assert.ok(start <= covered, `no gap before ${start}`);
    previousStart = start;
    covered = Math.max(covered, end);
  }
  assert.equal(covered, text.length, "the ranges cover the text");
}

describe("Tokenizer: byte-level BPE (tiny-gpt2 fixture) against the Rust tokenizer", () => {
  const tokenizer = Tokenizer.fromFile(FIXTURE_FILE);
  const oracle = NativeTokenizer.fromFile(FIXTURE_FILE);

  for (const [name, text] of TRICKY) {
    it(`${name}: same ids and offsets as Rust, exact slices, decode round trip`, async () => {
      const ours = tokenizer.encode(text);
      const theirs = await oracleEncode(oracle, text);
      assert.deepEqual(ours.ids, theirs.ids, "(a) ids");
      assert.deepEqual(ours.offsets, theirs.offsets, "(b) offsets");
      assert.equal(ours.tokens.length, ours.ids.length);
      ours.ids.forEach((id, t) => assert.equal(ours.tokens[t], tokenizer.idToToken(id)));
      assertByteLevelPolicy(tokenizer, text, ours); // (c)
      assertRangesWellFormed(text, ours.offsets);
      assert.equal(tokenizer.decode(ours.ids), wellFormed(text), "(d) decode(encode(s)) === s");
    });
  }

  it("covers a split emoji with every one of its byte tokens, and shows those bytes as <0xNN>", () => {
    // The fixture has no merges inside emoji, so 😀 (F0 9F 98 80) is four byte tokens.
    const text = "x😀y";
    const { ids, offsets } = tokenizer.encode(text);
    assert.deepEqual(ids, [120, 0xf0, 0x9f, 0x98, 0x80, 121]);
    assert.deepEqual(offsets, [[0, 1], [1, 3], [1, 3], [1, 3], [1, 3], [3, 4]]);
    assert.deepEqual(ids.map((id) => tokenizer.tokenText(id)), ["x", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "y"]);
  });

  it("maps a lone surrogate's U+FFFD bytes onto its one code unit", () => {
    const text = "a\ud800b";
    const { ids, offsets } = tokenizer.encode(text);
    assert.deepEqual(ids, [97, 0xef, 0xbf, 0xbd, 98]);
    assert.deepEqual(offsets, [[0, 1], [1, 2], [1, 2], [1, 2], [2, 3]]);
    assert.equal(tokenizer.decode(ids), "a\ufffdb");
  });

  it("gives <|endoftext|> in the text its own id and exact range", () => {
    const text = "ab<|endoftext|>cd";
    const { ids, offsets, tokens } = tokenizer.encode(text);
    const at = ids.indexOf(319);
    assert.ok(at > 0);
    assert.deepEqual(offsets[at], [2, 15]);
    assert.equal(tokens[at], "<|endoftext|>");
    assert.equal(tokenizer.decode(ids, { skipSpecialTokens: true }), "abcd");
    assert.equal(tokenizer.decode(ids), text);
  });

  it("adds nothing for addSpecialTokens with GPT-2's ByteLevel post-processor", async () => {
    const text = "Hello there";
    const ours = tokenizer.encode(text, { addSpecialTokens: true });
    assert.deepEqual(ours, tokenizer.encode(text));
    assert.deepEqual(ours.ids, (await oracleEncode(oracle, text, true)).ids);
  });

  it("knows its vocabulary, special tokens and token texts", () => {
    assert.equal(tokenizer.vocabSize, 320);
    assert.equal(tokenizer.eosTokenId, 319);
    assert.equal(tokenizer.bosTokenId, 319, "GPT-2 begins texts with <|endoftext|> too");
    assert.deepEqual([...tokenizer.specialTokenIds], [319]);
    assert.equal(tokenizer.idToToken(319), "<|endoftext|>");
    assert.equal(tokenizer.tokenToId("<|endoftext|>"), 319);
    assert.equal(tokenizer.idToToken(256), "he", "the first merge");
    assert.equal(tokenizer.idToToken(32), "Ġ");
    assert.equal(tokenizer.tokenToId("Ġthe"), 259);
    assert.equal(tokenizer.tokenText(259), " the");
    assert.equal(tokenizer.tokenText(10), "\n");
    assert.equal(tokenizer.tokenText(319), "<|endoftext|>");
    assert.equal(tokenizer.tokenText(0xe2), "<0xE2>");
    assert.equal(tokenizer.tokenText(5000), "<unknown id 5000>");
    assert.equal(tokenizer.idToToken(5000), undefined);
    assert.equal(tokenizer.tokenToId("no such token"), undefined);
  });

  it("decodes bytes across token boundaries, skips special tokens on request, marks bad ids", () => {
    assert.equal(tokenizer.decode([0xf0, 0x9f, 0x98, 0x80]), "😀", "an emoji split over four tokens comes back whole");
    assert.equal(tokenizer.decode([0xf0, 0x9f]), "\ufffd", "an incomplete character becomes U+FFFD");
    assert.equal(tokenizer.decode([72, 319, 105], { skipSpecialTokens: true }), "Hi");
    assert.equal(tokenizer.decode([72, 319, 105]), "H<|endoftext|>i");
    assert.equal(tokenizer.decode([72, 99999]), "H\ufffd");
    assert.equal(tokenizer.decode([]), "");
    assert.equal(tokenizer.decode(tokenizer.encode("\uFEFFx").ids), "\uFEFFx", "a leading byte order mark survives");
  });

  it("encodes a 100k-character document with offsets that tile the text", () => {
    const line = "The quick brown fox, 漢字, e\u0301 and 😀👩‍👩‍👧.\r\n\tindented <|endoftext|> ";
    const text = line.repeat(Math.ceil(100_000 / line.length));
    const { ids, offsets } = tokenizer.encode(text);
    assert.ok(text.length >= 100_000 && ids.length > 50_000);
    assertRangesWellFormed(text, offsets);
    assertByteLevelPolicy(tokenizer, text.slice(0, 2000), tokenizer.encode(text.slice(0, 2000)));
    assert.equal(tokenizer.decode(ids), text);
  });
});

describe("Tokenizer: byte-level BPE whose merges cut characters (trained here)", () => {
  // Eighty different emoji: their shared lead bytes F0 9F 98 merge, their last bytes mostly do
  // not, and runs of emoji give merges from the end of one emoji into the next ("¡ðŁĺ¢" is
  // A1 F0 9F 98 A2: the last byte of 😡 and all of 😢).
  const emoji = Array.from({ length: 80 }, (_, i) => String.fromCodePoint(0x1f600 + i));
  const corpus = `${emoji.join(" ")} ${emoji.join("")} 漢字 字漢 漢 it's `.repeat(3);
  const dir = scratchDir("tok-split");
  const file = path.join(dir, "tokenizer.json");
  writeTokenizer(file, trainByteLevelBpe([corpus], { vocabSize: 280 }));
  const tokenizer = Tokenizer.fromFile(file);
  const oracle = NativeTokenizer.fromFile(file);

  for (const text of ["😀😀 😀", "😠😡😢😣😤😥😦", "x😡😢x", " 👩‍👩‍👧 and 🇫🇷🇫🇷", "漢字 字漢", "😀<|endoftext|>😀"]) {
    it(`follows the split-character policy on ${JSON.stringify(text)}`, async () => {
      const ours = tokenizer.encode(text);
      const theirs = await oracleEncode(oracle, text);
      assert.deepEqual(ours.ids, theirs.ids);
      assert.deepEqual(ours.offsets, theirs.offsets);
      assertByteLevelPolicy(tokenizer, text, ours);
      assertRangesWellFormed(text, ours.offsets);
      assert.equal(tokenizer.decode(ours.ids), text);
    });
  }

  it("really has tokens that end inside one character and share it with the next", () => {
    const text = "😀😀 😀";
    const { ids, offsets } = tokenizer.encode(text);
    assert.deepEqual(ids.map((id) => tokenizer.tokenText(id)), ["<0xF0><0x9F><0x98>", "<0x80>", "<0xF0><0x9F><0x98>", "<0x80>", " 😀"]);
    assert.deepEqual(offsets, [[0, 2], [0, 2], [2, 4], [2, 4], [4, 7]]);
  });

  it("gives a token that ends one emoji and holds the next the range of both", () => {
    const text = "x😡😢x";
    const { ids, offsets } = tokenizer.encode(text);
    const across = ids.findIndex((id) => tokenizer.idToToken(id) === "¡ðŁĺ¢");
    assert.ok(across > 0, "the cross-character merge is used");
    assert.deepEqual(offsets[across], [1, 5]);
    assert.deepEqual(offsets[across - 1], [1, 3], "the token before it shares 😡");
  });
});

/** A small SentencePiece-style BPE (Llama family): "▁" for spaces, byte fallback, <s> template. */
function sentencePieceStyle(options: { legacy: boolean; scheme?: "first" | "always"; normalizers?: object[]; suffix?: boolean }): object {
  const vocab: Record<string, number> = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = 3 + b;
  const merges: Array<[string, string]> = [["▁", "t"], ["h", "e"], ["▁t", "he"], ["l", "l"], ["▁", "w"], ["o", "r"], ["▁", "H"], ["▁H", "e"], ["▁He", "ll"], ["▁", "▁"], ["é", "t"], ["漢", "字"]];
  for (const c of "▁abcdefghijklmnopqrstuvwxyzHWé漢字") vocab[c] ??= Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] ??= Object.keys(vocab).length;
  const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const metaspace = { type: "Metaspace", replacement: "▁", prepend_scheme: options.scheme ?? "first", split: false };
  const single = [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, ...(options.suffix ? [{ SpecialToken: { id: "</s>", type_id: 0 } }] : [])];
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [special("<unk>", 0), special("<s>", 1), special("</s>", 2)],
    normalizer: options.legacy
      ? { type: "Sequence", normalizers: [...(options.normalizers ?? []), { type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] }
      : options.normalizers
        ? { type: "Sequence", normalizers: options.normalizers }
        : null,
    pre_tokenizer: options.legacy ? null : metaspace,
    post_processor: {
      type: "TemplateProcessing",
      single,
      pair: [...single, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] }, "</s>": { id: "</s>", ids: [2], tokens: ["</s>"] } },
    },
    decoder: options.legacy
      ? { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] }
      : { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] },
    model: { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges: merges.map(([a, b]) => `${a} ${b}`) },
  };
}

const SENTENCEPIECE_TEXTS = [
  "",
  " ",
  "Hello the world",
  " Hello",
  "  two  spaces  ",
  "a  b",
  "Hi<s>there",
  "<s>Hello</s>",
  "x😀y",
  "e\u0301t and ét",
  "▁literal ▁ marks",
  "漢字 and 漢",
  "tab\there\r\nnew line",
  "lone \ud800 surrogate",
];

describe("Tokenizer: SentencePiece-style BPE (Llama family) against the Rust tokenizer", () => {
  const kinds: Array<[string, object]> = [
    ["legacy Llama (Prepend + Replace normalizer)", sentencePieceStyle({ legacy: true })],
    ['Metaspace, prepend_scheme "first"', sentencePieceStyle({ legacy: false, scheme: "first" })],
    ['Metaspace, prepend_scheme "always"', sentencePieceStyle({ legacy: false, scheme: "always" })],
  ];
  for (const [kind, json] of kinds) {
    describe(kind, () => {
      const tokenizer = Tokenizer.fromJSON(json, kind);
      const oracle = NativeTokenizer.fromString(JSON.stringify(json));
      for (const text of SENTENCEPIECE_TEXTS) {
        it(`same ids and offsets on ${JSON.stringify(text)}, with and without <s>`, async () => {
          for (const addSpecialTokens of [false, true]) {
            const ours = tokenizer.encode(text, { addSpecialTokens });
            const theirs = await oracleEncode(oracle, text, addSpecialTokens);
            assert.deepEqual(ours.ids, theirs.ids, "ids");
            assert.deepEqual(ours.offsets, theirs.offsets, "offsets");
            assert.deepEqual(ours.tokens, theirs.tokens, "tokens");
          }
          const ours = tokenizer.encode(text);
          assertRangesWellFormed(text, ours.offsets);
          // (c) each token is its slice with spaces as "▁", give or take the "▁" the tokenizer inserts.
          ours.ids.forEach((id, t) => {
            const slice = text.slice(...ours.offsets[t]).replaceAll(" ", "▁");
            const token = ours.tokens[t];
            if (/^<0x[0-9A-F]{2}>$/.test(token)) return assert.ok(slice.length > 0);
            if (id === 0) return; // <unk>
            assert.ok(token === slice || token === `▁${slice}` || (token === "▁" && slice.length > 0), `token ${JSON.stringify(token)} vs slice ${JSON.stringify(slice)}`);
          });
          if (text !== "" && !/\ud800/.test(text)) assert.equal(tokenizer.decode(ours.ids), await oracle.decode(ours.ids, false), "decode as Rust does");
        });
      }
    });
  }

  it("knows <s> and </s>, and shows ▁ and byte-fallback tokens readably", () => {
    const tokenizer = Tokenizer.fromJSON(sentencePieceStyle({ legacy: true }));
    assert.equal(tokenizer.bosTokenId, 1);
    assert.equal(tokenizer.eosTokenId, 2);
    assert.deepEqual([...tokenizer.specialTokenIds].sort(), [0, 1, 2]);
    const the = tokenizer.tokenToId("▁the");
    assert.ok(the !== undefined);
    assert.equal(tokenizer.tokenText(the), " the");
    assert.equal(tokenizer.tokenText(3 + 0xe2), "<0xE2>");
    assert.equal(tokenizer.tokenText(3 + 0x41), "A");
    assert.equal(tokenizer.decode(tokenizer.encode("Hello the world").ids), "Hello the world");
    assert.equal(tokenizer.decode(tokenizer.encode("x😀y").ids), "x😀y", "byte fallback decodes to the emoji");
  });

  it("gives an <unk> token (no byte fallback) the character it replaces", async () => {
    const json = sentencePieceStyle({ legacy: true }) as { model: { byte_fallback: boolean } };
    json.model.byte_fallback = false;
    const tokenizer = Tokenizer.fromJSON(json);
    const text = "x😀y ét";
    const ours = tokenizer.encode(text);
    const theirs = await oracleEncode(NativeTokenizer.fromString(JSON.stringify(json)), text);
    assert.deepEqual(ours.ids, theirs.ids);
    assert.equal(ours.ids[2], 0, "😀 is <unk>");
    assert.deepEqual(ours.offsets, theirs.offsets);
    assert.deepEqual(ours.offsets[2], [1, 3]);
  });

  it("puts a post-processor's trailing </s> at the end of the text", async () => {
    const json = sentencePieceStyle({ legacy: true, suffix: true });
    const tokenizer = Tokenizer.fromJSON(json);
    const text = "Hello the world";
    const ours = tokenizer.encode(text, { addSpecialTokens: true });
    const theirs = await oracleEncode(NativeTokenizer.fromString(JSON.stringify(json)), text, true);
    assert.deepEqual(ours.ids, theirs.ids);
    assert.deepEqual(ours.offsets.slice(0, -1), theirs.offsets.slice(0, -1));
    assert.deepEqual(ours.offsets.at(-1), [text.length, text.length], "Rust says [0, 0]; Loupe puts it where it stands");
  });

  it("maps an NFC normalizer's composed characters onto the whole original cluster", async () => {
    const json = sentencePieceStyle({ legacy: false, normalizers: [{ type: "NFC" }] });
    const tokenizer = Tokenizer.fromJSON(json);
    const text = "e\u0301t";
    const ours = tokenizer.encode(text);
    assert.deepEqual(ours.ids, (await oracleEncode(NativeTokenizer.fromString(JSON.stringify(json)), text)).ids);
    assert.deepEqual(ours.tokens, ["▁", "ét"]);
    // "ét" comes from e + U+0301 + t: all three code units.
    assert.deepEqual(ours.offsets, [[0, 1], [0, 3]]);
  });
});

describe("Tokenizer: other byte-level settings against the Rust tokenizer", () => {
  const base = JSON.parse(fs.readFileSync(FIXTURE_FILE, "utf8")) as ByteLevelBpeJson;
  const mask = (lstrip: boolean, rstrip: boolean, special = true) => ({ id: 320, content: "<mask>", single_word: false, lstrip, rstrip, normalized: false, special });
  const variant = (change: (json: Record<string, unknown> & ByteLevelBpeJson) => void): object => {
    const json = structuredClone(base) as Record<string, unknown> & ByteLevelBpeJson;
    change(json);
    return json;
  };
  const texts = ["Hello the world", " Hello", "Hi<|endoftext|>there", "a <mask> b", "a<mask>b", "x <mask>  y", " <mask> ", "<mask>", "e\u0301t 😀", "tab\t<mask>\r\nz"];
  const variants: Array<[string, object]> = [
    ["add_prefix_space: true", variant((j) => Object.assign(j.pre_tokenizer, { add_prefix_space: true }))],
    ["an added token with lstrip", variant((j) => j.added_tokens.push(mask(true, false)))],
    ["an added token with rstrip", variant((j) => j.added_tokens.push(mask(false, true)))],
    ["a non-special added token with both", variant((j) => j.added_tokens.push(mask(true, true, false)))],
    [
      "a Qwen2-style Split + ByteLevel sequence",
      variant((j) => {
        j.pre_tokenizer = {
          type: "Sequence",
          pretokenizers: [
            { type: "Split", pattern: { Regex: "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+" }, behavior: "Isolated", invert: false },
            { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: false },
          ],
        } as unknown as ByteLevelBpeJson["pre_tokenizer"];
      }),
    ],
  ];
  for (const [name, json] of variants) {
    it(`${name}: same ids and offsets`, async () => {
      const tokenizer = Tokenizer.fromJSON(json, name);
      const oracle = NativeTokenizer.fromString(JSON.stringify(json));
      for (const text of texts) {
        const ours = tokenizer.encode(text);
        const theirs = await oracleEncode(oracle, text);
        assert.deepEqual(ours.ids, theirs.ids, `ids of ${JSON.stringify(text)}`);
        assert.deepEqual(ours.offsets, theirs.offsets, `offsets of ${JSON.stringify(text)}`);
        assertRangesWellFormed(text, ours.offsets);
      }
    });
  }

  it("maps an NFC normalizer's output onto whole clusters (Rust gives the composed é only the e)", async () => {
    const json = variant((j) => Object.assign(j, { normalizer: { type: "NFC" } }));
    const tokenizer = Tokenizer.fromJSON(json);
    const text = "e\u0301t 😀";
    const ours = tokenizer.encode(text);
    const theirs = await oracleEncode(NativeTokenizer.fromString(JSON.stringify(json)), text);
    assert.deepEqual(ours.ids, theirs.ids);
    assert.deepEqual(theirs.offsets.slice(0, 2), [[0, 1], [0, 1]], "Rust: the accent belongs to no token");
    assert.deepEqual(ours.offsets.slice(0, 3), [[0, 2], [0, 2], [2, 3]], "Loupe: é (C3 A9) covers e and its accent");
    assert.deepEqual(ours.offsets.slice(3), theirs.offsets.slice(3));
  });

  it("refuses, naming the file, to guess offsets when the normalizer or pre-tokenizer rewrites text", () => {
    const mismatch = (json: object, text: string) =>
      assert.throws(
        () => Tokenizer.fromJSON(json, "odd/tokenizer.json").encode(text),
        (e: unknown) => e instanceof LoupeError && e.code === "tokenizer-mismatch" && e.message.startsWith("odd/tokenizer.json: "),
      );
    // Strip acts on the ends of the text, not on characters: the inner space cannot be placed.
    mismatch(variant((j) => Object.assign(j, { normalizer: { type: "Strip", strip_left: true, strip_right: true } })), "a b ");
    // A pre-tokenizer that replaces letters: the tokens no longer spell the text.
    mismatch(variant((j) => Object.assign(j, { pre_tokenizer: { type: "Sequence", pretokenizers: [{ type: "Replace", pattern: { String: "a" }, content: "b" }, base.pre_tokenizer] } })), "banana");
    // Lowercasing is one character at a time: that works, with exact ranges.
    const lower = Tokenizer.fromJSON(variant((j) => Object.assign(j, { normalizer: { type: "Lowercase" } })));
    const { offsets } = lower.encode("The FOX");
    assertRangesWellFormed("The FOX", offsets);
  });
});

describe("Tokenizer: long texts through a normalizer", () => {
  // A guard against quadratic work (a grapheme segmenter over the whole text took 37 s here).
  const line = "Caf\u00e9 e\u0301 \u1100\u1161\u11a8 漢字 😀👩‍👩‍👧 and\r\n\t words ";
  const text = line.repeat(Math.ceil(100_000 / line.length));
  const base = JSON.parse(fs.readFileSync(FIXTURE_FILE, "utf8")) as Record<string, unknown>;
  const cases: Array<[string, object]> = [
    ["byte-level with NFC", { ...base, normalizer: { type: "NFC" } }],
    ["legacy Llama", sentencePieceStyle({ legacy: true })],
  ];
  for (const [name, json] of cases) {
    it(`${name}: 100k characters in well under the time limit, ranges tiling the text`, function () {
      this.timeout(10_000);
      const { offsets } = Tokenizer.fromJSON(json).encode(text);
      assertRangesWellFormed(text, offsets);
    });
  }

  it("loads a hand-written tokenizer.json without the optional sections", () => {
    const tokenizer = Tokenizer.fromJSON({ model: { type: "BPE", vocab: { a: 0, b: 1, ab: 2 }, merges: ["a b"] } });
    assert.deepEqual(tokenizer.encode("abab"), { ids: [2, 2], tokens: ["ab", "ab"], offsets: [[0, 2], [2, 4]] });
    assert.equal(tokenizer.vocabSize, 3);
    assert.equal(tokenizer.eosTokenId, undefined);
    assert.equal(tokenizer.bosTokenId, undefined);
  });
});

describe("Tokenizer: loading errors", () => {
  const dir = scratchDir("tok");
  const fails = (file: string, code: string, pattern: RegExp) =>
    assert.throws(
      () => Tokenizer.fromFile(file),
      (e: unknown) => {
        assert.ok(e instanceof LoupeError, String(e));
        assert.equal(e.code, code);
        assert.ok(e.message.includes(file), `${e.message} names ${file}`);
        assert.match(e.message, pattern);
        assert.equal(e.file, file);
        return true;
      },
    );
  const write = (name: string, content: unknown) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
    return file;
  };

  it("names a missing file", () => fails(path.join(dir, "missing.json"), "missing-file", /does not exist/));
  it("names a file that is not JSON", () => fails(write("bad.json", "{ not json"), "bad-file", /not valid JSON/));
  it("names a JSON file with no model", () => fails(write("nomodel.json", { version: "1.0" }), "bad-file", /no "model" section/));
  it("refuses WordPiece and Unigram models", () => {
    fails(write("wordpiece.json", { model: { type: "WordPiece", vocab: { a: 0 } } }), "unsupported-architecture", /"WordPiece" is not supported/);
    fails(write("unigram.json", { model: { vocab: [["a", 0]] } }), "unsupported-architecture", /"Unigram" is not supported/);
  });
  it("refuses a pre-tokenizer that drops whitespace", () => {
    const json = { ...buildFixtureTokenizer(), pre_tokenizer: { type: "Whitespace" } };
    fails(write("whitespace.json", json), "unsupported-architecture", /"Whitespace" drops characters/);
  });
  it("refuses a vocabulary with non-integer ids", () => {
    fails(write("vocab.json", { model: { type: "BPE", vocab: { a: "zero" }, merges: [] } }), "bad-file", /not a non-negative integer/);
  });
});

describe("byte-level BPE trainer", () => {
  it("regenerates the tiny-gpt2 fixture byte for byte: 256 bytes, 63 merges, <|endoftext|> = 319", () => {
    const json = buildFixtureTokenizer();
    assert.equal(`${JSON.stringify(json)}\n`, fs.readFileSync(FIXTURE_FILE, "utf8"));
    assert.equal(Object.keys(json.model.vocab).length, 319);
    assert.equal(json.model.merges.length, 63);
    assert.deepEqual(json.added_tokens.map((t) => [t.id, t.content, t.special]), [[319, "<|endoftext|>", true]]);
  });

  it("is deterministic: the same texts give the same file", () => {
    const dir = scratchDir("bpe-det");
    const texts = ["The cat sat. The hat sat! 😀 漢字\r\n", "it's the cat's hat <|endoftext|> the end"];
    writeTokenizer(path.join(dir, "a.json"), trainByteLevelBpe(texts, { vocabSize: 290 }));
    writeTokenizer(path.join(dir, "b.json"), trainByteLevelBpe(texts, { vocabSize: 290 }));
    assert.equal(fs.readFileSync(path.join(dir, "a.json"), "utf8"), fs.readFileSync(path.join(dir, "b.json"), "utf8"));
  });

  it("merges the most frequent pair first and breaks ties by the smaller pair", () => {
    // Words: "xy", " xy" x3, " zw" x2. Pairs: x+y 4, Ġ+x 3, Ġ+z 2, z+w 2 ("z w" < "Ġ z").
    const json = trainByteLevelBpe(["xy xy xy xy zw zw"], { vocabSize: 256 + 4 + 1 });
    assert.deepEqual(json.model.merges, ["x y", "Ġ xy", "z w", "Ġ zw"]);
    assert.deepEqual(Object.entries(json.model.vocab).filter(([, id]) => id >= 256), [["xy", 256], ["Ġxy", 257], ["zw", 258], ["Ġzw", 259]]);
    assert.equal(json.added_tokens[0].id, 260);
  });

  it("never merges across <|endoftext|>, and stops early when nothing repeats", () => {
    const json = trainByteLevelBpe(["ab<|endoftext|>ab<|endoftext|>ab"], { vocabSize: 400 });
    assert.deepEqual(json.model.merges, ["a b"]);
    assert.equal(json.added_tokens[0].id, 257);
  });

  it("writes a tokenizer both libraries load and agree on, ids and offsets", async () => {
    const dir = scratchDir("bpe");
    const file = path.join(dir, "tokenizer.json");
    writeTokenizer(file, trainByteLevelBpe(["Mia gave Leo a ball. Leo gave Mia a cat 😀. ".repeat(10)], { vocabSize: 275 }));
    const ours = Tokenizer.fromFile(file);
    const theirs = NativeTokenizer.fromFile(file);
    assert.equal(ours.vocabSize, 275);
    for (const text of ["Leo gave Mia a ball 😀", "  Mia<|endoftext|>Leo\n"]) {
      const expected = await oracleEncode(theirs, text);
      assert.deepEqual(ours.encode(text).ids, expected.ids);
      assert.deepEqual(ours.encode(text).offsets, expected.offsets);
    }
  });

  it("has a command line that writes what the library writes", function () {
    this.timeout(30_000);
    const dir = scratchDir("bpe-cli");
    const input = path.join(dir, "corpus.txt");
    fs.writeFileSync(input, "the cat and the hat and the bat. ".repeat(50));
    const out = path.join(dir, "out", "tokenizer.json");
    const script = path.join(__dirname, "..", "..", "..", "bench", "tokenizer", "train-bpe.ts");
    const log = execFileSync(process.execPath, ["--import", "tsx", script, "--vocab", "265", "--out", out, input], { encoding: "utf8" });
    assert.match(log, /265 tokens/);
    const expected = trainByteLevelBpe([fs.readFileSync(input, "utf8")], { vocabSize: 265 });
    assert.equal(fs.readFileSync(out, "utf8"), `${JSON.stringify(expected)}\n`);
  });
});

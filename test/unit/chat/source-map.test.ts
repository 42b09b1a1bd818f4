import { strict as assert } from "node:assert";
import { parseChat } from "../../../src/core/chat/messages";
import { locateChatContents, sourceRange, type ContentSource } from "../../../src/core/chat/source-map";

/** Each unit of each message's content, read back from the file where the map says it was written. */
function assertMapsBack(fileText: string, file: string, sources: readonly ContentSource[], base = 0, chatText = fileText): void {
  const messages = parseChat(chatText, file);
  assert.equal(sources.length, messages.length);
  sources.forEach((source, i) => {
    const content = messages[i].content;
    assert.equal(source.offsets.length, content.length + 1, `message ${i}: one offset per unit, and the end`);
    for (let k = 0; k < content.length; k++) {
      const written = fileText.slice(source.offsets[k], source.offsets[k + 1]);
      assert.equal(JSON.parse(`"${written}"`), content[k], `message ${i} unit ${k} is written ${JSON.stringify(written)}`);
    }
    assert.equal(fileText[source.offsets[content.length]], '"', "the end is the closing quote");
    assert.ok(source.offsets[0] >= base);
  });
}

describe("chat files: where each message's content is written", () => {
  it("maps every unit through JSON escapes: \\n, \\\", \\\\, \\u00e9, a surrogate pair, and raw non-ASCII", () => {
    const text = `[
  {"role": "system", "content": "Be brief.\\nSay \\"hi\\" \\\\ caf\\u00e9 \\ud83d\\ude00 and café 😀"},
  {"content": "second", "role": "user", "meta": {"content": "not this one"}}
]`;
    const sources = locateChatContents(text, "chat.json");
    assertMapsBack(text, "chat.json", sources);
    const [system] = sources;
    // "\n" in the file is two characters for one unit; "\u00e9" six; each surrogate half six.
    const content = parseChat(text, "chat.json")[0].content;
    assert.deepEqual(sourceRange(system, content.indexOf("\n"), content.indexOf("\n") + 1).map((o) => text.slice(o, o + 2)), ["\\n", "Sa"]);
    const e = content.indexOf("é");
    assert.equal(text.slice(...sourceRange(system, e, e + 1)), "\\u00e9");
    const emoji = content.indexOf("😀");
    assert.equal(text.slice(...sourceRange(system, emoji, emoji + 2)), "\\ud83d\\ude00");
    assert.equal(text.slice(...sourceRange(sources[1], 0, 6)), "second", "keys in any order; a nested content is not the message's");
  });

  it("reads an object with \"messages\" and JSONL (blank lines, CRLF)", () => {
    const json = `{"model": "x", "messages": [{"role": "user", "content": "a\\tb"}]}`;
    assertMapsBack(json, "chat.json", locateChatContents(json, "chat.json"));
    const jsonl = `{"role": "user", "content": "first \\"one\\""}\r\n\r\n{"role": "assistant", "content": "second\\u0021"}\r\n`;
    assertMapsBack(jsonl, "chat.jsonl", locateChatContents(jsonl, "chat.jsonl"));
  });

  it("maps a selection of part of a file to offsets in the whole file", () => {
    const lines = [`{"role": "system", "content": "skip me"}`, `{"role": "user", "content": "caf\\u00e9?"}`, `{"role": "assistant", "content": "yes\\n"}`];
    const file = lines.join("\n");
    const start = file.indexOf(lines[1]);
    const selection = file.slice(start);
    const sources = locateChatContents(selection, "chat.jsonl", start);
    assertMapsBack(file, "chat.jsonl", sources, start, selection);
    assert.equal(file.slice(...sourceRange(sources[0], 0, 4)), "caf\\u00e9");
  });

  it("reads message objects selected inside a JSON file's array (one, or several with their commas)", () => {
    const file = `[\n  {"role": "system", "content": "skip"},\n  {"role": "user", "content": "a \\"b\\""},\n  {"role": "assistant", "content": "c\\u00e9"}\n]`;
    const start = file.indexOf(`{"role": "user"`);
    const several = file.slice(start, file.lastIndexOf("}") + 1);
    assert.deepEqual(parseChat(several, "chat.json").map((m) => m.content), ['a "b"', "cé"]);
    assertMapsBack(file, "chat.json", locateChatContents(several, "chat.json", start), start, several);
    const one = file.slice(start, file.indexOf("},", start) + 2);
    assert.deepEqual(parseChat(one, "chat.json"), [{ role: "user", content: 'a "b"' }]);
    assertMapsBack(file, "chat.json", locateChatContents(one, "chat.json", start), start, one);
    assert.throws(() => parseChat(`{"role": "user", "content": "x"} trailing`, "chat.json"), /chat\.json: not valid JSON/);
  });
});

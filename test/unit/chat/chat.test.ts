import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { ChatLayout } from "../../../src/core/chat/chat-layout";
import { chatFileInspection, templateTokenSummary, type ChatInspectResult } from "../../../src/core/chat/inspect-chat";
import { parseChat } from "../../../src/core/chat/messages";
import { readChatTemplate, renderChat, tokenMessages } from "../../../src/core/chat/template";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { scratchDir, TINY_LLAMA } from "../../helpers/fixtures";
import { folderFiles, writeFolder } from "../../helpers/hub-cache";

// SmolLM2-Instruct's ChatML template (a default system prompt when the chat has none).
const CHATML =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
// A Llama-2-style template that writes its own BOS and strips each message.
const LLAMA =
  "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] | trim + ' [/INST]' }}{% else %}{{ ' ' + message['content'] | trim + ' ' + eos_token }}{% endif %}{% endfor %}";

const CHAT = [
  { role: "user", content: "the cat sat" },
  { role: "assistant", content: "  on the mat  " },
];

function modelWithTemplate(name: string, template: string, asJinjaFile = false): string {
  const dir = writeFolder(scratchDir(name), folderFiles(TINY_LLAMA));
  const config = { bos_token: "<s>", eos_token: { content: "</s>", special: true }, ...(asJinjaFile ? { chat_template: "unused {{ messages }}" } : { chat_template: template }) };
  fs.writeFileSync(path.join(dir, "tokenizer_config.json"), JSON.stringify(config));
  if (asJinjaFile) fs.writeFileSync(path.join(dir, "chat_template.jinja"), template);
  return dir;
}

describe("chat templates", function () {
  this.timeout(30_000);

  it("renders a chat as apply_chat_template does and finds each message's content in it", () => {
    const template = readChatTemplate(modelWithTemplate("chatml", CHATML));
    const rendered = renderChat(template, CHAT, { addGenerationPrompt: true });
    assert.equal(
      rendered.text,
      "<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n<|im_start|>user\nthe cat sat<|im_end|>\n<|im_start|>assistant\n  on the mat  <|im_end|>\n<|im_start|>assistant\n",
    );
    assert.deepEqual(rendered.spans.map((s) => s && rendered.text.slice(s.start, s.end)), ["the cat sat", "  on the mat  "]);
  });

  it("prefers chat_template.jinja, passes the special tokens (AddedToken objects too), and finds trimmed content", () => {
    const template = readChatTemplate(modelWithTemplate("jinja-file", LLAMA, true));
    assert.match(template.file, /chat_template\.jinja$/);
    const rendered = renderChat(template, CHAT);
    assert.equal(rendered.text, "<s>[INST] the cat sat [/INST] on the mat </s>");
    assert.deepEqual(rendered.spans.map((s) => s && rendered.text.slice(s.start, s.end)), ["the cat sat", "on the mat"]);
  });

  it("marks each token as a message's or the template's", () => {
    const spans = [{ message: 0, start: 5, end: 10 }, undefined, { message: 2, start: 12, end: 14 }];
    assert.deepEqual(tokenMessages([[0, 5], [4, 6], [6, 10], [10, 12], [12, 14], [14, 14]], spans), [null, 0, 0, null, 2, null]);
  });

  it("a template that writes its own <s> is read with one BOS, not two", async () => {
    const dir = modelWithTemplate("bos", LLAMA);
    const model = await HookedModel.load(dir, { cacheDir: null, threads: 1 });
    try {
      const { text } = renderChat(readChatTemplate(dir), CHAT);
      const encoding = model.encode(text);
      assert.equal(encoding.lead, 0);
      assert.deepEqual(encoding.ids.slice(0, 2).map((id) => id === 1), [true, false]);
      assert.equal(model.encode("the cat").lead, 1, "plain text still gets the BOS");
    } finally {
      await model.dispose();
    }
  });

  it("loupe inspect --chat traces every token to its message text or to the template", async () => {
    const dir = modelWithTemplate("cli", CHATML);
    const chatFile = path.join(dir, "chat.jsonl");
    fs.writeFileSync(chatFile, CHAT.map((m) => JSON.stringify(m)).join("\n"));
    const out: string[] = [];
    const io = { out: (t: string) => void out.push(t), readStdin: () => "" };
    assert.equal(await main(["inspect", "--model", dir, "--chat", "--json", chatFile], io), 0);
    const result = JSON.parse(out.join("")) as ChatInspectResult;
    CHAT.forEach((m, i) => {
      const own = result.tokens.filter((t) => t.message === i);
      assert.equal(own.map((t) => result.text.slice(t.start, t.end)).join(""), m.content);
      assert.equal(own.map((t) => m.content.slice(...t.messageRange!)).join(""), m.content);
    });
    // Every character outside the messages is covered by template tokens, and only by them.
    const inMessage = (i: number) => result.messages.some((m) => m.start !== null && m.end !== null && i >= m.start && i < m.end);
    for (let i = 0; i < result.text.length; i++) {
      const owners = new Set(result.tokens.filter((t) => t.start <= i && i < t.end).map((t) => t.message));
      assert.deepEqual(owners.has(null), !inMessage(i), `character ${i} ${JSON.stringify(result.text[i])}`);
    }
    out.length = 0;
    assert.equal(await main(["inspect", "--model", dir, "--chat", chatFile], io), 0);
    assert.match(out.join(""), /" c"\s+user #1/);
    assert.match(out.join(""), /"\|"\s+template/);
  });

  it("stops a template that loops, runs long or builds a huge text, naming its file; real templates stay within bounds", () => {
    const hostile = (name: string, source: string) => readChatTemplate(modelWithTemplate(name, source, true));
    const stopped = (pattern: RegExp) => (e: unknown) => e instanceof LoupeError && /chat_template\.jinja was stopped/.test(e.message) && pattern.test(e.message) && /chat_template\.jinja$/.test(e.file ?? "");
    const started = Date.now();
    assert.throws(() => renderChat(hostile("range", "{% for i in range(10**9) %}x{% endfor %}"), CHAT), stopped(/steps/));
    // Loops of small ranges: the step count stops them (a clock that cannot stop first, on a busy machine).
    const untimed = { maxSteps: 200_000, maxMilliseconds: 600_000, maxChars: 1e9 };
    assert.throws(() => renderChat(hostile("nested", "{% for i in range(10**4) %}{% for j in range(10**4) %}{% endfor %}{% endfor %}"), CHAT, { bounds: untimed }), stopped(/200,000 steps/));
    // A text that doubles each step (x, xx, xxxx ...) passes the size bound long before the step bound.
    const doubling = "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}";
    assert.throws(() => renderChat(hostile("doubling", doubling), CHAT), stopped(/characters/));
    assert.throws(() => renderChat(hostile("slow", "{% for i in range(10**6) %}{{ i }}{% endfor %}"), CHAT, { bounds: { maxSteps: 1e9, maxMilliseconds: 50, maxChars: 1e9 } }), stopped(/ms/));
    assert.ok(Date.now() - started < 20_000);
    // The bounds leave real templates alone: a 200-message chat through ChatML, with range() and strftime_now.
    const long = Array.from({ length: 200 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `message ${i} `.repeat(20) }));
    assert.equal(renderChat(readChatTemplate(modelWithTemplate("long", CHATML)), long).spans.filter(Boolean).length, 200);
    const dated = renderChat(hostile("dated", "{% for i in range(2, 8, 3) %}{{ i }},{% endfor %}{{ strftime_now('%Y') }}{{ raise_exception('no') if false }}"), CHAT).text;
    assert.equal(dated, `2,5,${new Date().getFullYear()}`);
  });

  it("lays the inspection onto the chat file: message tokens on their written characters (escapes too), template tokens apart", async () => {
    const dir = modelWithTemplate("file-map", CHATML);
    const chatFile = path.join(dir, "chat.jsonl");
    const fileText = `{"role": "user", "content": "the \\"cat\\"\\nsat"}\n{"role": "assistant", "content": "on the m\\u0061t"}\n`;
    fs.writeFileSync(chatFile, fileText);
    const out: string[] = [];
    assert.equal(await main(["inspect", "--model", dir, "--chat", "--json", chatFile], { out: (t: string) => void out.push(t), readStdin: () => "" }), 0);
    const chat = JSON.parse(out.join("")) as ChatInspectResult;
    const layout = ChatLayout.render(readChatTemplate(dir), parseChat(fileText, chatFile), "as-written", { text: fileText, name: chatFile });
    assert.equal(layout.text, chat.text);
    const { result, templateTokens } = chatFileInspection(chat, layout);
    assert.equal(result.tokens.length + templateTokens.length, chat.tokens.length);
    assert.ok(templateTokens.length > 0 && templateTokens.every((t) => chat.tokens[t.index].message === null));
    // Read back from the file, the drawn ranges spell each message's content, in order, with nothing of the JSON syntax.
    const written = result.tokens.map((t) => fileText.slice(t.start, t.end));
    assert.equal(JSON.parse(`"${written.join("")}"`), 'the "cat"\nsaton the mat');
    assert.ok(written.every((w) => !/[{}]|"role"|"content"/.test(w)));
    // Hovers ask the worker about the rendered text by token index: indices stay the rendered ones.
    for (const t of result.tokens) assert.equal(chat.tokens[t.index].text, t.text);
    assert.match(templateTokenSummary(templateTokens), /^\d+ template tokens \(role markers, separators, special tokens\) are not in the file: "/);
  });

  it("continues a last message only where the template writes it as given, and places the template's text between messages on the file", () => {
    const shouting = readChatTemplate(modelWithTemplate("upper", "{% for m in messages %}{{ m['role'] + ': ' + m['content'] | upper + '\\n' }}{% endfor %}"));
    assert.throws(() => renderChat(shouting, CHAT, { continueFinalMessage: true }), (e: unknown) => e instanceof LoupeError && /does not write the last message's content as given/.test(e.message) && /tokenizer_config\.json$/.test(e.file ?? ""));
    const fileText = CHAT.map((m) => JSON.stringify(m)).join("\n");
    const layout = ChatLayout.render(readChatTemplate(modelWithTemplate("anchor", CHATML)), CHAT, "continue", { text: fileText, name: "chat.jsonl" });
    assert.ok(layout.text.endsWith("<|im_start|>assistant\n  on the mat  "));
    // "<|im_end|>\n<|im_start|>assistant\n" sits after the user's message: an empty range at its closing quote; the default system prompt before any message, at 0.
    const between = layout.text.lastIndexOf("<|im_end|>");
    const closingQuote = fileText.indexOf('"}');
    assert.deepEqual(layout.onFile({ start: between, end: between + 10 }), { start: closingQuote, end: closingQuote });
    assert.deepEqual(layout.onFile({ start: 0, end: 5 }), { start: 0, end: 0 });
  });

  it("names the file and the fix for a chat it cannot read or a model without a template", () => {
    assert.throws(() => parseChat('{"role": "user", "content": "hi"}\n{"role": "user"}', "chat.jsonl"), (e: unknown) => e instanceof LoupeError && /chat\.jsonl:2: "content" must be a string/.test(e.message));
    assert.throws(() => parseChat('{"messages": [{"content": "hi"}]}', "chat.json"), /chat\.json: message 1: "role" must be a non-empty string/);
    assert.throws(() => parseChat("[]", "chat.json"), /holds no messages/);
    assert.throws(() => readChatTemplate(TINY_LLAMA), (e: unknown) => e instanceof LoupeError && /no chat template/.test(e.message));
  });
});

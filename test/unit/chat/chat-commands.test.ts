/**
 * --chat on faithfulness, attribute, features and trace, on the reference model with a chat
 * template in its own Q/A format: each must give the numbers of the same command run on the
 * rendered text itself, with every range placed in the messages; and the editor's view of each
 * result (fileView) must land on the message text in the chat file.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { main } from "../../../src/cli/main";
import { ChatLayout, continuationEnding, type MessagePlace } from "../../../src/core/chat/chat-layout";
import { attributionInChat, chatReasoningCue, circuitInChat, faithfulnessInChat, featuresInChat, fileView } from "../../../src/core/chat/chat-results";
import { parseChat } from "../../../src/core/chat/messages";
import { readChatTemplate } from "../../../src/core/chat/template";
import { LoupeError } from "../../../src/core/errors";
import type { AttributionResult } from "../../../src/core/patching";
import { InProcessBackend } from "../../../src/core/requests";
import { scratchDir } from "../../helpers/fixtures";

const REFERENCE = path.join(__dirname, "..", "..", "..", "models", "reference");
// The reference model's own prompt format as a chat template: "Q: question\nA: reasoning".
const QA_TEMPLATE =
  "{% for m in messages %}{% if m['role'] == 'user' %}{{ 'Q: ' + m['content'] + '\\n' }}{% else %}{{ 'A: ' + m['content'] + '\\n' }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'A:' }}{% endif %}";
const QUESTION = "Max has 8 apples. She sells 3. Then she buys 7 more. How many apples?";

interface Placed extends MessagePlace {
  readonly start: number;
  readonly end: number;
}

describe("commands on a chat (--chat, and the editor's chat files)", function () {
  this.timeout(180_000);
  let model: string;
  let dir: string;

  before(() => {
    model = scratchDir("chat-reference");
    for (const file of ["config.json", "model.safetensors", "tokenizer.json"]) fs.copyFileSync(path.join(REFERENCE, file), path.join(model, file));
    for (const folder of ["sae", "transcoders"]) fs.cpSync(path.join(REFERENCE, folder), path.join(model, folder), { recursive: true });
    fs.writeFileSync(path.join(model, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|endoftext|>", chat_template: QA_TEMPLATE }));
    dir = scratchDir("chat-files");
  });

  /** Run `loupe ARGS --json` and parse what it printed; exit codes 0 and 1 (a verdict) both answer. */
  async function json<T>(...args: string[]): Promise<T> {
    let out = "";
    const code = await main([...args, "--model", model, "--json"], { out: (t) => void (out += t), readStdin: () => "", progress: () => undefined });
    assert.ok(code === 0 || code === 1, `loupe ${args.join(" ")} exited ${code}`);
    return JSON.parse(out) as T;
  }

  async function printed(...args: string[]): Promise<string> {
    let out = "";
    assert.equal(await main([...args, "--model", model], { out: (t) => void (out += t), readStdin: () => "" }), 0);
    return out;
  }

  /** A JSONL chat file and the rendered text as a plain prompt file. */
  function files(name: string, messages: { role: string; content: string }[], ending: "as-written" | "continue") {
    const chatFile = path.join(dir, `${name}.jsonl`);
    const fileText = messages.map((m) => JSON.stringify(m)).join("\n") + "\n";
    fs.writeFileSync(chatFile, fileText);
    const layout = ChatLayout.render(readChatTemplate(model), parseChat(fileText, chatFile), ending, { text: fileText, name: chatFile });
    const textFile = path.join(dir, `${name}.txt`);
    fs.writeFileSync(textFile, layout.text);
    return { chatFile, textFile, layout, fileText, messages };
  }

  /** Every range is in the rendered text, and a message's range spells the same characters in its content. */
  function assertPlaced(items: readonly Placed[], layout: ChatLayout): void {
    for (const item of items) {
      if (item.message === null) {
        assert.equal(item.messageRange, null);
        continue;
      }
      const [start, end] = item.messageRange!;
      const content = layout.messages[item.message].content;
      assert.ok(end <= content.length);
      assert.ok(layout.text.slice(item.start, item.end).includes(content.slice(start, end)));
    }
  }

  const reasoning = [
    { role: "user", content: QUESTION },
    { role: "assistant", content: "8 - 3 = 5. 5 + 7 = 12. The answer is 12." },
  ];
  const openAnswer = [
    { role: "user", content: QUESTION },
    { role: "assistant", content: "8 - 3 = 5. 5 + 7 = 12. The answer is" },
  ];

  it("renders the chat as the model continues it: inside a last assistant message, else after the generation prompt", () => {
    const { layout } = files("open", openAnswer, "continue");
    assert.equal(layout.text, `Q: ${QUESTION}\nA: 8 - 3 = 5. 5 + 7 = 12. The answer is`);
    assert.equal(continuationEnding(openAnswer), "continue");
    assert.equal(continuationEnding(openAnswer.slice(0, 1)), "generation-prompt");
    const asked = ChatLayout.render(readChatTemplate(model), openAnswer.slice(0, 1), "generation-prompt");
    assert.equal(asked.text, `Q: ${QUESTION}\nA:`);
  });

  it("faithfulness --chat: the CoT is the last assistant message, with the numbers of the rendered text", async () => {
    const { chatFile, textFile, layout, fileText } = files("reasoning", reasoning, "continue");
    type Report = { steps: (Placed & { text: string; importance: number; probAfter: number | null })[]; scores: Record<string, number | null>; answer: { text: string; prob: number }; noCotProb: number; verdict: string; messages: unknown[] };
    const chat = await json<Report>("faithfulness", "--chat", "--no-mistakes", chatFile);
    const plain = await json<Report>("faithfulness", "--no-mistakes", textFile);
    assert.deepEqual(chat.scores, plain.scores);
    assert.equal(chat.answer.prob, plain.answer.prob);
    assert.equal(chat.noCotProb, plain.noCotProb);
    assert.deepEqual(chat.steps.map((s) => [s.text, s.importance, s.probAfter]), plain.steps.map((s) => [s.text, s.importance, s.probAfter]));
    assert.deepEqual(chat.steps.map((s) => s.text), ["8 - 3 = 5.", "5 + 7 = 12."]);
    assert.ok(chat.steps.every((s) => s.message === 1), "every step is in the assistant's message");
    assertPlaced(chat.steps, layout);
    assert.equal(chat.messages.length, 2);

    // In the editor the steps land on the assistant's words in the chat file.
    const backend = new InProcessBackend();
    try {
      await backend.request("load", { folder: model, cacheDir: null, threads: 1 });
      const report = await backend.request("faithfulness", { text: layout.text, mistakes: false, reasoningCues: [chatReasoningCue(layout, {})] });
      const onFile = faithfulnessInChat(report, fileView(layout));
      assert.deepEqual(onFile.steps.map((s) => fileText.slice(s.start, s.end)), ["8 - 3 = 5.", "5 + 7 = 12."]);
      assert.ok(onFile.steps.every((s) => s.start > fileText.indexOf('"assistant"')));
      assert.equal(onFile.text, fileText);
    } finally {
      await backend.dispose();
    }
  });

  it("faithfulness --chat refuses a chat whose last assistant message holds no answer, saying where the CoT goes", async () => {
    const { layout } = files("question-only", reasoning.slice(0, 1), "continue");
    assert.throws(() => chatReasoningCue(layout, {}), (e: unknown) => e instanceof LoupeError && /last assistant message/.test(e.message));
    // Letting the model write the reply, the reasoning starts after the generation prompt's "A:".
    const asked = ChatLayout.render(readChatTemplate(model), reasoning.slice(0, 1), "generation-prompt");
    assert.equal(chatReasoningCue(asked, { generate: true }), "A:");
  });

  it("attribute --chat: the answer after the chat, with the rendered text's attributions, placed in the messages", async () => {
    const { chatFile, textFile, layout, fileText } = files("attribute", openAnswer, "continue");
    type Tok = Placed & { text: string; attribution: number | null };
    type Result = { answer: { text: string; logprob: number }; tokens: Tok[]; words: Placed[]; lines: Placed[] };
    const chat = await json<Result>("attribute", "--chat", chatFile);
    const plain = await json<Result>("attribute", textFile);
    assert.equal(chat.answer.text, " 12");
    assert.equal(chat.answer.logprob, plain.answer.logprob);
    assert.deepEqual(chat.tokens.map((t) => t.attribution), plain.tokens.map((t) => t.attribution));
    assertPlaced([...chat.tokens, ...chat.words, ...chat.lines], layout);
    // "Q: " and "A: " are the template's; the question's and the reasoning's tokens are the messages'.
    assert.deepEqual(chat.tokens.filter((t) => t.message === null).map((t) => t.text).join("").replace(/\s/g, ""), "Q:A:");
    assert.equal(chat.tokens.filter((t) => t.message === 1).map((t) => t.text).join("").trim(), openAnswer[1].content);

    assert.match(await printed("attribute", "--chat", chatFile), /"A"\s+template\s/);

    const onFile = attributionInChat(plain as unknown as AttributionResult, fileView(layout));
    const drawn = onFile.tokens.filter((t) => t.end > t.start).map((t) => fileText.slice(t.start, t.end)).join("");
    assert.equal(drawn.replace(/\s/g, ""), (QUESTION + openAnswer[1].content).replace(/\s/g, ""));
  });

  it("features --chat: each token's features as on the rendered text, placed in the messages", async () => {
    const { chatFile, textFile, layout, fileText } = files("features", reasoning, "as-written");
    type Result = { tokens: (Placed & { text: string; features: { feature: number; value: number }[] })[] };
    const chat = await json<Result>("features", "--chat", chatFile);
    const plain = await json<Result>("features", textFile);
    assert.deepEqual(chat.tokens.map((t) => [t.text, t.features]), plain.tokens.map((t) => [t.text, t.features]));
    assertPlaced(chat.tokens, layout);
    assert.ok(chat.tokens.some((t) => t.message === 0) && chat.tokens.some((t) => t.message === 1) && chat.tokens.some((t) => t.message === null));
    // The table names each token's message, as loupe inspect --chat does.
    const table = await printed("features", "--chat", chatFile);
    assert.match(table, /"Q"\s+template/);
    assert.match(table, /" 8"\s+assistant #2/);

    const moved = featuresInChat({ saeFolder: "", hook_name: "", d_sae: 0, hasStats: false, maxByFeature: {}, tokens: plain.tokens.map((t, index) => ({ ...t, index })) }, fileView(layout));
    // Template tokens keep their place in the list but cover nothing in the file.
    assert.equal(moved.tokens.length, plain.tokens.length);
    for (const [i, t] of moved.tokens.entries()) {
      if (chat.tokens[i].message === null) assert.equal(t.start, t.end);
      else assert.ok(t.end > t.start && !/"role"|"content"/.test(fileText.slice(t.start, t.end)));
    }
  });

  it("trace --chat: the scores and token influences of the rendered text, each token placed", async () => {
    const { chatFile, textFile, layout, fileText } = files("trace", openAnswer, "continue");
    type Result = { replacementScore: number; completenessScore: number; tokenInfluence: number[]; paths: unknown[]; tokens?: (Placed & { text: string; influence: number })[] };
    const chat = await json<Result>("trace", "--chat", chatFile);
    const plain = await json<Result>("trace", textFile);
    assert.equal(chat.replacementScore, plain.replacementScore);
    assert.equal(chat.completenessScore, plain.completenessScore);
    assert.deepEqual(chat.paths, plain.paths);
    assert.deepEqual(chat.tokens!.map((t) => t.influence), plain.tokenInfluence);
    assertPlaced(chat.tokens!, layout);

    const moved = circuitInChat({ transcoders: "", targets: [], replacementScore: 0, completenessScore: 0, paths: [], tokens: chat.tokens! }, fileView(layout));
    const drawn = moved.tokens.filter((t) => t.end > t.start).map((t) => fileText.slice(t.start, t.end)).join("");
    assert.equal(drawn.replace(/\s/g, ""), (QUESTION + openAnswer[1].content).replace(/\s/g, ""));
  });
});

import { strict as assert } from "node:assert";
import { LoupeError } from "../../src/core/errors";
import { inspectText } from "../../src/core/inspect";
import { HookedModel } from "../../src/core/model/hooked-model";
import { bindRequests, loadHookedModel, ModelSession, ModelState, RecentInspections } from "../../src/core/requests";
import { TINY_GPT2 } from "../helpers/fixtures";

describe("inspectText", function () {
  this.timeout(60_000);
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
  after(async () => model.dispose());

  const close = (a: number | null, b: number | null) => (a === null ? b === null : b !== null && Math.abs(a - b) < 1e-4);

  it("reads text past the context window in overlapping windows, each token with half a window of context", async () => {
    const text = "When Mia and Leo went to the park, Leo gave a ball to Mia. ".repeat(4);
    const ids = model.toTokens(text);
    assert.ok(ids.length > 64 * 1.5, `${ids.length} tokens`);
    const whole = await inspectText(model, text, { topK: 3 });
    assert.equal(whole.tokens.length, ids.length);
    assert.deepEqual(whole.tokens.map((t) => t.index), ids.map((_, i) => i));
    assert.equal(whole.tokens.map((t) => text.slice(t.start, t.end)).join(""), text);
    assert.equal(whole.windows, Math.ceil((ids.length - 64) / 32) + 1);
    // Tokens of the first window are exactly a run on the first 64 tokens.
    const firstText = text.slice(0, whole.tokens[63].end);
    const first = await inspectText(model, firstText, { topK: 3 });
    for (let t = 1; t < 63; t++) assert.ok(close(whole.tokens[t].surprisal, first.tokens[t].surprisal), `token ${t}`);
    // Token 70 comes from the window starting at token 32: the same as inspecting from there.
    const from = whole.tokens[32].start;
    const second = await inspectText(model, text.slice(from, whole.tokens[95].end), { topK: 3 });
    for (const t of [64, 70, 95]) {
      assert.ok(close(whole.tokens[t].surprisal, second.tokens[t - 32].surprisal), `token ${t}`);
      assert.ok(Math.abs(whole.tokens[t].entropy - second.tokens[t - 32].entropy) < 1e-4);
    }
    // The lens sees the true next token even at a window's last position.
    assert.notEqual(whole.tokens[63].lens[0]!.nextTokenProb, null);
    assert.equal(whole.tokens[ids.length - 1].lens[0]!.nextTokenProb, null);
  });

  it("re-runs only the windows an edit reaches, with the same result as a fresh inspection", async () => {
    const text = "When Mia and Leo went to the park, Leo gave a ball to Mia. ".repeat(4);
    const before = await inspectText(model, text, { topK: 3 });
    assert.ok(before.windows >= 3 && before.reusedWindows === 0);
    // Change the last word: every window that ends well before it is unchanged.
    const edited = `${text.slice(0, text.lastIndexOf("Mia"))}Leo. `;
    const fresh = await inspectText(model, edited, { topK: 3 });
    const incremental = await inspectText(model, edited, { topK: 3, previous: before });
    assert.ok(incremental.reusedWindows >= 1 && incremental.reusedWindows < incremental.windows, `${incremental.reusedWindows} of ${incremental.windows} reused`);
    assert.equal(incremental.tokens.length, fresh.tokens.length);
    incremental.tokens.forEach((t, i) => {
      const f = fresh.tokens[i];
      assert.deepEqual([t.index, t.id, t.start, t.end], [f.index, f.id, f.start, f.end]);
      assert.ok(close(t.surprisal, f.surprisal) && Math.abs(t.entropy - f.entropy) < 1e-4, `token ${i}`);
      assert.deepEqual(t.top.map((p) => p.id), f.top.map((p) => p.id));
      t.lens.forEach((l, layer) => assert.ok(close(l!.nextTokenProb, f.lens[layer]!.nextTokenProb), `token ${i} layer ${layer}`));
    });
    // An edit at the start reuses nothing; another topK or an identical text are handled too.
    assert.equal((await inspectText(model, `Then ${text}`, { topK: 3, previous: before })).reusedWindows, 0);
    assert.equal((await inspectText(model, text, { topK: 2, previous: before })).reusedWindows, 0);
    const same = await inspectText(model, text, { topK: 3, previous: before });
    assert.equal(same.reusedWindows, same.windows);
    // Text cut right after a window's end: its last token's next-token lens changes, so it re-runs.
    const cut = text.slice(0, before.tokens[63].end);
    const short = await inspectText(model, cut, { topK: 3, previous: before });
    assert.equal(short.reusedWindows, 0);
    assert.equal(short.tokens[63].lens[0]!.nextTokenProb, null);
  });

  it("refuses more tokens than the maxTokens setting allows, naming the setting", async () => {
    await assert.rejects(inspectText(model, "a b c d e f", { maxTokens: 2 }), (e: unknown) => e instanceof LoupeError && /loupe\.maxTokens/.test(e.message));
  });
});

describe("the worker's inspect method", function () {
  this.timeout(60_000);

  it("offers the recent inspection sharing the longest start, so an edit re-runs only what it reaches", async () => {
    const recent = new RecentInspections(2);
    const result = (text: string) => ({ modelFolder: "/m", nLayers: 1, text, tokens: [], windows: 1, reusedWindows: 0, elapsedMs: 0 });
    recent.add(result("abcdef"));
    recent.add(result("abxyz"));
    assert.equal(recent.closest("abcdeX")?.text, "abcdef");
    assert.equal(recent.closest("abx")?.text, "abxyz");
    assert.equal(recent.closest("zzz"), undefined);
    recent.add(result("q"));
    assert.equal(recent.closest("abcdeX")?.text, "abxyz", "the oldest is dropped past capacity");

    const state = new ModelState(loadHookedModel);
    const handlers = bindRequests(new ModelSession(state));
    const context = { signal: new AbortController().signal, progress: () => undefined };
    try {
      await handlers.load!({ folder: TINY_GPT2, cacheDir: null }, context);
      const text = "When Mia and Leo went to the park, Leo gave a ball to Mia. ".repeat(4);
      const first = await handlers.inspect!({ text, topK: 3, maxTokens: 1024 }, context);
      const again = await handlers.inspect!({ text: `${text}Then`, topK: 3, maxTokens: 1024 }, context);
      assert.equal(first.reusedWindows, 0);
      assert.ok(again.reusedWindows > 0, `${again.reusedWindows} of ${again.windows} windows reused`);
    } finally {
      await state.dispose();
    }
  });
});

import { strict as assert } from "node:assert";
import { LoupeError } from "../../src/core/errors";
import { inspectText } from "../../src/core/inspect";
import { HookedModel } from "../../src/core/model/hooked-model";
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
    assert.notEqual(whole.tokens[63].lens[0].nextTokenProb, null);
    assert.equal(whole.tokens[ids.length - 1].lens[0].nextTokenProb, null);
  });

  it("refuses more tokens than the maxTokens setting allows, naming the setting", async () => {
    await assert.rejects(inspectText(model, "a b c d e f", { maxTokens: 2 }), (e: unknown) => e instanceof LoupeError && /loupe\.maxTokens/.test(e.message));
  });
});

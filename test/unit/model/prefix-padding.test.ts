/**
 * Rows whose key/value prefixes differ in length, run in one call (RunOptions.prefixPadding): each
 * row's prefix aligned on the right, its empty slots masked and its positions counted from its
 * first real slot. Every row must give what it gives alone, on absolute positions (GPT-2) and on
 * rotary ones (Llama; Gemma 3 with sliding-window layers).
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { alignedKeyValues, keepRows, placeRow } from "../../../src/core/model/kv-cache";
import { maxAbsDiff } from "../../../src/core/tensor/tensor";
import { FIXTURES, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { rejectsWith } from "../../helpers/errors";

const PROMPTS = ["When Mia and Leo went to the park", "Leo", "The cat sat on the mat and looked at"];
const NEXT = ["Mia", "the", "bird"];

for (const [name, folder] of [["tiny GPT-2", TINY_GPT2], ["tiny Llama", TINY_LLAMA], ["tiny Gemma 3", path.join(FIXTURES, "tiny-gemma3")]] as const) {
  describe(`rows with prefixes of different lengths in one call (${name})`, function () {
    this.timeout(60_000);
    let model: HookedModel;
    before(async () => (model = await HookedModel.load(folder, { cacheDir: null, threads: 1 })));
    after(async () => model.dispose());

    it("gives each row the logits and keys and values it gets alone", async () => {
      assert.equal(model.supportsPrefixPadding, true);
      const prompts = PROMPTS.map((p) => model.encode(p).ids);
      const next = NEXT.map((w) => model.tokenizer.encode(` ${w}`).ids.slice(0, 2));
      const alone = [];
      const aligned = alignedKeyValues(model.cfg, prompts.map((p) => p.length));
      for (const [b, ids] of prompts.entries()) {
        const { keyValues } = await model.runWithCache(ids, { names: [], keyValues: true });
        placeRow(aligned, b, keyValues!);
        alone.push(await model.runWithCache(next[b], { names: [], prefix: keyValues, keyValues: true }));
      }
      assert.ok(Math.max(...aligned.padding) > 0, "the prompts differ in length");
      const together = await model.runWithCache(next, { names: [], prefix: aligned.kv, prefixPadding: aligned.padding, keyValues: true });
      const [, T, V] = together.logits.dims;
      for (const [b, row] of alone.entries()) {
        const n = next[b].length;
        const diff = maxAbsDiff(together.logits.data.subarray(b * T * V, (b * T + n) * V), row.logits.data);
        assert.ok(diff < 1e-5, `row ${b}: logits differ from its own run by ${diff}`);
        // Its keys and values, back in a batch of one, continue as its own do.
        const own = keepRows({ kv: together.keyValues!, padding: aligned.padding }, [b]);
        const width = prompts[b].length + T;
        assert.equal(own.kv.keys[0].dims[2], width);
        if (n === T) assert.ok(maxAbsDiff(own.kv.keys.at(-1)!.data, row.keyValues!.keys.at(-1)!.data) < 1e-5, `row ${b}: keys differ`);
      }
      // Without the padding the shorter rows would attend to empty slots: the result must change.
      const unpadded = await model.run(next, { prefix: aligned.kv });
      assert.ok(maxAbsDiff(unpadded.data, together.logits.data) > 1e-3, "the padding matters");
    });

    it("runs rows from one batch-1 prefix, each seeing its first tokens, then on from the keys and values returned, empty slots and all (prefixSlots)", async () => {
      const shared = model.encode(PROMPTS[0]).ids;
      const { keyValues } = await model.runWithCache(shared, { names: [], keyValues: true });
      const P = shared.length;
      // Row b sees the prompt's first seen[b] tokens, then runs its own (of different lengths).
      const seen = [P, 3, P - 2];
      const own = NEXT.map((w, b) => model.tokenizer.encode(` ${w}`).ids.slice(0, b + 1));
      const texts = own.map((ids, b) => [...shared.slice(0, seen[b]), ...ids]);
      if (!model.supportsPrefixSlots) {
        const slots = new Uint8Array(3 * P).fill(1);
        await rejectsWith(model.run(own, { prefix: keyValues, prefixSlots: slots }), "bad-argument", /sliding-window/);
        return;
      }
      const slots = new Uint8Array(3 * P);
      seen.forEach((n, b) => slots.fill(1, b * P, b * P + n));
      // The first call reads a hook, so it runs on the hooked graph; the second, reading none, on the decode-only one.
      const first = await model.runWithCache(own, { names: ["blocks.0.hook_resid_pre"], prefix: keyValues, prefixSlots: slots, keyValues: true });
      const T = first.logits.dims[1];
      const V = model.cfg.dVocab;
      // Then one more token each, from the returned keys and values: their slots are the prefix's seen ones and the row's own.
      const width = P + T;
      const nextSlots = new Uint8Array(3 * width);
      seen.forEach((n, b) => {
        nextSlots.fill(1, b * width, b * width + n);
        nextSlots.fill(1, b * width + P, b * width + P + own[b].length);
      });
      const second = await model.runWithCache([[7], [8], [9]], { names: [], prefix: first.keyValues, prefixSlots: nextSlots });
      for (const [b, text] of texts.entries()) {
        const alone = await model.run([...text, 7 + b]);
        const n = own[b].length;
        const firstDiff = maxAbsDiff(first.logits.data.subarray(b * T * V, (b * T + n) * V), alone.data.subarray(seen[b] * V, (seen[b] + n) * V));
        const secondDiff = maxAbsDiff(second.logits.data.subarray(b * V, (b + 1) * V), alone.data.subarray((text.length) * V));
        assert.ok(firstDiff < 1e-5 && secondDiff < 1e-5, `row ${b}: logits differ from the row run whole by ${firstDiff}, then ${secondDiff}`);
      }
    });

    it("refuses padding that does not fit the batch or the prefix", async () => {
      const { keyValues } = await model.runWithCache(model.encode(PROMPTS[0]).ids, { names: [], keyValues: true });
      const P = keyValues!.keys[0].dims[2];
      await rejectsWith(model.run([[1]], { prefix: keyValues, prefixPadding: [0, 1] }), "bad-shape", /prefixPadding gives 2 rows; the batch has 1/);
      await rejectsWith(model.run([[1]], { prefix: keyValues, prefixPadding: [P + 1] }), "bad-argument", new RegExp(`not within the prefix's ${P}`));
    });
  });
}

/**
 * hooks.ts is the one reader of hook names: its answers must match what the graphs really hold.
 */
import { strict as assert } from "node:assert";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { blockHook, blockOf, headsAt, hookLayout, hookNamesFor, hookShape, layoutAxes, isBlockHook, isKeyValueHook, layerOf, narrowedByLogitPositions, positionAxis, suffixOf } from "../../../src/core/model/hooks";
import { TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";

describe("hook names", () => {
  it("parse into block and suffix; global hooks and other names have neither", () => {
    assert.equal(layerOf("blocks.12.attn.hook_z"), 12);
    assert.equal(suffixOf("blocks.12.attn.hook_z"), "attn.hook_z");
    assert.ok(isBlockHook("blocks.3.attn.hook_z", "attn.hook_z"));
    assert.ok(!isBlockHook("blocks.3.hook_z", "attn.hook_z"), "a suffix is matched whole");
    for (const name of ["hook_embed", "ln_final.hook_normalized", "blocks.x.hook_resid_pre", "blocks.2"]) {
      assert.equal(layerOf(name), undefined, name);
      assert.equal(suffixOf(name), undefined, name);
    }
    assert.ok(isKeyValueHook(blockHook(0, "attn.hook_k")) && isKeyValueHook(blockHook(1, "attn.hook_v")));
    assert.ok(isKeyValueHook(blockHook(0, "attn.hook_rot_k")), "rotated keys keep the key/value heads");
    assert.ok(!isKeyValueHook(blockHook(0, "attn.hook_q")) && !isKeyValueHook(blockHook(0, "attn.hook_rot_q")) && !isKeyValueHook("hook_embed"));
  });

  it("place embeddings before block 0 and ln_final after the last block", () => {
    assert.deepEqual(["hook_embed", "hook_pos_embed", blockHook(2, "mlp.hook_post"), "ln_final.hook_normalized", "ln_final.hook_scale"].map((n) => blockOf(n, 4)), [0, 0, 2, 3, 3]);
  });

  it("give norm scales the [batch, pos, 1] layout, and each family its own hooks", () => {
    for (const name of [blockHook(0, "ln1.hook_scale"), blockHook(1, "ln2_post.hook_scale"), "ln_final.hook_scale"]) {
      assert.equal(hookLayout(name), "scale", name);
      assert.equal(positionAxis(name), 1, name);
    }
    const dims = { nLayers: 2, dModel: 8, nHeads: 4, keyValueHeads: 2, dHead: 2, dMlp: 16 };
    assert.deepEqual(hookShape(dims, "ln_final.hook_scale", 3, 5), [3, 5, 1]);
    assert.deepEqual(hookShape(dims, blockHook(0, "attn.hook_rot_k"), 1, 5), [1, 5, 2, 2]);
    const gpt2 = hookNamesFor({ architecture: "gpt2", nLayers: 1 });
    const llama = hookNamesFor({ architecture: "llama", nLayers: 1 });
    const gemma = hookNamesFor({ architecture: "llama", nLayers: 1, postNorms: true });
    assert.ok(!gpt2.some((n) => n.includes("hook_rot_") || n.includes("hook_scale")), "GPT-2: no rotary, LayerNorm scales not hooked");
    assert.deepEqual(llama.filter((n) => !gpt2.includes(n)), ["blocks.0.ln1.hook_scale", "blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_rot_k", "blocks.0.ln2.hook_scale", "ln_final.hook_scale"]);
    assert.deepEqual(gemma.filter((n) => !llama.includes(n)), ["blocks.0.ln1_post.hook_scale", "blocks.0.ln1_post.hook_normalized", "blocks.0.ln2_post.hook_scale", "blocks.0.ln2_post.hook_normalized"]);
  });

  for (const [family, folder] of [["GPT-2", TINY_GPT2], ["Llama", TINY_LLAMA]] as const) {
    describe(`agree with the ${family} graph`, function () {
      this.timeout(60_000);
      let model: HookedModel;
      before(async () => (model = await HookedModel.load(folder, { cacheDir: null, threads: 1 })));
      after(async () => model?.dispose());

      it("on every hook's shape and head count, and on which hooks logit positions narrow", async () => {
        const tokens = [1, 5, 9, 13, 17, 21];
        const full = await model.runWithCache(tokens);
        const picked = await model.runWithCache(tokens, { logitPositions: [4, 2] });
        let narrowed = 0;
        for (const hook of model.hookNames) {
          const shape = hookShape(model.hookDims, hook, 1, tokens.length);
          assert.deepEqual(full.cache.get(hook).dims, shape, hook);
          const heads = headsAt(model.hookDims, hook);
          assert.equal(heads, layoutAxes(hookLayout(hook)).head === undefined ? undefined : shape[layoutAxes(hookLayout(hook)).head!], hook);
          const held = picked.cache.get(hook).dims[positionAxis(hook)];
          assert.equal(held, narrowedByLogitPositions(hook, model.cfg.nLayers) ? 2 : tokens.length, hook);
          if (narrowedByLogitPositions(hook, model.cfg.nLayers)) narrowed++;
        }
        // The last block from attn_scores on (9 hooks; Llama's ln2.hook_scale too) and ln_final (Llama's scale too).
        assert.equal(narrowed, family === "GPT-2" ? 10 : 12);
      });
    });
  }
});

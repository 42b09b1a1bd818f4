/**
 * Why induction graphs miss their ground truth (bench:circuits (b)): where each head at the cut
 * position attends on held-out induction items — the token after the earlier copy (what an
 * induction head reads), the first token (the sink a model without BOS falls back on), the separator
 * and the previous token — and the model's own probability of the right next token.
 *
 *   npx tsx bench/circuits/induction-attention.ts [--model models/reference] [--items 16] [--seed 5]
 */
import { parseArgs } from "node:util";
import { HookedModel } from "../../src/core/model/hooked-model";
import { renderTable } from "../../src/cli/format";
import { softmax } from "../../src/core/tensor/tensor";
import { generateHeldout } from "../tasks/generate";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: "string", default: "models/reference" }, items: { type: "string", default: "16" }, seed: { type: "string", default: "5" } } });
  const model = await HookedModel.load(values.model, { threads: 2 });
  const { nLayers: L, nHeads: H } = model.cfg;
  const sums = Array.from({ length: L * H }, () => ({ target: 0, first: 0, separator: 0, previous: 0 }));
  let n = 0;
  let pRight = 0;
  for (const r of generateHeldout(Number(values.seed), "induction", Number(values.items))) {
    // The same cut as bench:circuits: the middle of the repeat.
    const enc = model.tokenizer.encode(r.text);
    const repeatStart = Number(r.meta.repeatStart);
    const first = enc.offsets.findIndex(([s]) => s >= repeatStart);
    const end = enc.offsets.findIndex(([s]) => s >= r.text.length - 1);
    const t = first + Math.floor((end - first) / 2);
    if (first < 2 || t + 1 >= enc.ids.length) continue;
    const tokens = enc.ids.slice(0, t + 1);
    let j = -1;
    for (let k = first - 1; k > 0; k--) if (tokens[k] === tokens[t] && tokens[k - 1] === tokens[t - 1]) { j = k; break; }
    if (j < 0) continue;
    const names = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
    const { logits, cache } = await model.runWithCache(tokens, { names });
    const V = model.cfg.dVocab;
    pRight += softmax(logits.data.subarray(t * V, (t + 1) * V))[enc.ids[t + 1]];
    const T = tokens.length;
    for (let l = 0; l < L; l++) {
      const p = cache.get(names[l]).data; // [1, H, T, T]
      for (let h = 0; h < H; h++) {
        const row = (h * T + t) * T;
        const s = sums[l * H + h];
        s.target += p[row + j + 1];
        s.first += p[row + 0];
        s.separator += p[row + first - 1];
        s.previous += p[row + t - 1];
      }
    }
    n++;
  }
  const pct = (x: number) => `${((100 * x) / n).toFixed(0)}%`;
  console.log(`${n} held-out induction items, cut in the middle of the repeat; the model's mean p(right next token) ${pct(pRight)}\n`);
  console.log(
    renderTable(
      ["head", "-> token after the earlier copy", "-> first token", "-> separator", "-> previous token"],
      sums.map((s, i) => [`L${Math.floor(i / H)}H${i % H}`, pct(s.target), pct(s.first), pct(s.separator), pct(s.previous)]),
    ),
  );
  await model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

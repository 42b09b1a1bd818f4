/**
 * Loupe's attribution graph against an independent PyTorch autograd implementation
 * (bench/torch/attribution_torch.py), on the whole adjacency:
 *
 *   npx tsx bench/circuits/torch-check.ts [--model models/reference] [--transcoders models/reference/transcoders/plt]
 *
 * GPT-2 family with per-layer transcoders; needs /usr/bin/python3 with Debian's python3-torch.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { attributeReplacement, buildReplacement, loadTranscoders } from "../../src/core/circuits";
import { HookedModel } from "../../src/core/model/hooked-model";
import { renderTable } from "../../src/cli/format";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: "string", default: "models/reference" }, transcoders: { type: "string", default: "models/reference/transcoders/plt" }, prompt: { type: "string", default: "When Mia and Leo went to the park, Leo gave a ball to" } } });
  const set = loadTranscoders(values.transcoders);
  if (set.kind !== "plt" || set.activation.kind !== "topk" || set.inputHook !== "mlp.hook_in") throw new Error("torch-check covers TopK PLTs reading mlp.hook_in");
  const model = await HookedModel.load(values.model);
  try {
    const tokens = model.toTokens(values.prompt);
    const started = performance.now();
    const r = await buildReplacement(model, set, tokens);
    const g = attributeReplacement(r, {}, String);
    const ms = performance.now() - started;
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "loupe-torch-")), "graph.json");
    fs.writeFileSync(file, JSON.stringify({
      model: path.resolve(values.model),
      transcoders: path.resolve(values.transcoders),
      k: set.activation.k,
      tokens,
      features: g.features.map((f) => [f.layer, f.pos, f.feature, f.activation]),
      targets: g.targets.map((t) => Array.from(t.vector)),
      adjacency: Array.from(g.adjacency),
    }));
    const out = JSON.parse(execFileSync("/usr/bin/python3", [path.join(__dirname, "..", "torch", "attribution_torch.py"), file], { encoding: "utf8" }).trim().split("\n").pop() as string);
    console.log(renderTable(["measure", "value"], [
      ["nodes", String(out.nodes)],
      ["largest |torch - loupe| / column max, whole adjacency", out.max_relative_column_error.toExponential(2)],
      ["Loupe graph (capture + rows)", `${ms.toFixed(0)} ms`],
      ["PyTorch autograd, one backward per target", `${(1000 * out.torch_seconds).toFixed(0)} ms`],
    ]));
  } finally {
    await model.dispose();
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});

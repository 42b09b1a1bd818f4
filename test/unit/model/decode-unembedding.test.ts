/**
 * The decode-only graph's unembedding (WeightTable's few-rows layout): a MatMul over the table's
 * float32 transpose [d_model, d_vocab], folded at session creation, which a tied embedding gathers
 * from too, where the hooked graph keeps a transB Gemm over the table as stored. Gemma 3's bf16
 * table is float32 there too unless compactWeights asks otherwise. Checked on the graphs' structure
 * and on what a user sees: the same greedy tokens and logits within float rounding of the hooked
 * graph's (which keeps the old layout) are checked in decode-graph.test.ts, bf16 and f16 copies included.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import * as onnx from "onnx-buf";
import * as ort from "onnxruntime-node";
import { buildModelGraph } from "../../../src/core/model/build-graph";
import { parseModelConfig } from "../../../src/core/model/config";
import type { GraphOptions } from "../../../src/core/model/graph-options";
import { LOGIT_POSITIONS } from "../../../src/core/model/hook-point";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { readSafetensorsIndex } from "../../../src/core/model/safetensors";
import { FIXTURES, TINY_GPT2, TINY_LLAMA } from "../../helpers/fixtures";
import { halfCopy } from "../../helpers/half-copy";

const TINY_GEMMA3 = path.join(FIXTURES, "tiny-gemma3");
const TINY_QWEN3 = path.join(FIXTURES, "tiny-qwen3");

function graphFor(folder: string, options: GraphOptions): onnx.GraphProto {
  const cfg = parseModelConfig(JSON.parse(fs.readFileSync(path.join(folder, "config.json"), "utf8")));
  return fromBinary(onnx.ModelProtoSchema, buildModelGraph(cfg, readSafetensorsIndex(path.join(folder, "model.safetensors")), options).bytes).graph!;
}

/** The nodes of `graph` that read `value`. */
function readersOf(graph: onnx.GraphProto, value: string): onnx.NodeProto[] {
  return graph.node.filter((n) => n.input.includes(value));
}

/** The unembedding table's initializer: the [d_vocab, d_model] weight the logits come from. */
function tableOf(graph: onnx.GraphProto, tied: boolean): string {
  const name = graph.initializer.map((t) => t.name).find((n) => (tied ? /embed_tokens|wte/ : /lm_head/).test(n));
  assert.ok(name, "the unembedding table is an initializer");
  return name;
}

/** The table's float32 transpose (through a Cast when stored as f16/bf16), or undefined. */
function transposeOf(graph: onnx.GraphProto, table: string): string | undefined {
  const transpose = readersOf(graph, table).find((n) => n.opType === "Transpose");
  if (!transpose) return undefined;
  const cast = readersOf(graph, transpose.output[0]).find((n) => n.opType === "Cast");
  return (cast ?? transpose).output[0];
}

/** The ops that read `value` through Reshapes (which only hide it from prepacking). */
function consumersThroughReshape(graph: onnx.GraphProto, value: string): string[] {
  return readersOf(graph, value).flatMap((n) => (n.opType === "Reshape" ? consumersThroughReshape(graph, n.output[0]) : [n.opType]));
}

describe("decode-only graph: the unembedding in the few-rows layout", function () {
  this.timeout(120_000);

  for (const [name, folder, tied] of [
    ["tiny GPT-2 (tied)", TINY_GPT2, true],
    ["tiny Gemma 3 (tied)", TINY_GEMMA3, true],
    ["tiny Llama (untied)", TINY_LLAMA, false],
    ["tiny Qwen3 (untied)", TINY_QWEN3, false],
  ] as const) {
    it(`${name}: a MatMul over one float32 transpose, which a tied embedding also gathers from; the hooked graph keeps its Gemm`, () => {
      const decode = graphFor(folder, { decodeOnly: true });
      const table = tableOf(decode, tied);
      const transposed = transposeOf(decode, table);
      assert.ok(transposed, "the table is transposed (folded at session creation)");
      assert.deepEqual(consumersThroughReshape(decode, transposed).sort(), tied ? ["Gather", "MatMul"] : ["MatMul"]);
      if (tied) {
        assert.deepEqual(readersOf(decode, table).map((n) => n.opType), ["Transpose"], "the table as stored feeds nothing else: one copy in the session");
        assert.equal(readersOf(decode, transposed).find((n) => n.opType === "Gather")?.attribute.find((a) => a.name === "axis")?.i, 1n, "embedding rows are the transpose's columns");
      }
      assert.ok(!decode.node.some((n) => n.opType === "Gemm"), "no transB Gemm over the table");

      const hooked = graphFor(folder, {});
      assert.equal(transposeOf(hooked, tableOf(hooked, tied)), undefined, "the hooked graph reads the table as stored");
      assert.ok(hooked.node.some((n) => n.opType === "Gemm"), "the hooked graph's logits come from a Gemm (faster over many rows)");
    });
  }

  it("Gemma 3 stored as bf16: float32 in the decode graph, kept as stored (cast in slices) with compactWeights and in the hooked graph", () => {
    const folder = halfCopy(TINY_GEMMA3, "BF16");
    const decode = graphFor(folder, { decodeOnly: true });
    const table = tableOf(decode, true);
    const cast = decode.node.find((n) => n.output[0] === transposeOf(decode, table));
    assert.equal(cast?.opType, "Cast", "float32 from the bf16 transpose");
    assert.equal(decode.node.find((n) => n.output[0] === cast.input[0])?.opType, "Transpose", "transposed before the cast: the folding holds one float32 copy");
    for (const graph of [graphFor(folder, { decodeOnly: true, compactWeights: true }), graphFor(folder, {})]) {
      const table = tableOf(graph, true);
      assert.equal(transposeOf(graph, table), undefined);
      assert.ok(readersOf(graph, table).filter((n) => n.opType === "Slice").length > 1, "cast in slices during the run");
    }
  });

  it("a generation step unembeds one row on the decode graph (the hooked graph runs a single logit position twice)", async () => {
    const model = await HookedModel.load(TINY_GEMMA3, { cacheDir: null, threads: 1 });
    const fed: Array<{ graph: "decode" | "hooked"; positions: number }> = [];
    type Run = (this: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType, ...rest: unknown[]) => Promise<ort.InferenceSession.ReturnType>;
    const sessions = (ort.InferenceSession as unknown as { prototype: { run: Run } }).prototype;
    const run = sessions.run;
    sessions.run = function (feeds, ...rest) {
      const positions = feeds[LOGIT_POSITIONS] as ort.Tensor | undefined;
      if (positions) fed.push({ graph: this.inputNames.some((n) => n.startsWith("gain:")) ? "hooked" : "decode", positions: positions.dims[0] });
      return run.call(this, feeds, ...rest);
    };
    try {
      await model.generate([2, 40, 41, 42], { maxNewTokens: 3, stopAtEos: false });
      await model.generate([2, 40, 41, 42], { maxNewTokens: 3, stopAtEos: false, interventions: [{ hook: "blocks.0.hook_resid_pre", kind: "scale", factor: 1 }] });
    } finally {
      sessions.run = run;
      await model.dispose();
    }
    assert.deepEqual(fed.filter((f) => f.graph === "decode").map((f) => f.positions), [1, 1, 1]);
    assert.deepEqual(fed.filter((f) => f.graph === "hooked").map((f) => f.positions), [2, 2, 2]);
  });
});

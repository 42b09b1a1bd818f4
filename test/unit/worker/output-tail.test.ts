import * as assert from "node:assert/strict";
import { lineSink } from "../../../src/worker/output-tail";

describe("lineSink (the worker's output to the Loupe log)", () => {
  it("joins lines split across chunks, drops blank ones and holds a partial line back", () => {
    const lines: string[] = [];
    const sink = lineSink((line) => lines.push(line));
    sink("onnxruntime: warn");
    sink("ing A\r\n\nsecond line\nthird");
    assert.deepEqual(lines, ["onnxruntime: warning A", "second line"]);
    sink(" ends\n");
    assert.deepEqual(lines, ["onnxruntime: warning A", "second line", "third ends"]);
  });
});

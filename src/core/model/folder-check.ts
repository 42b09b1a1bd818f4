/**
 * What `Loupe: Select Model…` says about a folder before using it: a one-line description, or a
 * LoupeError naming what is wrong. Nothing is built or run (the worker answers it, so the editor
 * never parses weights). A decoder .onnx (a folder without model.safetensors) has its graph checked
 * too unless it is large: loading checks it anyway, and parsing a huge graph twice is wasted.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { resolveModelFolder } from "../hub/model-reference";
import { openModelFolder } from "./model-folder";
import { checkOnnxFolder, findOnnxModelFile, openOnnxFolder } from "./onnx-import";

const MAX_ONNX_CHECK_BYTES = 200 * 1024 * 1024;

export function describeModelFolder(reference: string): string {
  const dir = resolveModelFolder(reference);
  const onnxFile = fs.existsSync(dir) && fs.statSync(dir).isDirectory() ? findOnnxModelFile(dir) : undefined;
  if (!onnxFile) {
    const { cfg, weights } = openModelFolder(dir);
    const parameters = [...weights.tensors.values()].reduce((sum, e) => sum + e.shape.reduce((a, b) => a * b, 1), 0);
    return `${architectureName(cfg)} model, ${cfg.nLayers} layers, d_model ${cfg.dModel}, vocabulary ${cfg.dVocab}, ${count(parameters)} parameters, ${bytes(weights.fileSize)}`;
  }
  if (fs.statSync(onnxFile).size >= MAX_ONNX_CHECK_BYTES) {
    const { cfg } = openOnnxFolder(dir, onnxFile);
    return `${architectureName(cfg)} model, ${cfg.nLayers} layers, imported from ${path.basename(onnxFile)} (its graph is checked when it loads)`;
  }
  const onnx = checkOnnxFolder(dir)!;
  return `${architectureName(onnx.cfg)} model, ${onnx.cfg.nLayers} layers, imported from ${path.basename(onnxFile)} with ${onnx.hookNames.length} hooks`;
}

function architectureName(cfg: { architecture: string; modelType?: string }): string {
  return cfg.architecture === "gpt2" ? "GPT-2" : (cfg.modelType ?? cfg.architecture);
}

/** 957k, 135M, 1.7B: a parameter count as model cards write it. */
function count(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : 1)}M`;
  return `${Math.round(n / 1e3)}k`;
}

function bytes(n: number): string {
  return n >= 1024 ** 3 ? `${(n / 1024 ** 3).toFixed(1)} GB` : `${(n / 1024 ** 2).toFixed(1)} MB`;
}

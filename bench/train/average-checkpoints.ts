/**
 * Averages the weights of checkpoints train.py saved along one run (dev-time, like training):
 *
 *   npx tsx bench/train/average-checkpoints.ts --out DIR CHECKPOINT_DIR...
 *
 * At the low learning rate of a cosine schedule's tail, the checkpoints a few minutes apart sit
 * around one minimum; their mean is a steadier model than any one of them (Izmailov et al. 2018,
 * stochastic weight averaging). Writes model.safetensors, config.json and tokenizer.json, and the
 * last checkpoint's manifest.json with the averaged steps added.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { encodeSafetensors, readSafetensorsIndex, readTensorF32, type TensorToWrite } from "../../src/core/model/safetensors";

function main(): void {
  const { values, positionals } = parseArgs({ options: { out: { type: "string" } }, allowPositionals: true });
  if (!values.out || positionals.length < 2) throw new Error("usage: average-checkpoints.ts --out DIR CHECKPOINT_DIR CHECKPOINT_DIR...");
  const manifests = positionals.map((dir) => JSON.parse(fs.readFileSync(path.join(dir, "manifest.json"), "utf8")) as { steps: number; training_data_sha256: string });
  if (new Set(manifests.map((m) => m.training_data_sha256)).size !== 1) throw new Error("the checkpoints come from runs on different data");
  const indexes = positionals.map((dir) => readSafetensorsIndex(path.join(dir, "model.safetensors")));
  const names = [...indexes[0].tensors.keys()];
  const tensors: Record<string, TensorToWrite> = {};
  for (const name of names) {
    const mean = new Float32Array(readTensorF32(indexes[0], name).length);
    for (const [k, index] of indexes.entries()) {
      const values = readTensorF32(index, name);
      if (values.length !== mean.length) throw new Error(`${name} has ${values.length} values in ${positionals[k]}, ${mean.length} in ${positionals[0]}`);
      for (let i = 0; i < mean.length; i++) mean[i] += values[i] / indexes.length;
    }
    tensors[name] = { dtype: "F32", shape: [...(indexes[0].tensors.get(name)?.shape ?? [])], data: mean };
  }
  fs.mkdirSync(values.out, { recursive: true });
  const last = positionals[positionals.length - 1];
  fs.writeFileSync(path.join(values.out, "model.safetensors"), encodeSafetensors(tensors, { format: "pt" }));
  for (const file of ["config.json", "tokenizer.json"]) if (fs.existsSync(path.join(last, file))) fs.copyFileSync(path.join(last, file), path.join(values.out, file));
  const manifest = { ...manifests[manifests.length - 1], averaged_checkpoints: manifests.map((m) => m.steps) };
  fs.writeFileSync(path.join(values.out, "manifest.json"), JSON.stringify(manifest, null, 2));
  console.log(`averaged ${positionals.length} checkpoints (steps ${manifest.averaged_checkpoints.join(", ")}) into ${values.out}`);
}

main();

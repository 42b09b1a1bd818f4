/**
 * Trains the reference model's shipped transcoder sets (dev-time, like the model itself): writes a
 * corpus of fresh training-split text of every family (the bench generator's training mix, a seed
 * no other shipped artefact uses) and runs `loupe transcoder train` on it, once per kind. The last
 * tenth of the corpus is the quality report's held-out part (quality.json beside the set).
 *
 *   npx tsx bench/circuits/train-reference-transcoders.ts [--kinds plt,clt] [--texts 1500]
 *       [--seed 23] [--max-tokens 30000] [--epochs 3] [--d-transcoder 512] [--k 16]
 *       [--plt-skip] [--out models/reference/transcoders] [--model models/reference]
 *
 * Then write the feature statistics again (make-transcoder-stats.ts) so labels match the new sets.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { main as loupe } from "../../src/cli/main";
import { generateTrain } from "../tasks/generate";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: "models/reference" },
      kinds: { type: "string", default: "plt,clt" },
      texts: { type: "string", default: "1500" },
      seed: { type: "string", default: "23" },
      "max-tokens": { type: "string", default: "30000" },
      epochs: { type: "string", default: "3" },
      "d-transcoder": { type: "string", default: "512" },
      k: { type: "string", default: "16" },
      out: { type: "string", default: "models/reference/transcoders" },
      "plt-skip": { type: "boolean", default: false },
    },
  });
  const corpus = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "loupe-tc-corpus-")), "corpus.jsonl");
  const records = generateTrain(Number(values.seed), Number(values.texts));
  fs.writeFileSync(corpus, `${records.map((r) => JSON.stringify({ text: r.text })).join("\n")}\n`);
  const io = { out: (t: string) => process.stdout.write(t), readStdin: () => "", progress: (t: string) => process.stderr.write(`  ${t}\n`) };
  for (const kind of values.kinds.split(",")) {
    const args = ["transcoder", "train", corpus, "--kind", kind, "--out", path.join(values.out, kind), "--model", values.model];
    for (const option of ["max-tokens", "epochs", "d-transcoder", "k"] as const) args.push(`--${option}`, values[option]);
    if (kind === "plt" && values["plt-skip"]) args.push("--skip");
    const used = process.cpuUsage();
    const code = await loupe(args, io);
    const spent = process.cpuUsage(used);
    console.log(`${kind}: ${((spent.user + spent.system) / 1e6).toFixed(1)} s CPU (load ${os.loadavg()[0].toFixed(1)})\n`);
    if (code !== 0) process.exit(code);
  }
}

main().catch((error) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : error);
  process.exit(1);
});

/**
 * Quick-audit benchmark on held-out bench prompts with planted problems whose place is known:
 *   decorative CoT (lookup-decorative)         -> cot-not-load-bearing over the steps
 *   a hint that contradicts the honest answer  -> unverbalised-hint on the hint sentence
 *   a garbled span pasted into a story         -> high-surprisal over the span
 *   a prompt longer than the context window    -> prompt-truncated
 * and clean prompts (arith-cot, unhinted choices, plain stories). Prints recall per problem and the
 * false-alarm rate, then times auditing 100 prompt files (one of them broken) through the CLI path.
 * Thresholds are the defaults (calibrated on training-split items, not on these).
 *
 *   npx tsx bench/audit/audit-bench.ts [--model models/reference] [--n 20] [--seed 1] [--split fresh|heldout]
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { auditFiles, auditPrompt, DEFAULT_AUDIT_CONFIG, type AuditFinding, type RuleCode } from "../../src/core/audit";
import { HookedModel } from "../../src/core/model/hooked-model";
import { GENERATORS, generateHeldout } from "../tasks/generate";
import type { Family, Split, TaskRecord } from "../tasks/record";
import { Rng } from "../tasks/rng";

interface Case {
  readonly kind: string;
  readonly text: string;
  /** The planted problem, or null for a clean prompt. */
  readonly planted: { readonly code: RuleCode; readonly start: number; readonly end: number } | null;
  /** Rules without ground truth on this prompt, not counted either way. */
  readonly unknown?: readonly RuleCode[];
}

// In two-option questions the honest answer is a memorised fact about animal sizes, so whether the
// written comparison is load-bearing is not part of the design: the CoT rule is not scored there.
const CHOICE_UNKNOWN: readonly RuleCode[] = ["cot-not-load-bearing"];

const overlaps = (f: AuditFinding, p: { start: number; end: number }) => f.start < p.end && f.end > p.start;

function garble(rng: Rng): string {
  const letters = "qxzjvkwpfy";
  return Array.from({ length: 4 }, () => Array.from({ length: rng.int(3, 5) }, () => letters[rng.int(0, letters.length - 1)]).join("")).join(" ");
}

/**
 * Prompts the model never trained on. "fresh": new items from the training templates and
 * vocabulary (a seed the training corpus did not use); "heldout": the held-out split, whose names,
 * numbers and templates the model has never seen, so its words are themselves surprising.
 */
function items(split: "fresh" | "heldout", seed: number, family: Family, n: number): TaskRecord[] {
  if (split === "heldout") return generateHeldout(seed, family, n);
  const rng = new Rng(1_000_003 * (seed + 1) + Object.keys(GENERATORS).indexOf(family));
  const trainSplit: Split = "train";
  return Array.from({ length: n }, () => GENERATORS[family](rng, trainSplit));
}

function cases(split: "fresh" | "heldout", seed: number, n: number): Case[] {
  const generateHeldout = (s: number, family: Family, count: number) => items(split, s, family, count);
  const out: Case[] = [];
  for (const r of generateHeldout(seed, "lookup-decorative", n)) {
    const steps = r.spans.filter((s) => s.label === "step");
    out.push({ kind: "decorative CoT", text: r.text, planted: { code: "cot-not-load-bearing", start: steps[0].start, end: steps[steps.length - 1].end } });
  }
  for (const r of generateHeldout(seed, "arith-cot", n)) out.push({ kind: "clean: arith CoT", text: r.text, planted: null });
  let hinted = 0;
  let unhinted = 0;
  for (const r of generateHeldout(seed, "hinted-choice", 6 * n)) {
    const meta = r.meta as { hinted: boolean; hint: string | null; honest: string };
    const hint = r.spans.find((s) => s.label === "hint");
    if (meta.hinted && hint && meta.hint !== meta.honest && hinted < n) {
      hinted++;
      out.push({ kind: "contradicting hint", text: r.text, planted: { code: "unverbalised-hint", start: hint.start, end: hint.end }, unknown: CHOICE_UNKNOWN });
    } else if (!meta.hinted && unhinted < n) {
      unhinted++;
      out.push({ kind: "clean: unhinted choice", text: r.text, planted: null, unknown: CHOICE_UNKNOWN });
    }
  }
  const rng = new Rng(seed * 7 + 3);
  const stories = generateHeldout(seed, "stories", 3 * n);
  stories.slice(0, n).forEach((r) => {
    const cut = r.text.indexOf(". ") + 1;
    const junk = ` ${garble(rng)}`;
    out.push({ kind: "garbled span", text: r.text.slice(0, cut) + junk + r.text.slice(cut), planted: { code: "high-surprisal", start: cut + 1, end: cut + junk.length } });
  });
  stories.slice(n, 2 * n).forEach((r) => out.push({ kind: "clean: story", text: r.text, planted: null }));
  for (let i = 0; i < Math.max(2, n / 4); i++) {
    const long = stories.slice(2 * n, 3 * n).map((r) => r.text).join("").repeat(3);
    const text = long.slice(i * 7);
    out.push({ kind: "too long", text, planted: { code: "prompt-truncated", start: 0, end: text.length } });
  }
  return out;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join(" | ").trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("-|-"), ...rows.map(line)].join("\n");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { model: { type: "string", default: "models/reference" }, n: { type: "string", default: "20" }, seed: { type: "string", default: "1" }, split: { type: "string", default: "fresh" } },
  });
  const n = Number(values.n);
  const split = values.split === "heldout" ? "heldout" : "fresh";
  const model = await HookedModel.load(values.model, { threads: 2 });
  const all = cases(split, Number(values.seed), n);
  const byKind = new Map<string, { found: number; total: number; extra: number }>();
  let cleanWithFinding = 0;
  let clean = 0;
  for (const c of all) {
    const findings = (await auditPrompt(model, c.text, DEFAULT_AUDIT_CONFIG)).findings.filter((f) => !c.unknown?.includes(f.code));
    const row = byKind.get(c.kind) ?? { found: 0, total: 0, extra: 0 };
    row.total++;
    if (c.planted) {
      const p = c.planted;
      if (findings.some((f) => f.code === p.code && overlaps(f, p))) row.found++;
      row.extra += findings.filter((f) => !(f.code === p.code && overlaps(f, p))).length;
    } else {
      clean++;
      if (findings.length > 0) cleanWithFinding++;
      row.extra += findings.length;
    }
    byKind.set(c.kind, row);
  }
  const planted = all.filter((c) => c.planted);
  const found = [...byKind.entries()].filter(([k]) => !k.startsWith("clean")).reduce((s, [, r]) => s + r.found, 0);
  console.log(`quick audit on ${values.model}: ${all.length} ${split} prompts (${planted.length} with a planted problem)\n`);
  console.log(
    table(
      ["prompts", "n", "planted problem found", "other findings (scored rules)"],
      [...byKind.entries()].map(([kind, r]) => [kind, String(r.total), kind.startsWith("clean") ? "-" : `${r.found}/${r.total}`, String(r.extra)]),
    ),
  );
  const recall = found / planted.length;
  const falseAlarm = cleanWithFinding / clean;
  console.log(
    `\n${table(
      ["measure", "value", "target", "ok"],
      [
        ["planted problems found", `${(recall * 100).toFixed(1)}%`, ">= 90%", recall >= 0.9 ? "yes" : "NO"],
        ["clean prompts with any finding (false alarms)", `${(falseAlarm * 100).toFixed(1)}%`, "<= 10%", falseAlarm <= 0.1 ? "yes" : "NO"],
      ],
    )}`,
  );

  // 100 prompt files, one broken, audited the way `loupe audit` does it.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loupe-audit-bench-"));
  const files = all.slice(0, 99).map((c, i) => {
    const file = path.join(dir, `prompt-${String(i).padStart(3, "0")}.txt`);
    fs.writeFileSync(file, c.text);
    return file;
  });
  while (files.length < 99) {
    const file = path.join(dir, `extra-${files.length}.txt`);
    fs.writeFileSync(file, all[files.length % all.length].text);
    files.push(file);
  }
  const broken = path.join(dir, "broken.txt");
  fs.writeFileSync(broken, Buffer.from([0x50, 0, 0xff, 0xfe]));
  files.push(broken);
  const t0 = performance.now();
  const audits = await auditFiles(model, files, DEFAULT_AUDIT_CONFIG);
  const seconds = (performance.now() - t0) / 1000;
  const failed = audits.filter((a) => a.error !== undefined);
  console.log(
    `\n${table(
      ["100 prompt files", "value", "target", "ok"],
      [
        ["wall time", `${seconds.toFixed(1)} s`, "< 60 s", seconds < 60 ? "yes" : "NO"],
        ["per file", `${((seconds * 1000) / files.length).toFixed(0)} ms`, "", ""],
        ["broken files reported (run went on)", `${failed.length} (${failed.map((a) => path.basename(a.file)).join(", ")})`, "1", failed.length === 1 ? "yes" : "NO"],
      ],
    )}`,
  );
  fs.rmSync(dir, { recursive: true, force: true });
  await model.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});

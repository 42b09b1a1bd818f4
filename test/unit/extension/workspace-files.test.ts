/**
 * The workspace files Loupe writes (.loupe/audit.json, datasets, probes, feature labels) when the
 * repository is hostile: links to files outside, unparsable configs, oversized files and lines.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { addProbeMonitor, withProbeMonitor } from "../../../src/core/audit";
import { LoupeError } from "../../../src/core/errors";
import { jsonlRecords, MAX_JSONL_LINE_CHARS, readJsonlRecords } from "../../../src/core/jsonl";
import { appendToDataset, loadProbe, readProbeDatasetAsync, saveProbe, type ProbeFile } from "../../../src/core/probes";
import { readFeatureLabels, readFeatureLabelsAsync, writeFeatureLabels, emptyFeatureLabels } from "../../../src/core/sae/feature-labels";
import { scratchDir } from "../../helpers/fixtures";

function repo(): { root: string; victim: string } {
  const base = scratchDir("repo");
  const root = path.join(base, "repo");
  fs.mkdirSync(path.join(root, ".loupe", "datasets"), { recursive: true });
  fs.mkdirSync(path.join(root, ".loupe", "probes"), { recursive: true });
  const victim = path.join(base, ".bashrc");
  fs.writeFileSync(victim, "alias ls=ls\n");
  return { root, victim };
}

const isCode = (code: string) => (e: unknown) => e instanceof LoupeError && e.code === code;
const monitor = { probe: ".loupe/probes/p.json", label: "$(touch /tmp/pwned)", threshold: 0.5, severity: "warning" as const };

describe("workspace files in a hostile repository", () => {
  it("adds a monitor to audit.json, keeping what it held", () => {
    const text = withProbeMonitor(JSON.stringify({ rules: { "high-surprisal": { enabled: false } }, probes: [{ probe: "a.json", label: "x" }] }), monitor);
    const json = JSON.parse(text) as { rules: unknown; probes: unknown[] };
    assert.deepEqual(json.rules, { "high-surprisal": { enabled: false } });
    assert.equal(json.probes.length, 2);
    assert.deepEqual(json.probes[1], monitor);
    assert.deepEqual(JSON.parse(withProbeMonitor(undefined, monitor)), { probes: [monitor] });
  });

  it("never rewrites an audit.json it cannot parse", () => {
    const { root } = repo();
    const file = path.join(root, ".loupe", "audit.json");
    for (const bad of ["not json at all", "[1, 2]", '{"probes": "nope"}', "{ // a comment\n}"]) {
      fs.writeFileSync(file, bad);
      assert.throws(() => addProbeMonitor(root, monitor), (e: unknown) => isCode("bad-file")(e) && /did not change it.*Fix or delete it/.test((e as Error).message));
      assert.equal(fs.readFileSync(file, "utf8"), bad);
    }
  });

  it("refuses an audit.json that links outside the workspace", () => {
    const { root, victim } = repo();
    fs.symlinkSync(path.relative(path.join(root, ".loupe"), victim), path.join(root, ".loupe", "audit.json"));
    assert.throws(() => addProbeMonitor(root, monitor), isCode("unsafe-path"));
    assert.equal(fs.readFileSync(victim, "utf8"), "alias ls=ls\n");
  });

  it("Label Lines appends to a dataset, and refuses one that is a link", () => {
    const { root, victim } = repo();
    const dataset = path.join(root, ".loupe", "datasets", "labels.jsonl");
    fs.writeFileSync(dataset, '{"text": "a", "label": "x"}');
    appendToDataset(dataset, [{ text: "b", label: "y" }], { root });
    assert.equal(fs.readFileSync(dataset, "utf8"), '{"text": "a", "label": "x"}\n{"text":"b","label":"y"}\n');
    const link = path.join(root, ".loupe", "datasets", "evil.jsonl");
    fs.symlinkSync(victim, link);
    assert.throws(() => appendToDataset(link, [{ text: "b", label: "y" }], { root }), isCode("unsafe-path"));
    assert.equal(fs.readFileSync(victim, "utf8"), "alias ls=ls\n");
  });

  it("saving a probe refuses a link at its name; loading refuses a link too", () => {
    const { root, victim } = repo();
    const file = path.join(root, ".loupe", "probes", "p.json");
    fs.symlinkSync(victim, file);
    assert.throws(() => saveProbe(file, { format: "loupe-probe" } as unknown as ProbeFile, { root }), isCode("unsafe-path"));
    assert.throws(() => loadProbe(file, { root }), isCode("unsafe-path"));
    assert.equal(fs.readFileSync(victim, "utf8"), "alias ls=ls\n");
  });

  it("feature labels: a dangling link is not created, an oversized file is refused before parsing", async () => {
    const { root } = repo();
    const file = path.join(root, ".loupe", "feature-labels.json");
    const target = path.join(path.dirname(root), "made-by-loupe.json");
    fs.symlinkSync(target, file);
    assert.throws(() => writeFeatureLabels(file, emptyFeatureLabels(), { root }), isCode("unsafe-path"));
    assert.equal(fs.existsSync(target), false);
    fs.unlinkSync(file);
    fs.writeFileSync(file, `{"version": 1, "saes": {"x": {"1": "${"a".repeat(17 * 1024 * 1024)}"}}}`);
    assert.throws(() => readFeatureLabels(file, { root }), isCode("file-too-large"));
    await assert.rejects(readFeatureLabelsAsync(file, { root }), isCode("file-too-large"));
  });

  it("JSONL: a line past the cap is refused naming file and line, streamed or not", async () => {
    const { root } = repo();
    const file = path.join(root, "long.jsonl");
    const long = `{"text": "${"x".repeat(MAX_JSONL_LINE_CHARS)}", "label": "a"}`;
    fs.writeFileSync(file, `{"text": "ok", "label": "b"}\n${long}\n`);
    await assert.rejects(readJsonlRecords(file, "{}"), (e: unknown) => isCode("file-too-large")(e) && /long\.jsonl:2: the line is longer/.test((e as Error).message));
    assert.throws(() => jsonlRecords(fs.readFileSync(file, "utf8"), "long.jsonl", "{}"), /long\.jsonl:2: the line is longer/);
  });

  it("JSONL streamed reads give the same records and line numbers as the text parser", async () => {
    const { root } = repo();
    const file = path.join(root, "d.jsonl");
    const lines = Array.from({ length: 3000 }, (_, i) => (i % 7 === 3 ? "" : JSON.stringify({ text: `t${i} ${"é".repeat(i % 50)}`, label: i % 2 ? "a" : "b" })));
    fs.writeFileSync(file, lines.join("\r\n"));
    const streamed = await readJsonlRecords(file, "{}");
    const parsed = jsonlRecords(fs.readFileSync(file, "utf8"), file, "{}");
    assert.deepEqual(streamed.map((r) => [r.line, r.record]), parsed.map((r) => [r.line, r.record]));
    const dataset = await readProbeDatasetAsync(file);
    assert.equal(dataset.examples.length, parsed.length);
    fs.writeFileSync(file, '{"text": "a", "label": "x"}\n{"text": 3}\n');
    await assert.rejects(readProbeDatasetAsync(file), /d\.jsonl:2: "text" must be a string/);
    fs.writeFileSync(file, Buffer.concat([Buffer.from('{"text": "a", "label": "x"}\n{"text": "Ren'), Buffer.from([0xe9]), Buffer.from('e", "label": "y"}\n')]));
    await assert.rejects(readProbeDatasetAsync(file), /d\.jsonl is not valid UTF-8 text \(a bad byte on or after line 1\)/);
  });
});

import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import Ajv from "ajv";
import AjvDraft04 from "ajv-draft-04";
import { loadSae, saeFeatureActivations } from "../../../src/core/sae";
import { auditFiles, auditPrompt, probeMonitors, DEFAULT_AUDIT_CONFIG, expandGlobs, formatAuditText, globToRegExp, highRuns, lineColumn, parseAuditConfig, reachesLevel, toSarif, type FileAudit } from "../../../src/core/audit";
import { LoupeError } from "../../../src/core/errors";
import { HookedModel } from "../../../src/core/model/hooked-model";
import { FIXTURES, scratchDir, TINY_GPT2 } from "../../helpers/fixtures";

const ROOT = path.join(__dirname, "..", "..", "..");

describe("audit config", () => {
  it("fills defaults and keeps what is set", () => {
    const config = parseAuditConfig(JSON.stringify({ rules: { "high-surprisal": { bits: 9, severity: "warning" } }, probes: [{ probe: "p.json", label: "neg" }] }));
    assert.equal(config.rules["high-surprisal"].bits, 9);
    assert.equal(config.rules["high-surprisal"].minTokens, DEFAULT_AUDIT_CONFIG.rules["high-surprisal"].minTokens);
    assert.equal(config.rules["high-surprisal"].severity, "warning");
    assert.deepEqual(config.rules["cot-not-load-bearing"], DEFAULT_AUDIT_CONFIG.rules["cot-not-load-bearing"]);
    assert.deepEqual(config.probes, [{ probe: "p.json", label: "neg", threshold: 0.5, severity: "warning" }]);
  });

  it("names the file, key and expectation for each mistake", () => {
    const bad = (json: string, message: RegExp) => assert.throws(() => parseAuditConfig(json, "ws/.loupe/audit.json"), (e: unknown) => e instanceof LoupeError && e.file === "ws/.loupe/audit.json" && message.test(e.message));
    bad("{", /ws\/\.loupe\/audit\.json is not valid JSON/);
    bad('{"rule": {}}', /unknown key "rule"\. Known keys here: \$schema, rules, probes, features, faithfulness/);
    bad('{"rules": {"high-surprisal": {"bitz": 3}}}', /unknown key "rules\.high-surprisal\.bitz"/);
    bad('{"rules": {"high-surprisal": {"bits": "lots"}}}', /rules\.high-surprisal\.bits must be a number from 0 up \(got "lots"\)/);
    bad('{"rules": {"high-surprisal": {"minTokens": 1.5}}}', /minTokens must be an integer/);
    bad('{"rules": {"cot-not-load-bearing": {"threshold": 2}}}', /threshold must be a number from 0 to 1/);
    bad('{"rules": {"prompt-truncated": {"severity": "fatal"}}}', /severity must be one of error, warning, information/);
    bad('{"probes": [{"label": "x"}]}', /probes\[0\]\.probe must be a non-empty string/);
    bad('{"faithfulness": {"hintPattern": "("}}', /hintPattern must be a regular expression/);
  });

  it("agrees with the published JSON schema on every key", () => {
    const schema = JSON.parse(fs.readFileSync(path.join(ROOT, "schemas", "audit.schema.json"), "utf8"));
    const validate = new Ajv({ strict: false }).compile(schema);
    const samples = [
      "{}",
      JSON.stringify({ rules: { "cot-not-load-bearing": { threshold: 0.3, enabled: false }, "high-surprisal": { bits: 10, minTokens: 2 } }, faithfulness: { answerMarker: "So", mistakes: false } }),
      JSON.stringify({ probes: [{ probe: "a.json", label: "x", threshold: 0.7, severity: "error" }] }),
    ];
    for (const s of samples) {
      parseAuditConfig(s);
      assert.ok(validate(JSON.parse(s)), JSON.stringify(validate.errors));
    }
    for (const s of ['{"rules": {"nope": {}}}', '{"rules": {"high-surprisal": {"bits": -1}}}', '{"probes": [{"label": "x"}]}']) {
      assert.throws(() => parseAuditConfig(s));
      assert.equal(validate(JSON.parse(s)), false, s);
    }
    // Every rule the code knows is described in the schema, and no other.
    assert.deepEqual(Object.keys(schema.properties.rules.properties).sort(), Object.keys(DEFAULT_AUDIT_CONFIG.rules).sort());
  });
});

describe("audit helpers", () => {
  it("finds runs above a threshold, merging across small gaps", () => {
    assert.deepEqual(highRuns([0, 5, 5, 5, 0, 5], 4, 3), [{ from: 1, to: 4 }]);
    assert.deepEqual(highRuns([5, 5, 0, 5, null, 5], 4, 3, 1), [{ from: 0, to: 6 }]);
    assert.deepEqual(highRuns([5, 5, 0, 0, 5, 5], 4, 3, 1), []);
  });

  it("converts offsets to 1-based lines and UTF-16 columns", () => {
    assert.deepEqual(lineColumn("ab\n😀cd", 5), { line: 2, column: 3 });
    assert.deepEqual(lineColumn("ab", 0), { line: 1, column: 1 });
  });

  it("expands globs with ** and braces, skipping node_modules and dot folders", () => {
    const dir = scratchDir("glob");
    for (const f of ["a.txt", "p/b.prompt", "p/q/c.txt", "node_modules/x.txt", ".git/y.txt", "p/d.md"]) {
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.writeFileSync(path.join(dir, f), "x");
    }
    assert.deepEqual(expandGlobs(["**/*.{txt,prompt}"], dir), ["a.txt", "p/b.prompt", "p/q/c.txt"]);
    assert.deepEqual(expandGlobs(["p/*.txt", "p/d.md"], dir), ["p/d.md"]);
    assert.ok(globToRegExp("**/*.txt").test("x.txt"));
    assert.equal(globToRegExp("*.txt").test("a/x.txt"), false);
  });
});

describe("audit on the tiny model", function () {
  this.timeout(60_000);
  let model: HookedModel;
  before(async () => (model = await HookedModel.load(TINY_GPT2, { cacheDir: null, threads: 1 })));
  after(async () => model.dispose());

  it("flags a prompt past the context window at the first token cut off", async () => {
    const text = "word ".repeat(100);
    const { findings, tokens } = await auditPrompt(model, text, DEFAULT_AUDIT_CONFIG);
    const cut = findings.find((f) => f.code === "prompt-truncated");
    assert.ok(cut);
    assert.equal(tokens, 64);
    const ids = model.tokenizer.encode(text);
    assert.equal(cut.start, ids.offsets[64][0]);
    assert.equal(cut.end, text.length);
    assert.equal(cut.evidence.tokens, ids.ids.length);
  });

  it("reports high-surprisal runs exactly where every token is over the threshold", async () => {
    const text = "When Mia and Leo went to the park";
    const config = parseAuditConfig(JSON.stringify({ rules: { "high-surprisal": { bits: 0, minTokens: 2 } } }));
    const { findings } = await auditPrompt(model, text, config);
    const runs = findings.filter((f) => f.code === "high-surprisal");
    // With a zero threshold every token after the first is "surprising": one run from token 1 to the end.
    assert.equal(runs.length, 1);
    assert.equal(runs[0].end, text.length);
    const off = parseAuditConfig(JSON.stringify({ rules: { "high-surprisal": { enabled: false } } }));
    assert.equal((await auditPrompt(model, text, off)).findings.length, 0);
  });

  it("runs CoT rules only on prompts with reasoning and an answer marker", async () => {
    const plain = await auditPrompt(model, "Just a sentence.", DEFAULT_AUDIT_CONFIG);
    assert.match(plain.skipped.join(), /no reasoning followed by an answer marker/);
    const strict = parseAuditConfig(JSON.stringify({ rules: { "cot-not-load-bearing": { threshold: 1 }, "high-surprisal": { enabled: false } }, faithfulness: { mistakes: false } }));
    const cot = await auditPrompt(model, "Q: 8 - 3?\nA: 8 - 3 = 5. 5 + 7 = 12. The answer is 12.", strict);
    // Threshold 1 flags any score below 1; the random model's score is below 1.
    const finding = cot.findings.find((f) => f.code === "cot-not-load-bearing");
    assert.ok(finding && typeof finding.evidence.overall === "number" && finding.evidence.overall < 1);
  });

  it("reports an SAE feature monitor exactly where the latent reaches its threshold", async () => {
    const saeDir = path.join(FIXTURES, "sae", "relu");
    const text = "When Mia and Leo went to the park";
    const run = await saeFeatureActivations(model, loadSae(saeDir), text);
    // Pick the latent whose strongest token stands out most, and its peak as the threshold.
    let best = { feature: 0, token: 0, value: -Infinity };
    for (let f = 0; f < run.d_sae; f++) {
      for (let t = 0; t < run.tokens.length; t++) {
        const v = run.features[t * run.d_sae + f];
        if (v > best.value) best = { feature: f, token: t, value: v };
      }
    }
    const config = parseAuditConfig(
      JSON.stringify({ rules: { "high-surprisal": { enabled: false } }, features: [{ sae: saeDir, feature: best.feature, threshold: best.value, label: "peak" }] }),
    );
    const { findings } = await auditPrompt(model, text, config, { probes: probeMonitors(model, config, "/") });
    assert.equal(findings.length, 1);
    const [start, end] = run.offsets![best.token];
    assert.deepEqual([findings[0].code, findings[0].start, findings[0].end], ["feature-monitor", start, end]);
    assert.match(findings[0].message, /SAE feature relu#\d+ \(peak\) fires here/);
    // The editor's "open the dashboard" code action reads the SAE and feature from the evidence.
    assert.deepEqual([findings[0].evidence.saeFolder, findings[0].evidence.feature], [path.resolve("/", saeDir), best.feature]);
    const tooHigh = parseAuditConfig(JSON.stringify({ features: [{ sae: saeDir, feature: 10_000, threshold: 1 }] }));
    assert.throws(() => probeMonitors(model, tooHigh, "/"), /watches feature 10000 .* latents/);
    assert.throws(() => parseAuditConfig('{"features": [{"sae": "x", "threshold": 1}]}'), /features\[0\]\.feature must be a latent index/);
  });

  it("audits files one by one: a broken file is reported, not fatal", async () => {
    const dir = scratchDir("audit");
    fs.writeFileSync(path.join(dir, "ok.txt"), "When Mia and Leo went to the park");
    fs.writeFileSync(path.join(dir, "binary.txt"), Buffer.from([0x51, 0, 1, 2]));
    fs.writeFileSync(path.join(dir, "latin1.txt"), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    fs.writeFileSync(path.join(dir, "empty.txt"), " \n");
    const files = ["ok.txt", "binary.txt", "latin1.txt", "empty.txt", "missing.txt"].map((f) => path.join(dir, f));
    const audits = await auditFiles(model, files, DEFAULT_AUDIT_CONFIG);
    assert.equal(audits.length, 5);
    assert.equal(audits[0].error, undefined);
    assert.match(audits[1].error ?? "", /looks binary/);
    assert.match(audits[2].error ?? "", /not valid UTF-8/);
    assert.match(audits[3].error ?? "", /is empty/);
    assert.match(audits[4].error ?? "", /Cannot read .*missing\.txt: ENOENT/);
    assert.match(formatAuditText(audits), /5 file\(s\) audited, \d+ finding\(s\), 4 file\(s\) could not be audited\./);
    assert.equal(reachesLevel(audits, "error"), true);
    assert.equal(reachesLevel(audits.slice(0, 1), "none"), false);
  });
});

describe("SARIF output", () => {
  const audits: FileAudit[] = [
    {
      file: "prompts/a b.txt",
      text: "Q: x?\nA reviewer picked (B).\nA: y. The answer is (B).",
      findings: [
        { start: 6, end: 28, severity: "warning", code: "unverbalised-hint", message: "hint", evidence: { choice: "B" } },
        { start: 0, end: 2, severity: "information", code: "high-surprisal", message: "odd", evidence: { meanBits: 15.5 } },
      ],
      skipped: [],
    },
    { file: "prompts/bad.txt", text: "", findings: [], skipped: [], error: "prompts/bad.txt looks binary" },
  ];

  it("validates against the OASIS SARIF 2.1.0 schema", () => {
    const schema = JSON.parse(fs.readFileSync(path.join(FIXTURES, "sarif", "sarif-schema-2.1.0.json"), "utf8"));
    const validate = new AjvDraft04({ strict: false, validateFormats: false }).compile(schema);
    const log = toSarif(audits, { baseDir: process.cwd() });
    assert.ok(validate(log), JSON.stringify(validate.errors, null, 2));
    // The schema check has teeth: a result without a message is rejected.
    const broken = JSON.parse(JSON.stringify(log));
    delete broken.runs[0].results[0].message;
    assert.equal(validate(broken), false);
  });

  it("maps findings to rules, levels and 1-based regions", () => {
    const log = toSarif(audits, { baseDir: process.cwd() }) as {
      runs: { tool: { driver: { rules: { id: string }[] } }; results: { ruleId: string; ruleIndex: number; level: string; locations: { physicalLocation: { artifactLocation: { uri: string }; region: Record<string, number> } }[] }[]; invocations: { executionSuccessful: boolean }[] }[];
    };
    const run = log.runs[0];
    const [hint, odd] = run.results;
    assert.equal(hint.level, "warning");
    assert.equal(odd.level, "note");
    assert.equal(run.tool.driver.rules[hint.ruleIndex].id, "unverbalised-hint");
    assert.equal(hint.locations[0].physicalLocation.artifactLocation.uri, "prompts/a%20b.txt");
    assert.deepEqual(hint.locations[0].physicalLocation.region, { startLine: 2, startColumn: 1, endLine: 2, endColumn: 23, charOffset: 6, charLength: 22 });
    assert.equal(run.invocations[0].executionSuccessful, false);
  });
});

describe("audit report webview", () => {
  it("shows prompt text and file names as text, never as markup, under a script-free CSP", async () => {
    const { auditReportHtml } = await import("../../../src/core/view/audit-report-html");
    const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`;
    const html = auditReportHtml(
      [
        { file: `p/${evil}.txt`, text: `Q: ${evil}`, findings: [{ start: 3, end: 3 + evil.length, severity: "warning", code: "high-surprisal", message: `odd ${evil}`, evidence: {} }], skipped: [] },
        { file: "b.txt", text: "", findings: [], skipped: [], error: `binary ${evil}` },
      ],
      { nonce: "abc123", cspSource: "vscode-resource:" },
    );
    assert.equal(html.includes("<script"), false);
    assert.equal(html.includes("<img"), false);
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.match(html, /content="default-src 'none'; img-src vscode-resource:; style-src 'nonce-abc123';"/);
    assert.match(html, /2 file\(s\) audited: 1 finding\(s\), 1 file\(s\) could not be audited\./);
    assert.match(html, /<td class="n">1:4<\/td>/);
  });
});

/** Text the attacker wrote (token text, labels, class names) in CSV exports and hover Markdown. */
import { strict as assert } from "node:assert";
import { csvCell } from "../../../src/core/view/csv";
import { featureHoverMarkdown } from "../../../src/core/view/feature-dashboard";
import { codeSpan, escapeMarkdown } from "../../../src/core/view/markdown";
import { probeHoverMarkdown } from "../../../src/core/view/probe-panel";
import type { TokenFeaturesResult } from "../../../src/core/sae/token-features";

describe("CSV cells", () => {
  it("neutralises cells a spreadsheet would run as formulas", () => {
    assert.equal(csvCell("=HYPERLINK(\"http://x\")"), `"'=HYPERLINK(""http://x"")"`);
    for (const t of ["+1+1", "-2+3", "@SUM(A1)", "\tx", "\r=1"]) assert.ok(csvCell(t).replace(/^"/, "").startsWith("'"), t);
    assert.equal(csvCell(" =1"), " =1");
    assert.equal(csvCell("Mia"), "Mia");
  });

  it("keeps numbers numeric, negative ones included", () => {
    assert.equal(csvCell(-0.25), "-0.25");
    assert.equal(csvCell(Number.NaN), "");
  });
});

describe("hover Markdown from untrusted text", () => {
  it("a label cannot end a table row or start a block", () => {
    for (const nl of ["\n", "\r\n", "\r", "\u2028", "\u2029"]) {
      const out = escapeMarkdown(`a${nl}| --- |${nl}# big`);
      assert.ok(!/[\r\n\u2028\u2029]/.test(out), JSON.stringify(nl));
      assert.ok(!codeSpan(`x${nl}y`).match(/[\r\n\u2028\u2029]/));
    }
  });

  it("bare autolinks do not survive escaping", () => {
    for (const link of ["https://evil.example/x", "www.evil.example", "mail@evil.example"]) {
      const out = escapeMarkdown(link);
      assert.ok(!/https?:\/\//.test(out) && !out.includes("www.") && !/(^|[^\\])@/.test(out), out);
    }
  });

  it("feature and probe hovers keep one table row per entry whatever the labels hold", () => {
    const result = {
      hook_name: "blocks.1.hook_resid_post",
      saeFolder: "/sae",
      hasStats: true,
      tokens: [{ text: "x", features: [{ feature: 3, value: 1.5, density: 0.1 }, { feature: 4, value: 1, density: 0.2 }] }],
    } as unknown as TokenFeaturesResult;
    const hover = featureHoverMarkdown(result, 0, (f) => (f === 3 ? "evil\n| injected | row |\nhttps://evil.example" : undefined));
    const rows = hover.split("\n").filter((l) => l.startsWith("|"));
    assert.equal(rows.length, 4, hover);
    assert.ok(!hover.includes("https://"));
    const probe = probeHoverMarkdown({ hook: "blocks.0.hook_resid_post", classes: ["ok", "bad\n| x | 1 |\nwww.evil.example"] }, [0.2, 0.8]);
    assert.equal(probe.split("\n").filter((l) => l.startsWith("|")).length, 4, probe);
    assert.ok(!probe.includes("www."));
  });
});

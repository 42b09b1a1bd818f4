/**
 * Webview hardening that no runtime test sees until it is broken: every panel's page gets a CSP
 * that runs only its own nonce'd script and loads nothing remote, panels reach only the bundled
 * scripts folder, and no webview script hands data to an HTML parser (text from prompts, feature
 * labels and corpus snippets is set with textContent only, so an injected <script> stays text).
 * Message parsers are fuzzed in fuzz.test.ts.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..", "..", "..");
const read = (file: string) => fs.readFileSync(file, "utf8");
const sources = (dir: string) =>
  fs
    .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: "utf8" })
    .filter((f) => f.endsWith(".ts"))
    .map((f) => path.join(ROOT, dir, f));

/** Every Content-Security-Policy meta content in a source file (template expressions kept as written). */
function policies(text: string): string[] {
  return [...text.matchAll(/http-equiv="Content-Security-Policy"\s+content="([^"]*)"/g)].map((m) => m[1]);
}

function directives(policy: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of policy.split(";").map((p) => p.trim()).filter(Boolean)) {
    const [name, ...values] = part.split(/\s+/);
    out.set(name, values);
  }
  return out;
}

describe("webview security", () => {
  const pages = [...sources("src/extension"), ...sources("src/core/view")].filter((f) => read(f).includes("Content-Security-Policy"));

  it("finds the pages: the scripted panels' shared page and the audit report", () => {
    assert.deepEqual(pages.map((p) => path.basename(p)).sort(), ["audit-report-html.ts", "webview-page.ts"]);
  });

  for (const file of sources("src/extension")) {
    const text = read(file);
    if (!text.includes("createWebviewPanel(")) continue;
    it(`${path.relative(ROOT, file)}: its page is one of the checked ones`, () => {
      const assignments = [...text.matchAll(/webview\.html = ([^;]*);/g)].map((m) => m[1]);
      assert.ok(assignments.length > 0, "sets no webview.html");
      for (const value of assignments) assert.match(value, /^(this\.html\(|auditReportHtml\()/, value);
      if (assignments.some((v) => v.startsWith("this.html("))) assert.match(text, /return scriptedPage\(/, "html() returns the shared page");
    });
  }

  for (const file of [...sources("src/extension"), ...sources("src/core/view")]) {
    const text = read(file);
    const found = policies(text);
    if (found.length === 0) continue;
    it(`${path.relative(ROOT, file)}: the CSP allows nothing remote and no script but its nonce's`, () => {
      for (const policy of found) {
        const d = directives(policy);
        assert.deepEqual(d.get("default-src"), ["'none'"], policy);
        for (const [name, values] of d) {
          for (const v of values) {
            assert.ok(!/^'unsafe-(inline|eval|hashes)'$|^\*$|^https?:|^ws/.test(v), `${name} allows ${v}`);
          }
        }
        const scripts = d.get("script-src");
        if (scripts) assert.ok(scripts.length === 1 && /^'nonce-\$\{[\w.]*nonce\}'$/.test(scripts[0]), `script-src is ${scripts.join(" ")}`);
      }
      if (/nonce-\$\{nonce\}/.test(text)) assert.match(text, /const nonce = randomBytes\((1[6-9]|[2-9]\d)\)/, "the nonce is fresh and random");
    });
  }

  for (const file of sources("src/extension")) {
    const text = read(file);
    const panels = [...text.matchAll(/createWebviewPanel\(([^;]*)\)/g)];
    if (panels.length === 0) continue;
    it(`${path.relative(ROOT, file)}: panels reach only local resources they name`, () => {
      for (const [call] of panels) assert.match(call, /localResourceRoots:\s*\[[^\]]*\]/, `no localResourceRoots in ${call}`);
    });
  }

  for (const file of sources("webview")) {
    it(`${path.relative(ROOT, file)}: nothing from the data is parsed as HTML or code`, () => {
      const text = read(file);
      const sinks = /\.innerHTML\b|\.outerHTML\b|insertAdjacentHTML|document\.write|\beval\(|new Function\(|setAttribute\(\s*["']on|\.srcdoc\b|createContextualFragment/;
      const hit = text.split("\n").findIndex((line) => sinks.test(line));
      assert.equal(hit, -1, `line ${hit + 1}: ${text.split("\n")[hit]}`);
    });
  }
});

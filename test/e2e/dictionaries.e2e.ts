/**
 * End to end, published dictionaries (issue 28): a Hugging Face cache in a temp folder holds a
 * release's files (gpt2-small-res-jb's layout, for the tiny test GPT-2); the workspace names the
 * SAE as RELEASE/SAE_ID in loupe.saePath; `loupe labels import` (the CLI shipped in the same VSIX)
 * turns a Neuronpedia explanations export into workspace labels. Show SAE Features must then show
 * those labels in its hovers, with each feature's Neuronpedia link. Own code-server, as
 * untrusted.e2e.ts; screenshots go to test-output/e2e-dictionaries/.
 */
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { REPO_ROOT, type CodeServer } from "./code-server";
import { hoverText, openFile, runCommand, Screenshots, textPoint, useCodeServer, waitForDecorations, type SuiteServerOptions } from "./workbench";

const OUTPUT_DIR = path.join(REPO_ROOT, "test-output", "e2e-dictionaries");
const RELEASE_SAE = "gpt2-small-res-jb/blocks.1.hook_resid_pre";
const TEXT = "Mia and Leo went to the park with a red ball";
/** The label the export gives feature f: Neuronpedia's description, as the user would read it. */
const explanation = (f: number) => `np explanation ${f}`;

describe("Published dictionaries in code-server (packaged VSIX): RELEASE/SAE_ID and imported Neuronpedia labels", function () {
  this.timeout(600_000);
  this.slow(60_000);

  let root: string;
  let workspace: string;
  let hubCache: string;
  let server: CodeServer;
  let page: Page;
  let shots: Screenshots;
  const session = useCodeServer({ outputDir: OUTPUT_DIR, tempPrefix: "loupe-e2e-dicts-", prepare: writeWorkspace });
  before(() => ({ root, workspace, server, page, shots } = session));

  /** The CLI shipped in the installed VSIX, run in the workspace with the temp hub cache. */
  function cli(args: readonly string[], input = ""): string {
    const folder = fs.readdirSync(server.extensionsDir).find((d) => d.startsWith("loupe-dev.loupe-"));
    assert.ok(folder, `Loupe is installed in ${server.extensionsDir}`);
    return execFileSync(process.execPath, [path.join(server.extensionsDir, folder, "dist", "cli.js"), ...args], {
      input,
      cwd: workspace,
      encoding: "utf8",
      env: { ...process.env, NODE_OPTIONS: "", HF_HUB_CACHE: hubCache, LOUPE_CACHE_DIR: path.join(root, "cli-cache") },
    });
  }

  /** The workspace, and a hub cache beside it holding the release's files (code-server's HF_HUB_CACHE). */
  function writeWorkspace(workspace: string, root: string): SuiteServerOptions {
    hubCache = path.join(root, "hub");
    const repo = "models--jbloom--GPT2-Small-SAEs-Reformatted";
    fs.cpSync(path.join(REPO_ROOT, "test", "fixtures", "sae-published", "hub", repo), path.join(hubCache, repo), { recursive: true });
    const model = path.join(workspace, "models", "tiny-gpt2");
    fs.cpSync(path.join(REPO_ROOT, "test", "fixtures", "tiny-gpt2"), model, { recursive: true });
    fs.mkdirSync(path.join(workspace, ".vscode"));
    fs.writeFileSync(path.join(workspace, ".vscode", "settings.json"), JSON.stringify({ "loupe.modelPath": model, "loupe.saePath": RELEASE_SAE }));
    fs.writeFileSync(path.join(workspace, "story.txt"), `${TEXT}\n`);
    // A Neuronpedia export (JSONL, one explanation per row) for the release's 48 features.
    const rows = Array.from({ length: 48 }, (_, f) => ({ modelId: "gpt2-small", layer: "1-res-jb", index: String(f), description: explanation(f), explanationModelName: "gpt-4o-mini" }));
    fs.writeFileSync(path.join(workspace, "explanations.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
    return { env: { HF_HUB_CACHE: hubCache } };
  }

  it("loupe labels import writes the export's explanations into the workspace labels, offline", () => {
    const summary = JSON.parse(cli(["labels", "import", "explanations.jsonl", "--release", RELEASE_SAE, "--json"])) as { added: number; labelsFile: string };
    assert.equal(summary.added, 48);
    const labels = JSON.parse(fs.readFileSync(path.join(workspace, ".loupe", "feature-labels.json"), "utf8")) as { saes: Record<string, Record<string, string>> };
    assert.equal(labels.saes[RELEASE_SAE]["7"], explanation(7));
  });

  it("Show SAE Features on RELEASE/SAE_ID from the hub cache: hovers show the imported labels and link each feature to Neuronpedia", async function () {
    this.timeout(300_000);
    // The oracle: the CLI from the same VSIX, with the same labels, names the features at " park".
    const found = JSON.parse(cli(["features", "-", "--sae", RELEASE_SAE, "--model", path.join(workspace, "models", "tiny-gpt2"), "--json"], TEXT)) as {
      tokens: Array<{ text: string; features: Array<{ feature: number; label?: string }> }>;
    };
    const token = found.tokens.find((t) => t.features.length > 0 && t.text.trim().length > 1);
    assert.ok(token, "some feature fires on a word");
    const top = token.features[0];
    assert.equal(top.label, explanation(top.feature), "the CLI shows the imported label");

    await openFile(page, "story.txt");
    await runCommand(page, "Loupe: Show SAE Features");
    await waitForDecorations(page, (d) => d.heat.length > 0, 180_000);
    await shots.take(page, "release-sae-features");
    const hover = await hoverText(page, await textPoint(page, "Mia and", token.text.trim()), "SAE features");
    await shots.take(page, "release-sae-hover");
    assert.ok(hover.includes(explanation(top.feature)), `the hover shows the imported label "${explanation(top.feature)}":\n${hover}`);
    assert.ok(hover.includes(`#${top.feature}`), `the hover lists #${top.feature}:\n${hover}`);
    const links = await page.locator(".monaco-hover:not(.hidden) a").evaluateAll((as) => as.map((a) => a.getAttribute("data-href") ?? a.getAttribute("href") ?? ""));
    assert.ok(links.includes(`https://www.neuronpedia.org/gpt2-small/1-res-jb/${top.feature}`), `a link to the feature's Neuronpedia page: ${links.join(", ")}`);
    await page.mouse.move(5, 450);
    await page.keyboard.press("Escape");
    await runCommand(page, "Loupe: Clear");
  });
});

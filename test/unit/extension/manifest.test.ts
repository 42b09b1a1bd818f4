/** package.json's contributions against the code: each command a menu, walkthrough or view names exists and is registered. */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../../..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const contributed = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));
const registered = new Set(
  fs
    .readdirSync(path.join(ROOT, "src/extension"))
    .flatMap((f) => [...fs.readFileSync(path.join(ROOT, "src/extension", f), "utf8").matchAll(/registerCommand\(\s*"([\w.]+)"/g)].map((m) => m[1])),
);
/** Commands VS Code makes for each contributed view ("loupe.view.focus"). */
const viewCommands = new Set<string>(Object.values(pkg.contributes.views as Record<string, { id: string }[]>).flat().map((v) => `${v.id}.focus`));

interface Step {
  id: string;
  description: string;
  media: { markdown?: string };
  completionEvents: string[];
}

describe("package.json contributions", () => {
  it("registers every contributed command, and contributes every registered one", () => {
    assert.deepEqual([...contributed].filter((c) => !registered.has(c)), [], "contributed but never registered");
    assert.deepEqual([...registered].filter((c) => !contributed.has(c)), [], "registered but not in the command palette");
  });

  it("menus name contributed commands, and the Loupe view sits in its activity-bar container", () => {
    for (const [where, items] of Object.entries(pkg.contributes.menus as Record<string, { command: string }[]>)) {
      for (const item of items) assert.ok(contributed.has(item.command), `${where}: ${item.command}`);
    }
    const container = pkg.contributes.viewsContainers.activitybar[0];
    assert.ok(fs.existsSync(path.join(ROOT, container.icon)), container.icon);
    assert.deepEqual(pkg.contributes.views[container.id].map((v: { id: string }) => v.id), ["loupe.view"]);
  });

  it("each walkthrough step completes on a contributed command, links only to commands that exist and has its markdown", () => {
    const steps: Step[] = pkg.contributes.walkthroughs[0].steps;
    assert.deepEqual(
      steps.map((s) => s.id),
      ["inspect", "model", "features", "faithfulness", "audit", "circuit", "view"],
    );
    for (const step of steps) {
      assert.ok(step.completionEvents.length > 0, `${step.id} completes on something`);
      for (const event of step.completionEvents) {
        const [kind, name] = event.split(":");
        if (kind === "onCommand") assert.ok(contributed.has(name), `${step.id}: ${event}`);
        else assert.equal(event, "onView:loupe.view", `${step.id}: ${event}`);
      }
      for (const [, command] of step.description.matchAll(/\(command:([\w.]+)/g)) assert.ok(contributed.has(command) || viewCommands.has(command), `${step.id} links to ${command}`);
      assert.ok(step.media.markdown && fs.existsSync(path.join(ROOT, step.media.markdown)), `${step.id}: ${step.media.markdown}`);
    }
  });

  it("has what the Marketplace and Open VSX ask for: a repository, a license, a PNG icon (vsce refuses SVG)", () => {
    assert.match(pkg.repository.url, /^https:\/\/github\.com\/[\w.-]+\/[\w.-]+\.git$/);
    assert.ok(fs.existsSync(path.join(ROOT, "LICENSE")));
    const icon = fs.readFileSync(path.join(ROOT, pkg.icon));
    assert.equal(icon.subarray(1, 4).toString("latin1"), "PNG");
    assert.deepEqual([icon.readUInt32BE(16), icon.readUInt32BE(20)], [128, 128], "128x128 pixels");
  });

  it("the samples the walkthrough opens exist", () => {
    const steps: Step[] = pkg.contributes.walkthroughs[0].steps;
    const samples = steps.flatMap((s) => [...s.description.matchAll(/command:loupe\.openSample\?([^)\s]+)/g)].map((m) => (JSON.parse(decodeURIComponent(m[1])) as string[])[0]));
    assert.deepEqual(samples, ["story", "cot", "ioi"]);
    for (const sample of samples) assert.ok(fs.existsSync(path.join(ROOT, "media/walkthrough/samples", `${sample}.txt`)), sample);
  });
});

/**
 * End to end, Inspect Chat (issue 26): a chat JSONL in the workspace, a model folder whose
 * tokenizer_config.json carries a chat template (the reference model's, copied into the workspace
 * and set as loupe.modelPath). The command must draw every token on the message text in the chat
 * file itself, never on the JSON around it, with the token hover there, and say what the template
 * added (role markers, separators) instead of drawing it.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { REPO_ROOT } from "./code-server";
import { hoverText, notificationToasts, openFile, runCommand, Screenshots, textPoint, useCodeServer, waitForDecorations } from "./workbench";

const OUTPUT_DIR = path.join(REPO_ROOT, "test-output", "e2e-chat");
// ChatML, as SmolLM2-Instruct writes it.
const TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}";
// As written in the file: the second message has JSON escapes (\" and \n) inside its content.
const LINES = [
  { start: '{"role": "user", "content": ', content: "When Mia and Leo went to the park" },
  { start: '{"role": "assistant", "content": ', content: 'Leo gave a \\"ball\\" to\\nMia' },
];

describe("Loupe: Inspect Chat on a chat file (packaged VSIX, code-server)", function () {
  this.timeout(600_000);
  this.slow(60_000);

  let page: Page;
  let shots: Screenshots;
  const session = useCodeServer({ outputDir: OUTPUT_DIR, tempPrefix: "loupe-e2e-chat-", prepare: writeWorkspace });
  before(() => ({ page, shots } = session));

  function writeWorkspace(workspace: string): void {
    const model = path.join(workspace, "models", "reference-chat");
    fs.mkdirSync(model, { recursive: true });
    for (const file of ["config.json", "model.safetensors", "tokenizer.json"]) fs.copyFileSync(path.join(REPO_ROOT, "models", "reference", file), path.join(model, file));
    fs.writeFileSync(path.join(model, "tokenizer_config.json"), JSON.stringify({ eos_token: "<|endoftext|>", chat_template: TEMPLATE }));
    fs.mkdirSync(path.join(workspace, ".vscode"));
    fs.writeFileSync(path.join(workspace, ".vscode", "settings.json"), JSON.stringify({ "loupe.modelPath": model }));
    fs.writeFileSync(path.join(workspace, "chat.jsonl"), LINES.map((l) => `${l.start}"${l.content}"}`).join("\n") + "\n");
  }

  it("draws every token on its message's text in the chat file, hovers it there, and names the template's tokens", async () => {
    await openFile(page, "chat.jsonl");
    await runCommand(page, "Loupe: Inspect Chat (with the model's chat template)");
    const decorations = await waitForDecorations(page, (d) => new Set(d.heat.map((r) => r.line)).size >= LINES.length, 180_000);
    await shots.take(page, "chat-inspected");
    for (const [i, line] of LINES.entries()) {
      const content = await textPoint(page, line.start, line.content);
      const runs = decorations.heat.filter((r) => r.line === i + 1);
      assert.ok(runs.length > 0, `message ${i + 1} is decorated`);
      for (const run of runs) {
        assert.ok(run.pageLeft >= content.left - 1 && run.pageRight <= content.right + 1, `line ${i + 1}: a run [${run.pageLeft}, ${run.pageRight}] lies inside the content [${content.left}, ${content.right}], not on the JSON around it`);
      }
      // The message text is covered (adjacent tokens of one level are one run, so compare widths).
      const covered = runs.reduce((sum, r) => sum + (r.pageRight - r.pageLeft), 0);
      assert.ok(covered > 0.8 * (content.right - content.left), `line ${i + 1}: ${covered.toFixed(0)} of ${(content.right - content.left).toFixed(0)} px decorated`);
    }
    assert.equal(decorations.heat.filter((r) => r.line > LINES.length).length, 0);

    const toast = (await notificationToasts(page)).find((t) => /template tokens/.test(t));
    assert.ok(toast, "a message says what the template added");
    assert.match(toast, /2 messages inspected/);
    // The reference tokenizer reads "<|im_start|>" in pieces: each is named.
    assert.match(toast, /"<" "\|" "im"/);

    const hover = await hoverText(page, await textPoint(page, LINES[0].start, "park"), "Loupe");
    await shots.take(page, "chat-hover");
    assert.match(hover, /surprisal/);
    assert.match(hover, /park/);
  });
});

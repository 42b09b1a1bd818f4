/**
 * End to end, Inspect Chat (issue 26): a chat JSONL in the workspace, a model folder whose
 * tokenizer_config.json carries a chat template (the reference model's, copied into the workspace
 * and set as loupe.modelPath). The command must draw every token on the message text in the chat
 * file itself, never on the JSON around it, with the token hover there, and say what the template
 * added (role markers, separators) instead of drawing it. Show SAE Features on the same file must
 * read the chat the same way: colours on the message text only, the template's tokens named.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import { REPO_ROOT } from "./code-server";
import { clearLoupe, hoverText, notificationToasts, openFile, runCommand, Screenshots, textPoint, useCodeServer, waitForDecorations, type DecoratedRun } from "./workbench";

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
    fs.cpSync(path.join(REPO_ROOT, "models", "reference", "sae"), path.join(model, "sae"), { recursive: true });
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
    // Every token has a surprisal colour: the text is covered.
    await assertOnMessageText(decorations.heat, 0.8);

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

  it("Show SAE Features on the chat file colours the message text only, hovers there, and names the template's tokens", async () => {
    await page.mouse.move(5, 450);
    await page.keyboard.press("Escape");
    await clearLoupe(page);
    await runCommand(page, "Loupe: Show SAE Features");
    const decorations = await waitForDecorations(page, (d) => new Set(d.heat.map((r) => r.line)).size >= LINES.length, 180_000);
    await shots.take(page, "chat-features");
    // Tokens where no feature fires stay uncoloured.
    await assertOnMessageText(decorations.heat, 0);
    const toast = (await notificationToasts(page)).find((t) => /read for SAE features/.test(t));
    assert.ok(toast, "a message says what the template added");
    assert.match(toast, /2 messages read for SAE features, \d+ tokens drawn on their text\. \d+ template tokens/);
    const hover = await hoverText(page, await textPoint(page, LINES[1].start, "ball"), "Loupe SAE features");
    await shots.take(page, "chat-features-hover");
    // The token under the pointer, as the model read it: a piece of the word in the message (the reference tokenizer splits "ball").
    const token = JSON.parse(/at (".*") \(token \d+/.exec(hover)?.[1] ?? '""') as string;
    assert.ok(token.trim() !== "" && '"ball"'.includes(token.trim()), `the hover is about a token of "ball": ${hover}`);
  });

  it("Inspect Selection on the chat file reads it as a chat too, as the other commands do", async () => {
    await page.mouse.move(5, 450);
    await page.keyboard.press("Escape");
    await clearLoupe(page);
    // Inspect Chat's message from the first test must not answer for this one.
    await runCommand(page, "Notifications: Clear All Notifications");
    await runCommand(page, "Loupe: Inspect Selection");
    const decorations = await waitForDecorations(page, (d) => new Set(d.heat.map((r) => r.line)).size >= LINES.length, 180_000);
    // Read as plain text, the JSON keys and quotes would be coloured too.
    await assertOnMessageText(decorations.heat, 0.8);
    const toasts = await notificationToasts(page);
    assert.ok(toasts.some((t) => /2 messages inspected/.test(t)), `a message says it read the chat: ${toasts.join(" | ")}`);
  });

  /** Every coloured run lies on a message's content, never on the JSON around it, and covers at least `coverage` of it. */
  async function assertOnMessageText(heat: readonly DecoratedRun[], coverage: number): Promise<void> {
    for (const [i, line] of LINES.entries()) {
      const content = await textPoint(page, line.start, line.content);
      const runs = heat.filter((r) => r.line === i + 1);
      assert.ok(runs.length > 0, `message ${i + 1} is decorated`);
      for (const run of runs) {
        assert.ok(run.pageLeft >= content.left - 1 && run.pageRight <= content.right + 1, `line ${i + 1}: a run [${run.pageLeft}, ${run.pageRight}] lies inside the content [${content.left}, ${content.right}], not on the JSON around it`);
      }
      // The message text is covered (adjacent tokens of one level are one run, so compare widths).
      const covered = runs.reduce((sum, r) => sum + (r.pageRight - r.pageLeft), 0);
      assert.ok(covered > coverage * (content.right - content.left), `line ${i + 1}: ${covered.toFixed(0)} of ${(content.right - content.left).toFixed(0)} px decorated`);
    }
    assert.equal(heat.filter((r) => r.line > LINES.length).length, 0);
  }
});

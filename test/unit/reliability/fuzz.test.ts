/**
 * The seeded fuzz suite (test/reliability), bounded for the unit run: 200 cases per target (fewer
 * for costly ones), each limited to 5 s. Any crash other than a LoupeError with a message, any
 * accepted input that breaks its reader's contract, and any hang fails, naming the case to replay
 * with `npx tsx test/reliability/fuzz.ts TARGET INDEX SEED`. `npm run reliability` runs more cases.
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { Tokenizer } from "../../../src/core/tokenizer";
import { DEFAULT_SEED, formatFuzzReport, fuzz, type FuzzReport } from "../../reliability/fuzz";
import { checkEncoding, TARGETS } from "../../reliability/targets";
import { Prng } from "../../reliability/prng";
import { TINY_GPT2 } from "../../helpers/fixtures";

describe("fuzz", function () {
  this.timeout(180_000);
  let report: FuzzReport;
  before(async () => {
    report = await fuzz({ cases: 200, seed: DEFAULT_SEED, timeoutMs: 5000 });
  });

  for (const target of TARGETS) {
    it(`${target.name}: ${target.about}`, () => {
      const stats = report.targets.find((t) => t.target === target.name);
      assert.ok(stats && stats.tried > 0, "the target ran");
      const failures = report.failures.filter((f) => f.target === target.name);
      assert.deepEqual(failures, [], formatFuzzReport({ ...report, targets: [stats], failures }));
      assert.equal(stats.crashes + stats.hangs, 0);
    });
  }

  it("the mutators both reach the readers and get past them", () => {
    // A suite that only ever produced rejected input (or only valid input) would test little.
    for (const name of ["safetensors", "model-config", "sae-load", "probe-file", "audit-config", "feature-stats", "feature-labels", "probe-dataset", "webview-patching", "webview-probe", "webview-features", "webview-circuit", "circuit-graph-file", "lens-setting"]) {
      const t = report.targets.find((s) => s.target === name);
      assert.ok(t && t.accepted > 0 && t.rejected > 0, `${name}: ${t?.accepted} accepted, ${t?.rejected} rejected`);
    }
  });

  it("the runner reports a crash and stops a hang", async () => {
    const r = await fuzz({ cases: 30, only: ["selftest-crash", "selftest-hang"], timeoutMs: 1000 });
    const crash = r.targets.find((t) => t.target === "selftest-crash");
    const hang = r.targets.find((t) => t.target === "selftest-hang");
    assert.ok(crash && crash.crashes > 0 && crash.rejected > 0, "a TypeError counts as a crash, a LoupeError as a rejection");
    assert.ok(hang && hang.hangs === 1 && hang.tried === 30, "the looping case is stopped and the rest still run");
    assert.ok(r.failures.some((f) => f.kind === "crash" && /TypeError/.test(f.message)));
  });

  it("the same seed gives the same cases", async () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const c = new Prng(43);
    const xs = Array.from({ length: 8 }, () => a.u32());
    assert.deepEqual(Array.from({ length: 8 }, () => b.u32()), xs);
    assert.notDeepEqual(Array.from({ length: 8 }, () => c.u32()), xs);
  });

  it("tokenizer offsets hold on hand-picked hostile text", () => {
    const reference = Tokenizer.fromFile(path.join(__dirname, "..", "..", "..", "models", "reference", "tokenizer.json"));
    const tiny = Tokenizer.fromFile(path.join(TINY_GPT2, "tokenizer.json"));
    const texts = ["👩‍👩‍👧‍👦 family", "e\u0301\u0301 a\u0308", "line\r\nnext\r\n", "nul\u0000byte", "lone \ud800 high", "lone \udc00 low", "\ud83d", "<|endoftext|>Mia", "\ufeffBOM", "🏳️‍🌈🇫🇷👍🏽"];
    for (const tok of [reference, tiny]) for (const text of texts) checkEncoding(tok, text);
  });
});

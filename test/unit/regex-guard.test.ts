import { strict as assert } from "node:assert";
import { LoupeError } from "../../src/core/errors";
import { compileGuardedPattern, MAX_PATTERN_LENGTH, unsafePatternReason } from "../../src/core/regex-guard";

describe("regex guard", () => {
  it("refuses the shapes that backtrack exponentially", () => {
    for (const p of ["(a+)+$", "(a*)*b", "(a|a)*c", "(a|aa)+$", "(\\w+\\s?)*$", "(?:x+){2,}", "((ab)*)+", "(?<n>a+)+"]) {
      assert.match(unsafePatternReason(p) ?? "", /nested repetition/, p);
    }
  });

  it("refuses backreferences and overlong patterns", () => {
    assert.match(unsafePatternReason("(a)\\1") ?? "", /backreference/);
    assert.match(unsafePatternReason("(?<x>a)\\k<x>") ?? "", /backreference/);
    assert.match(unsafePatternReason("a".repeat(MAX_PATTERN_LENGTH + 1)) ?? "", /characters long/);
  });

  it("accepts the patterns real tokenizers and hint settings use", () => {
    const ok = [
      "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+", // GPT-2
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+", // Llama 3
      "[(]([A-E])[)] (?:is|looks) (?:right|correct)",
      "(ab)+", "(a|b)?c", "([(+*])+", "(x{2})+", "\\(a+\\)+",
    ];
    for (const p of ok) assert.equal(unsafePatternReason(p), undefined, p);
  });

  it("compiles safe patterns and names the source of a refused one", () => {
    assert.ok(compileGuardedPattern("\\(([A-D])\\)", "", "The hint pattern").test("(B)"));
    assert.throws(
      () => compileGuardedPattern("(a+)+$", "", "The setting loupe.faithfulness.hintPattern"),
      (e: unknown) => e instanceof LoupeError && e.code === "unsafe-pattern" && /loupe\.faithfulness\.hintPattern \/\(a\+\)\+\$\/ is refused/.test(e.message),
    );
    assert.throws(() => compileGuardedPattern("(", "", "The hint pattern"), (e: unknown) => e instanceof LoupeError && e.code === "bad-argument");
  });
});

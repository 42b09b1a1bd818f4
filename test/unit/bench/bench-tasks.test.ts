import { strict as assert } from "node:assert";
import { arithItem } from "../../../bench/tasks/arith-cot";
import { generateHeldout, generateTrain, GENERATORS } from "../../../bench/tasks/generate";
import { Rng } from "../../../bench/tasks/rng";
import { ENTITIES } from "../../../bench/tasks/lookup-decorative";
import type { Family, TaskRecord } from "../../../bench/tasks/record";
import { ANIMALS, COLOURS, NAMES, NEGATIVE, OBJECTS, POSITIVE } from "../../../bench/tasks/vocabulary";
import { Tokenizer } from "../../../src/core/tokenizer";
import * as path from "node:path";

const FAMILIES = Object.keys(GENERATORS) as Family[];

describe("bench task generators", () => {
  it("are reproducible from the seed, and the seed matters", () => {
    const a = JSON.stringify(generateTrain(7, 400));
    assert.equal(JSON.stringify(generateTrain(7, 400)), a);
    assert.notEqual(JSON.stringify(generateTrain(8, 400)), a);
    for (const family of FAMILIES) assert.equal(JSON.stringify(generateHeldout(7, family, 30)), JSON.stringify(generateHeldout(7, family, 30)));
  });

  it("cover every family in the training mix", () => {
    const families = new Set(generateTrain(3, 500).map((r) => r.family));
    assert.deepEqual([...families].sort(), [...FAMILIES].sort());
  });

  it("never repeat a training text in the held-out split, and held-out items use only held-out names", () => {
    const train = generateTrain(1, 5000);
    const trainTexts = new Set(train.map((r) => r.text));
    const trainNames = new Set(NAMES.train);
    for (const family of FAMILIES) {
      for (const record of generateHeldout(1, family, 100)) {
        if (family !== "lookup-decorative") assert.ok(!trainTexts.has(record.text), `${family} held-out text seen in training: ${record.text}`);
        for (const span of record.spans.filter((s) => s.label.startsWith("name"))) {
          assert.ok(!trainNames.has(record.text.slice(span.start, span.end)), `${family} uses a training name`);
        }
      }
    }
    assert.ok(NAMES.train.length > 1000 && NAMES.heldout.length > 300, "many names on both sides");
    // Training never uses held-out names.
    const heldoutNames = new Set(NAMES.heldout);
    for (const record of train) for (const s of record.spans) if (s.label.startsWith("name")) assert.ok(!heldoutNames.has(record.text.slice(s.start, s.end)));
  });

  it("labels spans whose text is what the label says", () => {
    const words: Record<string, readonly string[]> = {
      animal: ANIMALS,
      colour: COLOURS,
      "emotion-positive": POSITIVE,
      "emotion-negative": NEGATIVE,
    };
    const allNames = new Set([...NAMES.train, ...NAMES.heldout]);
    const records: TaskRecord[] = [...generateTrain(2, 2000), ...FAMILIES.flatMap((f) => generateHeldout(2, f, 50))];
    for (const r of records) {
      for (const s of r.spans) {
        assert.ok(s.start >= 0 && s.end <= r.text.length && s.start < s.end, "span in range");
        const text = r.text.slice(s.start, s.end);
        if (words[s.label]) assert.ok(words[s.label].includes(text), `${s.label} span is "${text}"`);
        if (s.label === "number") assert.match(text, /^(\d+|two|three|four|five|six|seven|eight|nine)$/);
        if (s.label === "negation") assert.match(text, /^not \w+$/);
        if (s.label.startsWith("name")) assert.ok(allNames.has(text), `${s.label} span is "${text}"`);
      }
    }
  });

  it("writes arithmetic whose answer follows the written steps, wrong steps included", () => {
    let wrong = 0;
    for (const r of generateTrain(4, 3000).filter((x) => x.family === "arith-cot")) {
      const steps = [...r.text.matchAll(/(\d+) ([+-]) (\d+) = (\d+)\./g)];
      const answer = Number(/The answer is (\d+)\./.exec(r.text)?.[1]);
      assert.equal(answer, Number(steps[steps.length - 1][4]), "answer read from the last step");
      for (let i = 1; i < steps.length; i++) assert.equal(steps[i][1], steps[i - 1][4], "each step starts from the previous result");
      const wrongSpans = r.spans.filter((s) => s.label === "wrong-step");
      for (const [i, m] of steps.entries()) {
        const correct = (m[2] === "+" ? Number(m[1]) + Number(m[3]) : Number(m[1]) - Number(m[3])) === Number(m[4]);
        const isWrong = r.meta.wrongStep === i;
        assert.equal(correct, !isWrong, `step ${i} of ${r.text}`);
      }
      if (wrongSpans.length) wrong++;
    }
    assert.ok(wrong > 50, "some items carry a wrong intermediate step");
    for (const r of generateHeldout(4, "arith-cot", 100)) assert.equal(r.meta.wrongStep, null, "held-out arithmetic is always right");
  });

  it("makes hinted answers follow the hint at about the designed rate and the facts fixed", () => {
    const hinted = generateTrain(5, 6000).filter((r) => r.family === "hinted-choice" && r.meta.hinted && r.meta.hint !== r.meta.honest);
    const followed = hinted.filter((r) => r.meta.answer === r.meta.hint).length / hinted.length;
    assert.ok(followed > 0.8 && followed < 0.97, `follow rate ${followed}`);
    for (const r of generateTrain(6, 500).filter((x) => x.family === "lookup-decorative")) {
      const entity = ENTITIES.find((e) => e.name === r.meta.entity);
      assert.ok(r.text.endsWith(`The answer is ${entity?.colour}.\n`));
    }
  });

  it("hold out sentence frames and starting numbers as well as names", () => {
    const frame = (r: TaskRecord) => r.text.replace(/\d+/g, "N").replace(/\b[A-Z][a-z]+\b/g, (w) => (allNames.has(w) ? "NAME" : w));
    const allNames = new Set([...NAMES.train, ...NAMES.heldout]);
    for (const family of ["arith-cot", "ioi"] as const) {
      const trainFrames = new Set(generateTrain(9, 6000).filter((r) => r.family === family).map((r) => frame(r).split("\nA:")[0].replace(/ (apples|books|coins|cards|shells|stones|pens|cups|eggs|hats|keys|rings|park|shop|lake|school|market|beach|farm|zoo|garden|library|ball|book|kite|drink|map|cake|letter|flower|hat|toy)\b/g, " W")));
      for (const r of generateHeldout(9, family, 50)) assert.ok(!trainFrames.has(frame(r).split("\nA:")[0].replace(/ (apples|books|coins|cards|shells|stones|pens|cups|eggs|hats|keys|rings|park|shop|lake|school|market|beach|farm|zoo|garden|library|ball|book|kite|drink|map|cake|letter|flower|hat|toy)\b/g, " W")), `${family} held-out frame seen in training: ${r.text}`);
    }
    // Stories: each sentence with its labelled words masked; no held-out sentence frame is a training one.
    const sentenceFrames = (r: TaskRecord) => {
      let text = r.text;
      for (const s of [...r.spans].filter((x) => x.label !== "quote" && x.label !== "negation").sort((a, b) => b.start - a.start)) text = `${text.slice(0, s.start)}<${s.label}>${text.slice(s.end)}`;
      return text.trim().replace(/ (apples|books|coins|cards|shells|stones|pens|cups|eggs|hats|keys|rings)\./g, " W.").split(/(?<=\.) /);
    };
    const trainStoryFrames = new Set(generateTrain(9, 6000).filter((r) => r.family === "stories").flatMap(sentenceFrames));
    assert.ok(trainStoryFrames.size >= 50, `many training story frames (${trainStoryFrames.size})`);
    for (const r of generateHeldout(9, "stories", 50)) for (const f of sentenceFrames(r)) assert.ok(!trainStoryFrames.has(f), `stories held-out frame seen in training: ${f}`);
    const trainStarts = new Set(generateTrain(9, 3000).filter((r) => r.family === "arith-cot").map((r) => r.meta.start));
    for (const r of generateHeldout(9, "arith-cot", 50)) assert.ok(!trainStarts.has(r.meta.start), "held-out starting numbers are unseen");
  });

  it("can draw an arith item's frames and starting number from different splits (the eval's diagnosis)", () => {
    const names = new Set([...NAMES.train, ...NAMES.heldout]);
    const opening = (r: TaskRecord) =>
      r.text
        .slice(3, r.text.indexOf("."))
        .replace(/\d+/g, "N")
        .replace(/\w+/g, (w) => (names.has(w) ? "X" : OBJECTS.includes(w) ? "W" : w));
    const trainOpenings = new Set(generateTrain(9, 3000).filter((r) => r.family === "arith-cot").map(opening));
    const rng = new Rng(5);
    const mixed = Array.from({ length: 40 }, () => arithItem(rng, "heldout", { frames: "train", start: "heldout" }));
    for (const r of mixed) {
      const start = r.meta.start as number;
      assert.ok(start >= 10 && start <= 15, "held-out start");
      assert.ok(trainOpenings.has(opening(r)), `training opener: ${r.text}`);
    }
    const swapped = Array.from({ length: 40 }, () => arithItem(rng, "heldout", { frames: "heldout", start: "train" }));
    assert.ok(swapped.every((r) => (r.meta.start as number) < 10 || (r.meta.start as number) > 15), "training start");
    assert.ok(swapped.some((r) => !trainOpenings.has(opening(r))), "held-out openers");
  });

  it("give the names of an ioi item different first tokens in the reference tokenizer", () => {
    const tokenizer = Tokenizer.fromFile(path.join(__dirname, "../../../models/reference/tokenizer.json"));
    for (const split of ["train", "heldout"] as const) {
      const items = split === "train" ? generateTrain(10, 2000).filter((r) => r.family === "ioi") : generateHeldout(10, "ioi", 200);
      for (const r of items) {
        const [io, s, c] = [r.meta.io, r.meta.s, r.meta.c].map((n) => tokenizer.encode(` ${String(n)}`).ids[0]);
        assert.ok(io !== s && io !== c && s !== c, `first tokens of ${String(r.meta.io)}, ${String(r.meta.s)}, ${String(r.meta.c)}`);
      }
    }
  });
});

import { HookedModel } from "../../core/model/hooked-model";
import { finiteNumber, loadOptions, positiveInt, readInput, stringList, type Command } from "../command";

export const generateCommand: Command = {
  name: "generate",
  usage: `loupe generate FILE|- [--model DIR] [--max-tokens N] [--temperature T --seed S] [--stop STR]... [--json]
    Continue the text (greedy unless --temperature > 0).`,
  options: { "max-tokens": { type: "string" }, temperature: { type: "string" }, seed: { type: "string" }, stop: { type: "string", multiple: true } },
  async run({ values, positionals, modelFolder, io }) {
    const text = readInput(positionals[0], io);
    const temperature = finiteNumber(values, "temperature", 0);
    const seed = values.seed === undefined ? (temperature > 0 ? 0 : undefined) : finiteNumber(values, "seed", 0);
    const model = await HookedModel.load(modelFolder, loadOptions(values));
    try {
      const generation = await model.generate(text, {
        maxNewTokens: positiveInt(values, "max-tokens", 64),
        temperature,
        seed,
        stop: stringList(values, "stop"),
      });
      io.out(values.json ? `${JSON.stringify(generation, null, 2)}\n` : `${text}${generation.text}\n`);
    } finally {
      await model.dispose();
    }
    return 0;
  },
};

import { finiteNumber, positiveInt, readInput, stringList, withBackend, type Command } from "../command";

export const generateCommand: Command = {
  name: "generate",
  usage: `loupe generate FILE|- [--model DIR] [--max-tokens N] [--temperature T --seed S] [--stop STR]... [--json]
    Continue the text (greedy unless --temperature > 0).`,
  options: { "max-tokens": { type: "string" }, temperature: { type: "string" }, seed: { type: "string" }, stop: { type: "string", multiple: true } },
  async run(args) {
    const { values, positionals, io } = args;
    const text = readInput(positionals[0], io);
    const temperature = finiteNumber(values, "temperature", 0);
    const seed = values.seed === undefined ? (temperature > 0 ? 0 : undefined) : finiteNumber(values, "seed", 0);
    const maxNewTokens = positiveInt(values, "max-tokens", 64);
    const generation = await withBackend(args, (backend) => backend.request("generate", { prompt: text, maxNewTokens, temperature, seed, stop: stringList(values, "stop") }));
    io.out(values.json ? `${JSON.stringify(generation, null, 2)}\n` : `${text}${generation.text}\n`);
    return 0;
  },
};

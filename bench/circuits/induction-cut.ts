/**
 * Where bench:circuits cuts a held-out induction item: in the middle of the repeat, traced behind
 * the BOS (as `loupe trace` traces it). `copy` is the token after the earlier copy of the current
 * bigram: what an induction head reads and the ground truth's top token.
 */
import { traceEncoding } from "../../src/core/circuits";
import type { HookedModel, PromptEncoding } from "../../src/core/model/hooked-model";
import type { TaskRecord } from "../tasks/record";

export interface InductionCut {
  readonly encoding: PromptEncoding;
  /** The prompt: the encoding's ids through the cut. */
  readonly tokens: number[];
  /** The next token after the cut (the target). */
  readonly next: number;
  /** Position of the token after the earlier copy. */
  readonly copy: number;
  /** Position of the token holding the " |" separator. */
  readonly separator: number;
}

export function inductionCut(model: HookedModel, r: TaskRecord): InductionCut | undefined {
  const encoding = traceEncoding(model, r.text);
  const repeatStart = Number(r.meta.repeatStart);
  const first = encoding.offsets.findIndex(([s]) => s >= repeatStart);
  const end = encoding.offsets.findIndex(([s]) => s >= r.text.length - 1);
  const t = first + Math.floor((end - first) / 2);
  if (first < encoding.lead + 2 || t + 1 >= encoding.ids.length) return undefined;
  const tokens = encoding.ids.slice(0, t + 1);
  // The earlier copy: the latest j in the first half whose token and predecessor match t's.
  let j = -1;
  for (let k = first - 1; k > 0; k--) if (tokens[k] === tokens[t] && tokens[k - 1] === tokens[t - 1]) { j = k; break; }
  if (j < 0) return undefined;
  // The token holding the "|" (the repeat's first word token carries the space after it, so it is not first - 1).
  const separator = encoding.offsets.findIndex(([s, e]) => s <= repeatStart - 2 && e > repeatStart - 2);
  return { encoding, tokens, next: encoding.ids[t + 1], copy: j + 1, separator };
}

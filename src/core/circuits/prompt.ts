/**
 * A prompt as circuit-tracer attributes it: behind a special token. Its ensure_tokenized puts one
 * (BOS, else EOS) in front of a prompt that does not start with one, and the replacement model
 * holds that first position constant: position 0 is where every head's attention sinks, so as a
 * node the first word would collect influence from every later position whatever it says.
 * Tokenizers whose template already leads with a BOS (Llama's <s>) get no second one; GPT-2-style
 * tokenizers (the reference model) get their <|endoftext|>, which is also how such models saw the
 * start of a text in training. The leading token has the empty range [0, 0].
 */
import type { ModelConfig } from "../model/config";
import type { HookedModel, PromptEncoding } from "../model/hooked-model";

/** The special token a traced prompt starts with: the model's BOS, else its EOS (GPT-2 uses one for both). */
export function leadingSpecialToken(cfg: Pick<ModelConfig, "bosTokenId" | "eosTokenId">): number | undefined {
  return cfg.bosTokenId ?? cfg.eosTokenId;
}

/** `ids` with the leading special token in front, unless they start with a special token already (or the model has none). */
export function withLeadingSpecialToken(cfg: Pick<ModelConfig, "bosTokenId" | "eosTokenId">, ids: readonly number[], isSpecial: (id: number) => boolean = (id) => id === leadingSpecialToken(cfg)): number[] {
  const lead = leadingSpecialToken(cfg);
  return lead === undefined || ids.length === 0 || isSpecial(ids[0]) ? [...ids] : [lead, ...ids];
}

/** model.encode(text), led by the special token circuit-tracer would put there (see above). */
export function traceEncoding(model: HookedModel, text: string): PromptEncoding {
  const own = model.encode(text);
  // circuit-tracer adds nothing before a prompt that starts with any special token (a chat template's own).
  const ids = withLeadingSpecialToken(model.cfg, own.ids, (id) => id === leadingSpecialToken(model.cfg) || model.tokenizer.specialTokenIds.has(id));
  if (ids.length === own.ids.length) return own;
  return {
    ...own,
    ids,
    tokens: [model.tokenizer.idToToken(ids[0]) ?? "", ...own.tokens],
    offsets: [[0, 0], ...own.offsets],
    lead: own.lead + 1,
  };
}

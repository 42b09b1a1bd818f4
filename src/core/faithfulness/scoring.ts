/**
 * The battery's model calls: score a fixed answer after many prompts in batched forward passes, and
 * continue many prompts greedily side by side. Every call is counted, so the battery can report its
 * cost in forward passes.
 */
import { LoupeError, throwIfAborted } from "../errors";
import type { HookedModel, RunOptions } from "../model/hooked-model";
import type { ModelConfig } from "../model/config";
import { alignedKeyValues, keepRows, placeRow, prefixKeyValues, sliceKeyValues, type AlignedKeyValues, type KeyValues } from "../model/kv-cache";
import { rowsWithin } from "../model/memory-limit";

export interface AnswerScore {
  /** log p(answer | prefix), summed over the answer's tokens (nats). */
  readonly logprob: number;
  /** Whether greedy decoding after the prefix writes exactly this answer. */
  readonly greedy: boolean;
  /** Where greedy decoding departs from the answer, the token it writes instead. */
  readonly divergesTo: string | null;
}

export interface ForwardCounter {
  passes: number;
  rows: number;
  /** Rows per forward pass (default DEFAULT_BATCH_ROWS; 1 runs each variant alone, for comparison). */
  readonly batchRows?: number;
}

/** Rows per onnxruntime call: enough to amortise the call, few enough to bound memory. */
export const DEFAULT_BATCH_ROWS = 32;

interface Encoded {
  readonly ids: number[];
  /** Index of the first answer token. */
  readonly answerAt: number;
}

function encode(model: HookedModel, prefix: string, answer: string): Encoded {
  // A prompt: Llama's <s> in front (HookedModel.encode); its range [0, 0] keeps it out of the answer.
  const { ids, offsets, lead } = model.encode(prefix + answer);
  let answerAt = offsets.findIndex(([start, end], t) => t >= lead && end > prefix.length && start >= 0);
  if (answerAt < 0) answerAt = ids.length;
  // A token straddling the boundary belongs to the answer; the first token has nothing to predict it.
  return { ids, answerAt: Math.max(1, answerAt) };
}

/**
 * Keys and values of one prompt's tokens (the battery's full prompt), computed once: the variants
 * share most of it (the question, the steps before the one changed), so each continues from the
 * tokens it has in common instead of running them again. By causality those tokens' keys and
 * values are the same in every prompt that starts with them.
 */
export class SharedPrefix {
  private constructor(
    readonly ids: readonly number[],
    private readonly kv: KeyValues,
  ) {}

  /** One run of `prompt` returning its keys and values; undefined where the graph cannot continue rows from prefixes of different lengths. */
  static async of(model: HookedModel, prompt: string, counter: ForwardCounter, signal?: AbortSignal): Promise<SharedPrefix | undefined> {
    if (!model.supportsPrefixPadding) return undefined;
    const ids = model.encode(prompt).ids;
    if (ids.length > model.cfg.nCtx) return undefined;
    const { keyValues } = await model.runWithCache(ids, { names: [], keyValues: true, logits: false, signal });
    counter.passes++;
    counter.rows++;
    return keyValues && new SharedPrefix(ids, keyValues);
  }

  /** How many leading tokens `ids` has in common with the prefix, at most `limit`. */
  sharedWith(ids: readonly number[], limit: number): number {
    let n = 0;
    while (n < limit && n < this.ids.length && ids[n] === this.ids[n]) n++;
    return n;
  }

  /** Keys and values of the first `length` tokens, batch 1. */
  keyValues(length: number): KeyValues {
    return prefixKeyValues(this.kv, 0, length);
  }

  /**
   * The whole prefix, batch 1, with the slots each row sees: row b its first `lengths[b]` tokens
   * (RunOptions.prefix and prefixSlots). No copy per row: the graph stretches the one prefix over
   * the batch.
   */
  seenBy(lengths: readonly number[]): { readonly kv: KeyValues; readonly slots: Uint8Array } {
    const N = this.ids.length;
    const slots = new Uint8Array(lengths.length * N);
    lengths.forEach((n, b) => slots.fill(1, b * N, b * N + n));
    return { kv: this.kv, slots };
  }

  /** Row b's first `lengths[b]` tokens, the rows aligned on the right (RunOptions.prefix and prefixPadding); none when every length is 0. */
  aligned(cfg: ModelConfig, lengths: readonly number[]): AlignedKeyValues | undefined {
    if (lengths.every((n) => n === 0)) return undefined;
    const aligned = alignedKeyValues(cfg, lengths);
    lengths.forEach((n, b) => placeRow(aligned, b, prefixKeyValues(this.kv, 0, n)));
    return aligned;
  }
}

/** RunOptions continuing row b from the first `froms[b]` tokens of `shared`: prefixSlots where the model takes them, else prefixPadding. */
function sharedFeeds(model: HookedModel, shared: SharedPrefix, froms: readonly number[]): Pick<RunOptions, "prefix" | "prefixSlots" | "prefixPadding"> {
  if (model.supportsPrefixSlots) {
    const { kv, slots } = shared.seenBy(froms);
    return { prefix: kv, prefixSlots: slots };
  }
  const aligned = shared.aligned(model.cfg, froms);
  return aligned ? { prefix: aligned.kv, prefixPadding: froms.length > 1 ? aligned.padding : undefined } : {};
}

/** Tokens a separate call costs beyond the ones it runs: joining a batch that must run more of a row is worth up to this many. */
const CALL_COST_TOKENS = 32;

/**
 * Score `answer` after each prefix. Prefixes longer than the context window get `null` rather than
 * failing the whole battery.
 */
export async function scoreAnswers(
  model: HookedModel,
  prefixes: readonly string[],
  answers: string | readonly string[],
  counter: ForwardCounter,
  signal?: AbortSignal,
  shared?: SharedPrefix,
): Promise<(AnswerScore | null)[]> {
  const encoded = prefixes.map((p, i) => encode(model, p, typeof answers === "string" ? answers : answers[i]));
  const fits = encoded.map((e) => e.ids.length <= model.cfg.nCtx);
  // Each row continues from the tokens it shares with the prefix, up to the one before its answer.
  const rows = encoded
    .map((e, i) => ({ e, i, from: shared ? shared.sharedWith(e.ids, e.answerAt - 1) : 0 }))
    .filter(({ i }) => fits[i])
    .sort((a, b) => a.e.ids.length - a.from - (b.e.ids.length - b.from));
  const out: (AnswerScore | null)[] = prefixes.map(() => null);
  const V = model.cfg.dVocab;
  const requested = counter.batchRows ?? DEFAULT_BATCH_ROWS;
  for (const chunk of scoringCalls(model, rows, requested)) {
    throwIfAborted(signal);
    // Each row runs from its own shared length: one prefix seen in part by each row where the graph
    // allows it, else copies aligned on the right.
    const froms = chunk.map(({ from }) => from);
    const prefix = shared && froms.some((n) => n > 0) ? sharedFeeds(model, shared, froms) : {};
    // Logits only where an answer token is predicted: [rows, positions, d_vocab] stays small.
    const { positions, column } = logitColumns(chunk.flatMap(({ e, from }) => range(e.answerAt - 1 - from, e.ids.length - 1 - from)));
    const logits = await model.run(chunk.map(({ e, from }) => e.ids.slice(from)), { signal, logitPositions: positions, ...prefix });
    counter.passes++;
    counter.rows += chunk.length;
    const K = positions.length;
    chunk.forEach(({ e, i, from }, b) => {
      let logprob = 0;
      let greedy = true;
      let divergesTo: string | null = null;
      for (let t = e.answerAt; t < e.ids.length; t++) {
        const k = column(t - 1 - from);
        const row = logits.data.subarray((b * K + k) * V, (b * K + k + 1) * V);
        const { logZ, best } = logSumExpArgmax(row);
        logprob += row[e.ids[t]] - logZ;
        if (greedy && best !== e.ids[t]) {
          greedy = false;
          divergesTo = model.tokenizer.tokenText(best);
        }
      }
      out[i] = { logprob, greedy, divergesTo };
    });
  }
  return out;
}

/**
 * Rows (sorted by the tokens each runs after its shared ones) in calls: at most `requested` rows
 * whose attention working set (rows x length x keys) fits the batch budget, and a row joins a call
 * only when the tokens the call would run more with it (padding included) cost less than a call of
 * its own.
 */
function scoringCalls<R extends { readonly e: Encoded; readonly from: number }>(model: HookedModel, rows: readonly R[], requested: number): R[][] {
  const calls: R[][] = [];
  const own = (r: R) => r.e.ids.length - r.from;
  for (const row of rows) {
    const call = calls[calls.length - 1];
    if (call) {
      const before = Math.max(...call.map(own));
      const longest = Math.max(before, own(row));
      const prefix = Math.max(row.from, ...call.map((r) => r.from));
      // One shared prefix for the whole call where the model takes prefixSlots, else a copy per row.
      const size = rowsWithin(model.cfg, { positions: longest, prefix, prefixRows: model.supportsPrefixSlots ? 1 : undefined, hooks: [] }, requested);
      // Tokens the call runs more with the row (padding included) against the row's own call.
      const worth = longest * (call.length + 1) - before * call.length <= own(row) + CALL_COST_TOKENS;
      if (call.length < size && worth) {
        call.push(row);
        continue;
      }
    }
    calls.push([row]);
  }
  return calls;
}

function logSumExpArgmax(row: Float32Array): { logZ: number; best: number } {
  let max = -Infinity;
  let best = 0;
  for (let i = 0; i < row.length; i++) {
    if (row[i] > max) {
      max = row[i];
      best = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < row.length; i++) sum += Math.exp(row[i] - max);
  return { logZ: max + Math.log(sum), best };
}

export interface Continuation {
  readonly text: string;
  /** Each new token's text, in order. */
  readonly tokens: readonly string[];
  readonly done: boolean;
}

/**
 * Greedy continuation of several prompts, until `isDone(continuation, row)` holds for a row or it
 * has `maxNewTokens` (one for all, or one per row). Where the graph takes a key/value prefix, each
 * row first runs the tokens it does not share with `shared`, then the open rows decode together,
 * one token each per call, their keys and values aligned on the right (decodeTogether); otherwise
 * every step is one batched pass over every row's whole text (a 135M model rewriting six 150-token
 * steps: minutes instead of seconds).
 */
export async function greedyContinue(
  model: HookedModel,
  prompts: readonly string[],
  maxNewTokens: number | readonly number[],
  isDone: (continuation: string, row: number) => boolean,
  counter: ForwardCounter,
  signal?: AbortSignal,
  shared?: SharedPrefix,
): Promise<Continuation[]> {
  const rows: Row[] = prompts.map((p, i) => {
    const enc = model.encode(p);
    const budget = typeof maxNewTokens === "number" ? maxNewTokens : maxNewTokens[i];
    return { index: i, ids: enc.ids, empty: enc.ids.length === enc.lead, budget, added: [], text: "", done: false };
  });
  if (rows.some((r) => r.empty)) throw new LoupeError("empty-input", "Nothing to continue: a prompt is empty.");
  const eos = model.tokenizer.eosTokenId;
  const V = model.cfg.dVocab;
  const take = (r: Row, logits: Float32Array) => {
    const { best } = logSumExpArgmax(logits);
    if (best === eos) {
      r.done = true;
      return;
    }
    r.added.push(best);
    r.text = model.tokenizer.decode(r.added);
    r.done = isDone(r.text, r.index);
  };
  const open = (r: Row) => !r.done && r.added.length < r.budget && r.ids.length + r.added.length < model.cfg.nCtx;
  const result = () => rows.map((r) => ({ text: r.text, tokens: r.added.map((id) => model.tokenizer.decode([id])), done: r.done }));
  if (model.supportsPrefix) {
    await decodeTogether(model, rows, open, take, counter, signal, shared);
    return result();
  }
  for (;;) {
    const active = rows.filter(open);
    if (active.length === 0) break;
    const size = counter.batchRows ?? DEFAULT_BATCH_ROWS;
    for (let c = 0; c < active.length; c += size) {
      throwIfAborted(signal);
      const chunk = active.slice(c, c + size);
      // Each row's last position only.
      const { positions, column } = logitColumns(chunk.map((r) => r.ids.length + r.added.length - 1));
      const logits = await model.run(chunk.map((r) => [...r.ids, ...r.added]), { signal, logitPositions: positions });
      counter.passes++;
      counter.rows += chunk.length;
      const K = positions.length;
      chunk.forEach((r, b) => {
        const k = column(r.ids.length + r.added.length - 1);
        take(r, logits.data.subarray((b * K + k) * V, (b * K + k + 1) * V));
      });
    }
  }
  return result();
}

interface Row {
  readonly index: number;
  readonly ids: readonly number[];
  readonly empty: boolean;
  readonly budget: number;
  readonly added: number[];
  text: string;
  done: boolean;
}

/**
 * Greedy decoding from key/value caches, in groups of rows (counter.batchRows, fewer where the
 * memory budget says so). One call runs each row's own tokens after the ones it shares with
 * `shared`, giving its first new token; then one call per token for the whole group, rows leaving
 * as they finish. Where the model takes prefixSlots, the first call reads the one shared prefix
 * and the keys and values it returns are the next call's prefix as they are, empty slots and all
 * (no copy per row, no realignment); otherwise each row's keys and values are aligned on the right
 * (RunOptions.prefixPadding). A row's logits are its unbatched ones up to summation order (the
 * empty slots add exact zeros).
 */
async function decodeTogether(
  model: HookedModel,
  rows: readonly Row[],
  open: (r: Row) => boolean,
  take: (r: Row, logits: Float32Array) => void,
  counter: ForwardCounter,
  signal?: AbortSignal,
  shared?: SharedPrefix,
): Promise<void> {
  const V = model.cfg.dVocab;
  const lastLogits = (logits: Float32Array, b: number) => logits.subarray(b * V, (b + 1) * V);
  const starting = rows.filter(open);
  const requested = model.supportsPrefixPadding ? counter.batchRows ?? DEFAULT_BATCH_ROWS : 1;
  // Each row starts from the tokens it shares with the prefix (leaving it one of its own to run).
  const from = new Map(starting.map((r) => [r, shared?.sharedWith(r.ids, r.ids.length - 1) ?? 0]));
  const longest = Math.max(0, ...starting.map((r) => r.ids.length + r.budget));
  const ownTokens = Math.max(0, ...starting.map((r) => r.ids.length - from.get(r)!));
  const size = rowsWithin(model.cfg, { positions: ownTokens, prefix: longest, hooks: [], logitPositions: 2, keyValues: true }, requested);
  for (let g = 0; g < starting.length; g += size) {
    throwIfAborted(signal);
    const group = starting.slice(g, g + size);
    let batch = await firstTokens(model, group, from, take, counter, signal, shared);
    let live = group.map((r, b) => ({ r, b })).filter(({ r }) => open(r));
    if (live.length > 0) batch = keepDecodeRows(batch, live.map(({ b }) => b));
    while (live.length > 0) {
      throwIfAborted(signal);
      const rowsPrefix = batch.slots ? { prefixSlots: batch.slots } : { prefixPadding: live.length > 1 ? batch.padding : undefined };
      const { logits, keyValues } = await model.runWithCache(
        live.map(({ r }) => [r.added[r.added.length - 1]]),
        { names: [], prefix: batch.kv, ...rowsPrefix, keyValues: true, signal },
      );
      counter.passes++;
      counter.rows += live.length;
      live.forEach(({ r }, b) => take(r, lastLogits(logits.data, b)));
      const still = live.flatMap(({ r }, b) => (open(r) ? [b] : []));
      if (still.length === 0) break;
      batch = keepDecodeRows({ kv: keyValues!, padding: batch.padding, slots: batch.slots && withTokenSlot(batch.slots, live.length) }, still);
      live = still.map((b) => ({ r: live[b].r, b }));
    }
  }
}

/**
 * One call running every row's own tokens after its shared ones, giving each row its first new
 * token; returns the keys and values the group decodes on from (only those: the call's other
 * outputs are not kept through the decoding).
 */
async function firstTokens(model: HookedModel, group: readonly Row[], from: ReadonlyMap<Row, number>, take: (r: Row, logits: Float32Array) => void, counter: ForwardCounter, signal?: AbortSignal, shared?: SharedPrefix): Promise<DecodeBatch> {
  const V = model.cfg.dVocab;
  const froms = group.map((r) => from.get(r)!);
  const prefix = shared && froms.some((n) => n > 0) ? sharedFeeds(model, shared, froms) : {};
  const own = group.map((r, b) => r.ids.slice(froms[b]));
  const { positions, column } = logitColumns(own.map((o) => o.length - 1));
  const { logits, keyValues } = await model.runWithCache(own, { names: [], ...prefix, keyValues: true, logitPositions: positions, signal });
  counter.passes++;
  counter.rows += group.length;
  group.forEach((r, b) => {
    const k = b * positions.length + column(own[b].length - 1);
    take(r, logits.data.subarray(k * V, (k + 1) * V));
  });
  return model.supportsPrefixSlots ? slotsAfterFirst(keyValues!, froms, own.map((o) => o.length)) : alignedAfterFirst(model, keyValues!, froms, own);
}

/** The keys and values a group decodes from, with which slots each row sees: `slots` ([rows, slots]), or `padding` empty ones leading each row. */
interface DecodeBatch {
  readonly kv: KeyValues;
  readonly padding: readonly number[];
  readonly slots?: Uint8Array;
}

/** After a first call from the shared prefix's slots: each row sees its shared tokens, then its own, of the call's keys and values as returned. */
function slotsAfterFirst(kv: KeyValues, froms: readonly number[], own: readonly number[]): DecodeBatch {
  const width = kv.keys[0].dims[2];
  const T = Math.max(...own);
  const P = width - T;
  const slots = new Uint8Array(froms.length * width);
  froms.forEach((n, b) => {
    slots.fill(1, b * width, b * width + n);
    slots.fill(1, b * width + P, b * width + P + own[b]);
  });
  return { kv, padding: froms.map(() => 0), slots };
}

/** After a first call from prefixes aligned on the right: each row's real slots copied into keys and values aligned on the right. */
function alignedAfterFirst(model: HookedModel, kv: KeyValues, froms: readonly number[], own: readonly (readonly number[])[]): DecodeBatch {
  const aligned = alignedKeyValues(model.cfg, froms.map((n, b) => n + own[b].length));
  const P = kv.keys[0].dims[2] - Math.max(...own.map((o) => o.length));
  froms.forEach((n, b) => placeRow(aligned, b, sliceKeyValues(kv, b, P - n, P + own[b].length)));
  return aligned;
}

/** `slots` ([rows, n]) with one more slot per row, holding a token: the one each row just ran. */
function withTokenSlot(slots: Uint8Array, rows: number): Uint8Array {
  const n = slots.length / rows;
  const wider = new Uint8Array(rows * (n + 1)).fill(1);
  for (let b = 0; b < rows; b++) wider.set(slots.subarray(b * n, (b + 1) * n), b * (n + 1));
  return wider;
}

/** Only `rows` of the batch, in that order. */
function keepDecodeRows(batch: DecodeBatch, rows: readonly number[]): DecodeBatch {
  if (!batch.slots) return keepRows({ kv: batch.kv, padding: batch.padding }, rows);
  const n = batch.slots.length / batch.padding.length;
  const kept = keepRows({ kv: batch.kv, padding: batch.padding }, rows);
  const slots = new Uint8Array(rows.length * n);
  rows.forEach((r, i) => slots.set(batch.slots!.subarray(r * n, (r + 1) * n), i * n));
  return { ...kept, slots };
}

/** The distinct positions a batch needs logits at, in order, and each one's column in the [rows, positions, d_vocab] result. */
function logitColumns(needed: readonly number[]): { positions: number[]; column: (position: number) => number } {
  // At least one position: a run returns logits somewhere (a batch with nothing to score reads none of them).
  const positions = needed.length ? [...new Set(needed)].sort((a, b) => a - b) : [0];
  const index = new Map(positions.map((p, k) => [p, k]));
  return {
    positions,
    column: (position) => {
      const k = index.get(position);
      if (k === undefined) throw new Error(`internal: no logits asked for at position ${position}`);
      return k;
    },
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

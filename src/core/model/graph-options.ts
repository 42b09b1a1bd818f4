/** What a graph builder is asked for and what it returns (gpt2-graph.ts, llama-graph.ts; chosen by build-graph.ts). */

export interface GraphOptions {
  /** Keep f16/bf16 weight matrices as stored and cast them during each run (see WeightTable). */
  readonly compactWeights?: boolean;
  /**
   * Grouped-query models: give attn.hook_k and attn.hook_v one slot per query head (each key/value
   * head repeated for its group) instead of one per key/value head (TransformerLens's
   * ungroup_grouped_query_attention). No effect on other models.
   */
  readonly ungroupGroupedQueryAttention?: boolean;
  /**
   * Build only what decoding needs: logits and every layer's keys and values, with no hook points
   * (nor their gain/write inputs) and no rows started at later blocks (resid_in:L). The same
   * arithmetic as the hooked graph, without the ~13 idle nodes per hook that a decode step of a
   * small model spends most of its time on. HookedModel runs it for calls that read and change no
   * hook (decode-graph.ts).
   */
  readonly decodeOnly?: boolean;
}

export interface BuiltGraph {
  readonly bytes: Uint8Array;
  /** The hooks the graph provides, in forward order. */
  readonly hookNames: string[];
}

/**
 * Neuronpedia feature pages, neuronpedia.org/{model}/{source}/{index}, for SAEs and for the
 * transcoder sets it hosts. Pure and free of Node modules: the circuit panel's page links its
 * feature nodes with it.
 *
 * Neuronpedia keeps each layer of a transcoder set as one source, "{layer}-{set}" (e.g.
 * gemma-2-2b/12-gemmascope-transcoder-16k). circuit-tracer names a set by its hub repository (the
 * graph's `scan`: "ORG/NAME", "ORG/NAME//SUBFOLDER", either with "@REVISION"); the table below maps
 * the repositories whose features Neuronpedia serves to its model and set names.
 */

/** A transcoder set's place on Neuronpedia. */
export interface NeuronpediaTranscoders {
  readonly model: string;
  readonly set: string;
}

/** Checked against Neuronpedia's own feature links (circuit-tracer's demo_utils default, graphs on neuronpedia.org). */
const HOSTED_TRANSCODERS: Readonly<Record<string, NeuronpediaTranscoders>> = {
  // Gemma Scope's per-layer transcoders as circuit-tracer packages them (its "gemma" set).
  "mntss/gemma-scope-transcoders": { model: "gemma-2-2b", set: "gemmascope-transcoder-16k" },
  "mwhanna/gemma-scope-transcoders": { model: "gemma-2-2b", set: "gemmascope-transcoder-16k" },
  "mwhanna/qwen3-4b-transcoders": { model: "qwen3-4b", set: "transcoder-hp" },
  "mwhanna/qwen3-8b-transcoders": { model: "qwen3-8b", set: "transcoder-hp" },
};

/** A feature's Neuronpedia page from an SAE's Neuronpedia id ({model}/{source}). */
export function neuronpediaUrl(neuronpediaId: string | undefined, feature: number): string | undefined {
  return neuronpediaId ? `https://www.neuronpedia.org/${neuronpediaId.split("/").map(encodeURIComponent).join("/")}/${feature}` : undefined;
}

/** The hub repository a circuit-tracer scan names ("ORG/NAME//SUB@REV" -> "ORG/NAME"). */
function scanRepo(scan: string): string {
  return scan.split("@")[0].split("//")[0].replace(/\/+$/, "");
}

/**
 * Where Neuronpedia hosts a transcoder set, from its hub repository (a set in the hub cache) or its
 * circuit-tracer scan; undefined for sets it does not host (Loupe's own, the bundled one).
 */
export function neuronpediaTranscoders(set: { readonly repoId?: string; readonly scan?: string }): NeuronpediaTranscoders | undefined {
  for (const name of [set.repoId, set.scan]) {
    const hosted = name ? HOSTED_TRANSCODERS[scanRepo(name)] : undefined;
    if (hosted) return hosted;
  }
  return undefined;
}

/** A transcoder feature's Neuronpedia page. */
export function transcoderNeuronpediaUrl(hosted: NeuronpediaTranscoders | undefined, layer: number, feature: number): string | undefined {
  return hosted ? neuronpediaUrl(`${hosted.model}/${layer}-${hosted.set}`, feature) : undefined;
}

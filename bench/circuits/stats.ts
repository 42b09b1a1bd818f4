/** Statistics the circuit benches share. */

export function pearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

/** The options every ground-truth bench of the reference model takes (parseArgs form). */
export const REFERENCE_OPTIONS = {
  model: { type: "string", default: "models/reference" },
  plt: { type: "string", default: "models/reference/transcoders/plt" },
  clt: { type: "string", default: "models/reference/transcoders/clt" },
  items: { type: "string", default: "40" },
  seed: { type: "string", default: "5" },
} as const;

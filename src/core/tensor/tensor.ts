/** A dense float32 tensor in row-major order. Small helpers only: no autograd, no broadcasting engine. */
export interface Tensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export function tensor(data: Float32Array, dims: readonly number[]): Tensor {
  const n = numel(dims);
  if (data.length !== n) throw new Error(`tensor: ${data.length} values do not fill shape [${dims.join(", ")}]`);
  return { data, dims: [...dims] };
}

export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

export function strides(dims: readonly number[]): number[] {
  const out = new Array<number>(dims.length);
  let s = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    out[i] = s;
    s *= dims[i];
  }
  return out;
}

/** The sub-tensor at `index` along axis 0 (a view: shares memory). */
export function slice0(t: Tensor, index: number): Tensor {
  const inner = t.dims.slice(1);
  const size = numel(inner);
  return { data: t.data.subarray(index * size, (index + 1) * size), dims: inner };
}

/** The last-axis vector at the given leading indices (a view). */
export function vectorAt(t: Tensor, ...leading: number[]): Float32Array {
  const st = strides(t.dims);
  let offset = 0;
  leading.forEach((i, axis) => (offset += i * st[axis]));
  const last = t.dims[t.dims.length - 1];
  return t.data.subarray(offset, offset + last);
}

export function logSoftmax(logits: Float32Array): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  let sum = 0;
  for (const v of logits) sum += Math.exp(v - max);
  const logZ = max + Math.log(sum);
  return logits.map((v) => v - logZ);
}

export function softmax(logits: Float32Array, temperature = 1): Float32Array {
  let max = -Infinity;
  for (const v of logits) if (v > max) max = v;
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp((logits[i] - max) / temperature);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Indices of the k largest values, largest first. */
export function topK(values: ArrayLike<number>, k: number): number[] {
  const picked: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (picked.length < k) {
      picked.push(i);
      picked.sort((a, b) => values[b] - values[a]);
    } else if (values[i] > values[picked[k - 1]]) {
      picked[k - 1] = i;
      picked.sort((a, b) => values[b] - values[a]);
    }
  }
  return picked;
}

export function l2norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths ${a.length} and ${b.length} differ`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

import { LoupeError } from "../errors";
import type { Tensor } from "../tensor/tensor";

/** Activations recorded during a run, by hook name (TransformerLens's ActivationCache, minus autograd). */
export class ActivationCache {
  constructor(private readonly tensors: ReadonlyMap<string, Tensor>) {}

  get(name: string): Tensor {
    const t = this.tensors.get(name);
    if (!t) {
      throw new LoupeError("bad-argument", `Hook "${name}" was not cached in this run; pass it in names (cached: ${[...this.tensors.keys()].slice(0, 5).join(", ")}${this.tensors.size > 5 ? ", …" : ""}).`);
    }
    return t;
  }

  has(name: string): boolean {
    return this.tensors.has(name);
  }

  get names(): string[] {
    return [...this.tensors.keys()];
  }
}

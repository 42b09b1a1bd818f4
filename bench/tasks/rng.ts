import { seededRandom } from "../../src/core/tensor/random";

/** Seeded choices for the generators: every corpus is a pure function of its seed. */
export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = seededRandom(seed);
  }
  float(): number {
    return this.next();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
  /** Two distinct items. */
  pair<T>(items: readonly T[]): [T, T] {
    const a = this.int(0, items.length - 1);
    let b = this.int(0, items.length - 2);
    if (b >= a) b++;
    return [items[a], items[b]];
  }
}

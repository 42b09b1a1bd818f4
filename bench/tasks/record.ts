/** A generated bench item: text with labelled character spans and family-specific ground truth. */
export interface Span {
  readonly start: number;
  readonly end: number;
  readonly label: string;
}

export interface TaskRecord {
  readonly family: Family;
  readonly split: Split;
  readonly text: string;
  readonly spans: Span[];
  readonly meta: Record<string, unknown>;
}

export type Family = "arith-cot" | "lookup-decorative" | "hinted-choice" | "ioi" | "induction" | "stories";
export type Split = "train" | "heldout";

/** Builds text piece by piece, recording spans by the characters they cover. */
export class TextBuilder {
  private text = "";
  readonly spans: Span[] = [];

  add(piece: string, label?: string): this {
    if (label) this.spans.push({ start: this.text.length, end: this.text.length + piece.length, label });
    this.text += piece;
    return this;
  }

  get length(): number {
    return this.text.length;
  }

  /** Label a range already written. */
  mark(start: number, end: number, label: string): this {
    this.spans.push({ start, end, label });
    return this;
  }

  toString(): string {
    return this.text;
  }
}
